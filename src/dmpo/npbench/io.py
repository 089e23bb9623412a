"""Reading and writing instance files: our JSONL, the public benchmark's JSON, and
Hugging Face ``datasets`` folders; predictions files for scoring.

Every problem with a file (missing, a folder, not UTF-8, not JSON, nested too deeply, a field
of the wrong type) is a DmpoError that names the file and, where there is one, the line or item.

The public files' ``ground_truth`` is a heuristic's value, and for some tasks an impossible
one (NP-Engine's solver returns invalid cliques and independent sets and can schedule a meeting
twice), so ``load`` solves every public-layout item exactly with the solver used at generation
and scores against the proved optimum; the file's value is kept as ``Instance.reference`` and
``reference_report`` counts how many were wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.npbench.base import DIFFICULTIES, Instance, is_number
from dmpo.npbench.registry import get_task, task_name_for
from dmpo.npbench.vlmevalkit import load_vlmevalkit, load_vlmevalkit_predictions

log = logging.getLogger("dmpo.npbench")
log.addHandler(logging.NullHandler())  # a library: shown once the application configures logging

# Relative tolerance when comparing a file's value with the proved optimum.
_TOLERANCE = 1e-9
# Solved public questions of this process, by cache key: loading a file twice solves it once.
_SOLVED: dict[str, dict] = {}


def load(path: str | Path, *, solve: bool = True, cache: str | Path | None = None) -> list[Instance]:
    """Instances from a file: the public benchmark's JSON (``{key: {prompt, question,
    task_type, ground_truth}}``), our JSONL (one ``Instance.to_dict()`` a line), a JSON list
    of those, a ``datasets`` folder written by ``dmpo bench generate --format hf``, or a
    VLMEvalKit TSV written by ``--format vlmevalkit`` (images decoded and checked; the images
    themselves: ``npbench.vlmevalkit.load_vlmevalkit``).

    Public-layout items are solved exactly when ``solve`` (the default): ``optimum`` is the
    proved optimum (``proved=True``) and ``reference`` the file's ``ground_truth``. If the
    solver cannot prove an optimum within the task's time limit, the file's value is kept
    (``proved=False``) unless the solver found a better feasible value, which then replaces it.
    ``cache``: a JSON file of solved questions (keyed by a hash of the task, the question and
    the time limit), read if it exists and updated; solved questions are also remembered for
    the rest of the process. With ``solve=False`` the file's value is the optimum, unproved."""
    path = Path(path)
    if not path.exists():
        raise DmpoError(f"no such instance file or folder: {path}")
    if path.is_dir():
        return _load_hf(path)
    if path.suffix.lower() == ".tsv":  # VLMEvalKit's image-dataset layout
        return [item.instance for item in load_vlmevalkit(path)]
    text = _read_text(path, "instance file")
    if path.suffix == ".jsonl":
        return [_checked(_instance_from(row, where), where) for where, row in _jsonl_rows(text, path)]
    data = _parse_json(text, str(path))
    if isinstance(data, list):
        return [_checked(_instance_from(r, f"{path}[{i}]"), f"{path}[{i}]") for i, r in enumerate(data)]
    if isinstance(data, dict):
        instances = [_from_public(key, item, path) for key, item in data.items()]
        if solve:
            _solve_public(instances, cache)
        report = reference_report(instances)
        if report["wrong"]:
            log.warning("%s: %d of %d ground_truth values differ from the proved optimum", path,
                        report["wrong"], report["checked"])
        return instances
    raise DmpoError(f"{path}: expected a JSON object or list, got {type(data).__name__}")


def reference_report(instances: Iterable[Instance]) -> dict[str, int]:
    """How the files' values (``reference``) compare with the optima: ``checked`` items with
    both a reference and a proved optimum, ``wrong`` among them (``inflated``: better than the
    optimum, so no valid answer reaches it; ``suboptimal``: worse), and ``unverified`` items
    with a reference but no proved optimum."""
    report = {"checked": 0, "wrong": 0, "inflated": 0, "suboptimal": 0, "unverified": 0}
    for inst in instances:
        if inst.reference is None:
            continue
        if not inst.proved or inst.optimum is None:
            report["unverified"] += 1
            continue
        report["checked"] += 1
        if not _close(inst.reference, inst.optimum):
            report["wrong"] += 1
            sense = get_task(inst.task).sense
            better = inst.reference > inst.optimum if sense == "max" else inst.reference < inst.optimum
            report["inflated" if better else "suboptimal"] += 1
    return report


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _TOLERANCE * max(1.0, abs(a), abs(b))


def _read_text(path: Path, what: str) -> str:
    if path.is_dir():
        raise DmpoError(f"{path} is a folder; expected a {what}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DmpoError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DmpoError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DmpoError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise DmpoError(f"{where}: JSON nested too deeply") from None


def _jsonl_rows(text: str, path: Path) -> Iterable[tuple[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield f"{path}:{lineno}", _parse_json(line, f"{path}:{lineno}")


def _instance_from(row: Any, where: str) -> Instance:
    try:
        return Instance.from_dict(row)
    except DmpoError as exc:
        raise DmpoError(f"{where}: {exc}") from None


def _from_public(key: str, item: Any, path: Path) -> Instance:
    where = f"{path}: item {key!r}"
    if not isinstance(item, dict) or "question" not in item or "task_type" not in item:
        raise DmpoError(f"{where} needs 'question' and 'task_type' (public layout)")
    task_type = item["task_type"]
    if not isinstance(task_type, str):
        raise DmpoError(f"{where}: 'task_type' must be a string, got {task_type!r:.80}")
    name = task_name_for(task_type)
    question = item["question"]
    if isinstance(question, str):
        question = _parse_json(question, f"{where}: question")
    difficulty = next((d for d in DIFFICULTIES if d in key), "unknown")
    truth = item.get("ground_truth")
    reference = float(truth) if is_number(truth) else None
    inst = Instance(name, difficulty, None, question, reference, proved=False, solution=None, id=str(key),
                    reference=reference)
    return _checked(inst, where)


def _checked(inst: Instance, where: str) -> Instance:
    try:
        if not isinstance(inst.task, str):
            raise DmpoError(f"'task' must be a string, got {inst.task!r:.80}")
        get_task(inst.task).validate_question(inst.question)
    except DmpoError as exc:
        raise DmpoError(f"{where}: {exc}") from None
    except RecursionError:
        raise DmpoError(f"{where}: question nested too deeply") from None
    return inst


# ---- exact optima for public files ---------------------------------------------------------
def _solve_public(instances: list[Instance], cache: str | Path | None) -> None:
    stored = _read_cache(Path(cache)) if cache is not None else {}
    changed = False
    for inst in instances:
        task = get_task(inst.task)
        key = _cache_key(task.name, inst.question, task.solver_time_limit)
        result = _SOLVED.get(key) or stored.get(key)
        if not _valid_cached(result):
            sol = task.solve(inst.question, task.solver_time_limit)
            result = {"value": float(sol.value), "proved": bool(sol.proved),
                      "solution": task.format_answer(sol.answer)}
        _SOLVED[key] = result
        if stored.get(key) != result:
            stored[key] = result
            changed = True
        _apply(inst, task.sense, result)
    if cache is not None and changed:
        _write_cache(Path(cache), stored)


def _apply(inst: Instance, sense: str, result: dict) -> None:
    value = result["value"]
    if result["proved"]:
        inst.optimum, inst.proved, inst.solution = value, True, result["solution"]
        return
    # No proof: keep the file's value unless the solver found a better feasible answer.
    better = inst.optimum is None or (value > inst.optimum if sense == "max" else value < inst.optimum)
    if better:
        inst.optimum, inst.solution = value, result["solution"]
    inst.proved = False


def _cache_key(task: str, question: Any, time_limit: float) -> str:
    blob = json.dumps([task, question, time_limit], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _valid_cached(result: Any) -> bool:
    return (isinstance(result, dict) and is_number(result.get("value"))
            and isinstance(result.get("proved"), bool) and isinstance(result.get("solution"), str))


def _read_cache(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(_read_text(path, "solver cache"))
    except (DmpoError, ValueError, RecursionError) as exc:
        log.warning("ignoring unreadable solver cache %s (%s); it will be rewritten", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        raise DmpoError(f"cannot write the solver cache {path}: {exc.strerror or exc}") from None


def _load_hf(path: Path) -> list[Instance]:
    try:
        import datasets
    except ImportError:
        raise DmpoError("reading a datasets folder needs `pip install datasets`") from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a wrong folder
        raise DmpoError(f"{path}: not a datasets folder ({exc})") from None
    if "instance" not in ds.column_names:
        raise DmpoError(f"{path}: a datasets folder without an 'instance' column; "
                        "write one with `dmpo bench generate --format hf`")
    out = []
    for i, row in enumerate(ds):
        where = f"{path}[{i}]"
        raw = row["instance"]
        if not isinstance(raw, str):
            raise DmpoError(f"{where}: 'instance' must be a JSON string")
        out.append(_checked(_instance_from(_parse_json(raw, where), where), where))
    return out


def save_jsonl(instances: Iterable[Instance], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for inst in instances:
            f.write(inst.to_json() + "\n")
    return path


def save_hf(instances: Iterable[Instance], path: str | Path, *, prompt_style: str = "nl") -> Path:
    """A ``datasets`` folder with columns id, task, difficulty, prompt, instance (JSON)."""
    try:
        import datasets
    except ImportError:
        raise DmpoError("writing a datasets folder needs `pip install datasets`") from None
    rows: dict[str, list] = {"id": [], "task": [], "difficulty": [], "prompt": [], "instance": []}
    for inst in instances:
        rows["id"].append(inst.id)
        rows["task"].append(inst.task)
        rows["difficulty"].append(inst.difficulty)
        rows["prompt"].append(get_task(inst.task).prompt(inst, style=prompt_style))
        rows["instance"].append(inst.to_json())
    datasets.Dataset.from_dict(rows).save_to_disk(str(path))
    return Path(path)


def load_predictions(path: str | Path, *, index_to_id: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Completions by item id from JSONL rows ``{"id", "completion"}`` or ``{"id",
    "completions": [...]}`` (rows with the same id accumulate), a JSON object mapping id to
    a completion or a list of completions, or a VLMEvalKit prediction file (``.tsv`` or
    ``.xlsx`` with a ``prediction`` column; rows found by ``id``, else by ``index`` through
    ``index_to_id``)."""
    path = Path(path)
    if not path.exists():
        raise DmpoError(f"no such predictions file: {path}")
    if path.suffix.lower() in (".tsv", ".xlsx"):
        return load_vlmevalkit_predictions(path, index_to_id)
    out: dict[str, list[str]] = {}
    text = _read_text(path, "predictions file")
    if path.suffix == ".jsonl":
        for where, row in _jsonl_rows(text, path):
            if not isinstance(row, dict) or "id" not in row or not ({"completion", "completions"} & set(row)):
                raise DmpoError(f"{where}: each row needs 'id' and 'completion' or 'completions'")
            if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool):
                raise DmpoError(f"{where}: 'id' must be a string or an integer, got {row['id']!r:.80}")
            values = row.get("completions", [row.get("completion")])
            out.setdefault(str(row["id"]), []).extend(_as_texts(values))
        return out
    data = _parse_json(text, str(path))
    if not isinstance(data, dict):
        raise DmpoError(f"{path}: expected a JSON object mapping item id to completion(s)")
    for key, value in data.items():
        out[str(key)] = _as_texts(value if isinstance(value, list) else [value])
    return out


def _as_texts(values: Any) -> list[str]:
    # Untrusted predictions: anything that is not text scores as "no answer", not a crash.
    if not isinstance(values, list):
        values = [values]
    return [v if isinstance(v, str) else "" for v in values]
