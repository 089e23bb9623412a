"""Reading and writing instance files: our JSONL, the public benchmark's JSON, and
Hugging Face ``datasets`` folders; predictions files for scoring."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.npbench.base import DIFFICULTIES, Instance
from dmpo.npbench.registry import get_task, task_name_for


def load(path: str | Path) -> list[Instance]:
    """Instances from a file: the public benchmark's JSON (``{key: {prompt, question,
    task_type, ground_truth}}``), our JSONL (one ``Instance.to_dict()`` a line), a JSON list
    of those, or a ``datasets`` folder written by ``dmpo bench generate --format hf``."""
    path = Path(path)
    if not path.exists():
        raise DmpoError(f"no such instance file or folder: {path}")
    if path.is_dir():
        return _load_hf(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DmpoError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        return [_checked(Instance.from_dict(r), f"{path}:{i + 1}") for i, r in enumerate(rows)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DmpoError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, list):
        return [_checked(Instance.from_dict(r), f"{path}[{i}]") for i, r in enumerate(data)]
    if isinstance(data, dict):
        return [_from_public(key, item, path) for key, item in data.items()]
    raise DmpoError(f"{path}: expected a JSON object or list, got {type(data).__name__}")


def _from_public(key: str, item: Any, path: Path) -> Instance:
    if not isinstance(item, dict) or "question" not in item or "task_type" not in item:
        raise DmpoError(f"{path}: item {key!r} needs 'question' and 'task_type' (public layout)")
    name = task_name_for(item["task_type"])
    question = item["question"]
    if isinstance(question, str):
        try:
            question = json.loads(question)
        except json.JSONDecodeError:
            raise DmpoError(f"{path}: item {key!r} has a question that is not JSON") from None
    difficulty = next((d for d in DIFFICULTIES if d in key), "unknown")
    truth = item.get("ground_truth")
    optimum = float(truth) if isinstance(truth, (int, float)) and not isinstance(truth, bool) else None
    inst = Instance(name, difficulty, None, question, optimum, proved=False, solution=None, id=str(key))
    return _checked(inst, f"{path}: item {key!r}")


def _checked(inst: Instance, where: str) -> Instance:
    try:
        get_task(inst.task).validate_question(inst.question)
    except DmpoError as exc:
        raise DmpoError(f"{where}: {exc}") from None
    return inst


def _load_hf(path: Path) -> list[Instance]:
    try:
        import datasets
    except ImportError:
        raise DmpoError("reading a datasets folder needs `pip install datasets`") from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a wrong folder
        raise DmpoError(f"{path}: not a datasets folder ({exc})") from None
    return [_checked(Instance.from_dict(json.loads(row["instance"])), f"{path}[{i}]")
            for i, row in enumerate(ds)]


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


def load_predictions(path: str | Path) -> dict[str, list[str]]:
    """Completions by item id from JSONL rows ``{"id", "completion"}`` or ``{"id",
    "completions": [...]}`` (rows with the same id accumulate), or a JSON object mapping id to
    a completion or a list of completions."""
    path = Path(path)
    if not path.exists():
        raise DmpoError(f"no such predictions file: {path}")
    out: dict[str, list[str]] = {}
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DmpoError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row or not ({"completion", "completions"} & set(row)):
                raise DmpoError(f"{path}:{lineno}: each row needs 'id' and 'completion' or 'completions'")
            values = row.get("completions", [row.get("completion")])
            out.setdefault(str(row["id"]), []).extend(_as_texts(values))
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DmpoError(f"{path}: not valid JSON ({exc.msg})") from None
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
