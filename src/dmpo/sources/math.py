"""Math problems with a gold answer, judged by math-verify: ``math:PATH`` and ``math:synthetic``.

    math:data.jsonl                          columns "problem" and "answer"
    math:data.csv?problem=question&answer=solution&id=uid
    math:folder?split=test                   a ``datasets`` folder (save_to_disk), one split
    math:synthetic                           procedurally generated (dmpo.sources.synthetic)
    math:synthetic?kind=fractions

Files: JSONL, JSON (a list of objects), CSV, parquet, or a ``datasets`` folder. Options after
``?``: ``problem``, ``answer`` and ``id`` name the columns (the id column is optional: without
it an item's id is its row number), ``split`` picks a split of a ``DatasetDict`` folder. A file
is used whole, in its order: train on one file and evaluate on another.

Gold answers may be bare (``1/3``, ``\\frac{1}{3}``, ``x=3``) or a full solution that ends in
``\\boxed{...}``. Each is parsed once, when the file is read; a gold answer that cannot be
parsed is **skipped and counted** (``source.skipped`` maps its id to the reason): it is never
trained on, evaluated or scored, and every command reports how many were skipped.

Reward (as in the paper): 0.1 for a well-formed final answer (``\\boxed{...}`` or ``Answer:
...``, see ``dmpo.sources.extract``) plus 1 if math-verify finds it equal to the gold answer
(``\\frac{2}{6}`` = ``1/3`` = ``0.333333``; ``x = 3`` = ``3``). An answer too costly to
evaluate (``9^{9^{9}}``) is well formed and wrong.

Time limits: math-verify's own time-out is ``signal.alarm`` in the main thread only, and it
refuses to run in another thread with it on; it is called here with its time-out off, and each
parse or comparison runs under :func:`dmpo.sources.timeouts.call_with_timeout` (``timeout_s``,
5 s by default), which also works off the main thread and nests inside a reward guard's limit.
A comparison that times out raises :class:`~dmpo.sources.timeouts.RewardTimeout`: the reward
guard and the evaluation count it as a failure of that completion.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.sources import synthetic
from dmpo.sources.base import Item, Verdict, check_style, split_spec
from dmpo.sources.extract import final_answer, too_costly
from dmpo.sources.timeouts import RewardTimeout, call_with_timeout

FILE_OPTIONS = ("problem", "answer", "id", "split")
SYNTHETIC_OPTIONS = ("kind",)
_GOLD_CACHE_SIZE = 100_000
_VERDICT_CACHE_SIZE = 100_000


class _NoTimeoutWarning(logging.Filter):
    """math-verify warns once that its time-out is off: here every call has our own limit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


def _math_verify() -> Any:
    try:
        import math_verify
    except ImportError:
        raise DmpoError("math: sources need math-verify; install it with pip install 'dmpo[sources]'") from None
    for name in ("math_verify.parser", "math_verify.grader"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTimeoutWarning) for f in logger.filters):
            logger.addFilter(_NoTimeoutWarning())
    return math_verify


def _parsed(mv: Any, text: str) -> list:
    """math-verify's parse with its own (SIGALRM) time-out off: the caller sets the limit."""
    return mv.parse(text, parsing_timeout=None)


def _has_expression(parsed: list) -> bool:
    return any(not isinstance(p, str) for p in parsed)


def parse_gold(text: Any, timeout_s: float | None = 5.0) -> tuple[list | None, str]:
    """(math-verify's parse of a gold answer, '') or (None, the reason it cannot be used)."""
    if isinstance(text, bool) or text is None:
        return None, "no gold answer"
    if isinstance(text, (int, float)):
        text = repr(text) if isinstance(text, float) else str(text)
    if not isinstance(text, str) or not text.strip():
        return None, "empty gold answer"
    text = text.strip()
    mv = _math_verify()
    costly = too_costly(text)
    if costly:
        return None, f"gold answer refused: {costly}"
    try:
        parsed = call_with_timeout(_parsed, timeout_s, mv, text)
        if not _has_expression(parsed) and "$" not in text and "\\boxed" not in text:
            parsed = call_with_timeout(_parsed, timeout_s, mv, f"${text}$")
    except RewardTimeout:
        return None, "parsing the gold answer timed out"
    except Exception as exc:  # math-verify / sympy internals
        return None, f"gold answer could not be parsed ({type(exc).__name__})"
    if not _has_expression(parsed):
        return None, f"gold answer {text[:60]!r} could not be parsed"
    return parsed, ""


class MathSource:
    """``math:PATH`` or ``math:synthetic`` (module doc). ``timeout_s`` bounds each parse and
    each comparison of math-verify."""

    kind = "math"

    def __init__(self, spec: str, *, timeout_s: float | None = 5.0) -> None:
        prefix, body, options = split_spec(spec)
        if prefix != "math":
            raise DmpoError(f"not a math source: {spec!r}")
        if not body:
            raise DmpoError("math: needs a file (math:data.jsonl) or 'synthetic' (math:synthetic)")
        self.name = spec.strip()
        self.timeout_s = timeout_s
        self.generated = body == "synthetic"
        self._skipped: dict[str, str] = {}
        self._golds: dict[str, list] = {}
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._items: list[Item] | None = None
        allowed = SYNTHETIC_OPTIONS if self.generated else FILE_OPTIONS
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise DmpoError(f"{spec!r}: unknown option(s) {unknown}; valid: {list(allowed)}")
        self.options = options
        if self.generated:
            self.synthetic_kind = options.get("kind", "mixed")
            synthetic.problem(0, self.synthetic_kind)  # checks the kind
        else:
            self.path = Path(body).expanduser()
            if not self.path.exists():
                raise DmpoError(f"{spec}: no such file or folder: {self.path}")
        _math_verify()

    # ---- items -------------------------------------------------------------------------------
    @property
    def skipped(self) -> dict[str, str]:
        """Ids of items whose gold answer could not be parsed, with the reason."""
        return dict(self._skipped)

    def items(self, start: int = 0, count: int | None = None) -> list[Item]:
        if self.generated:
            if count is None or count < 1:
                raise DmpoError(f"{self.name}: give a positive number of problems, got {count}")
            return [self._synthetic(seed) for seed in range(start, start + count)]
        if self._items is None:
            self._items = self._load()
        return list(self._items)

    def item_for_id(self, item_id: str) -> Item:
        if self.generated:
            prefix, _, seed = str(item_id).rpartition("-")
            if prefix != "synthetic" or not seed.lstrip("-").isdigit():
                raise DmpoError(f"{self.name}: item ids look like 'synthetic-<seed>', got {item_id!r}")
            return self._synthetic(int(seed))
        for item in self.items():
            if item.id == str(item_id):
                return item
        raise DmpoError(f"{self.name}: no item with id {item_id!r}")

    def item_from_json(self, text: str) -> Item:
        return Item.from_json(text)

    def _synthetic(self, seed: int) -> Item:
        question, answer, kind = synthetic.problem(seed, self.synthetic_kind)
        return Item(self.name, f"synthetic-{seed}", question, answer, seed, {"kind": kind})

    def _load(self) -> list[Item]:
        rows, columns = read_rows(self.path, split=self.options.get("split"))
        problem_col = self.options.get("problem", "problem")
        answer_col = self.options.get("answer", "answer")
        id_col = self.options.get("id", "id" if "id" in columns else None)
        for role, column in (("problem", problem_col), ("answer", answer_col), ("id", id_col)):
            if column is not None and column not in columns:
                raise DmpoError(
                    f"{self.path} has no {role} column {column!r}; its columns are {sorted(columns)}. "
                    f"Name the column with math:{self.path}?{role}=COLUMN")
        items: list[Item] = []
        seen: set[str] = set()
        for i, row in enumerate(rows):
            item_id = str(row.get(id_col)) if id_col is not None else str(i)
            if item_id in seen:
                raise DmpoError(f"{self.path}: id {item_id!r} appears more than once (row {i})")
            seen.add(item_id)
            question = row.get(problem_col)
            if not isinstance(question, str) or not question.strip():
                self._skipped[item_id] = "empty problem"
                continue
            gold = row.get(answer_col)
            parsed, reason = parse_gold(gold, self.timeout_s)
            if parsed is None:
                self._skipped[item_id] = reason
                continue
            gold_text = str(gold).strip()
            self._remember(gold_text, parsed)
            items.append(Item(self.name, item_id, question.strip(), gold_text))
        if not items:
            reasons = sorted(set(self._skipped.values()))[:3]
            raise DmpoError(f"{self.path}: none of its {len(rows)} rows can be used "
                            f"({len(self._skipped)} skipped: {'; '.join(reasons)})")
        return items

    # ---- prompts and scores ------------------------------------------------------------------
    def prompt(self, item: Item, style: str = "compact") -> str:
        check_style(style)
        if style == "compact":
            return f"{item.question}\n"
        return (f"{item.question}\n\nSolve the problem step by step. Put your final answer within "
                "\\boxed{}.")

    def _remember(self, gold: str, parsed: list) -> None:
        if len(self._golds) >= _GOLD_CACHE_SIZE:
            self._golds.clear()
        self._golds[gold] = parsed

    def gold(self, item: Item) -> list:
        """The parsed gold answer of an item (DmpoError if it cannot be parsed: such items are
        skipped when a file is read, so this is a bad item given directly)."""
        key = str(item.answer) if item.answer is not None else ""
        parsed = self._golds.get(key)
        if parsed is None:
            parsed, reason = parse_gold(item.answer, self.timeout_s)
            if parsed is None:
                raise DmpoError(f"{self.name}: item {item.id!r}: {reason}")
            self._remember(key, parsed)
        return parsed

    def answers(self, item: Item, *, limit: int = 64) -> list[str]:
        """The gold answer for a supervised warm start, when it scores as correct; else ``[]``."""
        if item.answer is None or limit < 1:
            return []
        return [item.answer] if self.score(item, f"Answer: {item.answer}").correct else []

    def score(self, item: Item, completion: str) -> Verdict:
        gold = self.gold(item)
        answer = final_answer(completion)
        if answer is None:
            return Verdict(False, False, 0.0, None, "no final answer (\\boxed{...} or 'Answer: ...')")
        costly = too_costly(answer)
        if costly:
            return Verdict(True, False, 0.0, answer, costly)
        # The verdict depends only on the gold answer and the extracted final answer: a policy
        # repeats itself (within a group and across epochs), so judgements are kept (bounded).
        key = (str(item.answer), answer)
        cached = self._verdicts.get(key)
        if cached is None:
            cached = self._judge(gold, answer, None if item.answer is None else str(item.answer))
            if len(self._verdicts) >= _VERDICT_CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[key] = cached
        return cached

    def _judge(self, gold: list, answer: str, gold_text: str | None = None) -> Verdict:
        fast = _rational_verdict(gold_text, answer, lambda: _canonical(gold))
        if fast is not None:
            return fast
        mv = _math_verify()
        predicted = call_with_timeout(_parsed, self.timeout_s, mv, f"\\boxed{{{answer}}}")
        if not _has_expression(predicted):
            predicted = call_with_timeout(_parsed, self.timeout_s, mv, f"${answer}$")
        if not _has_expression(predicted):
            return Verdict(True, False, 0.0, answer, f"answer {answer[:60]!r} is not a math expression")
        correct = bool(call_with_timeout(mv.verify, self.timeout_s, gold, predicted, timeout_seconds=None))
        canonical = _canonical(gold if correct else predicted)
        return Verdict(True, correct, 1.0 if correct else 0.0, canonical, "" if correct else "not equal to the gold answer")


_RATIONAL = re.compile(r"-?\d{1,40}(?:/\d{1,40})?")


def _rational_verdict(gold_text: str | None, answer: str, gold_canonical: Any) -> Verdict | None:
    """The verdict math-verify gives when the gold and the final answer are both plain integers or
    fractions (``-7/18``): exact equality, and the same canonical answer (a correct one is the
    gold's, ``gold_canonical()``; a wrong one its value in lowest terms, ``2/6`` → ``1/3``) —
    without parsing LaTeX (math-verify is ~100× slower). ``None`` for anything else (decimals,
    percentages and expressions keep math-verify's own rules)."""
    if gold_text is None:
        return None
    gold_text, answer = gold_text.strip(), answer.strip()
    if not (_RATIONAL.fullmatch(gold_text) and _RATIONAL.fullmatch(answer)):
        return None
    try:
        gold, value = Fraction(gold_text), Fraction(answer)
    except ZeroDivisionError:  # 1/0: math-verify's own rules
        return None
    correct = gold == value
    canonical = gold_canonical() if correct else str(value)
    return Verdict(True, correct, 1.0 if correct else 0.0, canonical, "" if correct else "not equal to the gold answer")


def _canonical(parsed: list) -> str:
    """One spelling per answer: the first parsed expression, printed by sympy."""
    expression = next((p for p in parsed if not isinstance(p, str)), parsed[0] if parsed else "")
    return str(expression)


# ---- files -------------------------------------------------------------------------------------
def read_rows(path: Path, *, split: str | None = None) -> tuple[list[dict[str, Any]], set[str]]:
    """(rows, column names) of a JSONL, JSON, CSV or parquet file or a ``datasets`` folder."""
    if path.is_dir():
        rows, columns = _read_datasets(path, split)
    else:
        if split is not None:
            raise DmpoError(f"{path}: 'split' is for a datasets folder, not a file")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            rows, columns = _read_parquet(path)
        else:
            text = _read_text(path)
            if suffix == ".jsonl":
                rows = _jsonl(text, path)
            elif suffix == ".json":
                rows = _json(text, path)
            elif suffix in (".csv", ".tsv"):
                rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
            else:
                raise DmpoError(f"{path}: unknown file type {suffix!r}; give .jsonl, .json, .csv, .tsv, "
                                ".parquet or a datasets folder")
            columns = set().union(*(row.keys() for row in rows)) if rows else set()
    if not rows:
        raise DmpoError(f"{path} holds no rows")
    return rows, columns


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DmpoError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DmpoError(f"cannot read {path}: {exc.strerror or exc}") from None


def _jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DmpoError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DmpoError(f"{path}:{number}: each line must be a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _json(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(text) if text.strip() else []
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DmpoError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DmpoError(f"{path}: expected a JSON list of objects")
    return data


def _read_parquet(path: Path) -> tuple[list[dict[str, Any]], set[str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DmpoError("reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's own error types
        raise DmpoError(f"{path}: not a readable parquet file ({exc})") from None
    return table.to_pylist(), set(table.column_names)


def _read_datasets(path: Path, split: str | None) -> tuple[list[dict[str, Any]], set[str]]:
    try:
        import datasets
    except ImportError:
        raise DmpoError("reading a datasets folder needs the datasets package") from None
    try:
        data = datasets.load_from_disk(str(path))
    except Exception as exc:  # FileNotFoundError and datasets' own errors
        raise DmpoError(f"{path}: not a datasets folder written by save_to_disk ({exc})") from None
    if isinstance(data, datasets.DatasetDict):
        names = sorted(data)
        if split is None and len(names) == 1:
            split = names[0]
        if split not in data:
            raise DmpoError(f"{path} holds the splits {names}; pick one with math:{path}?split=NAME")
        data = data[split]
    elif split is not None:
        raise DmpoError(f"{path} is a single dataset, it has no split {split!r}")
    return data.to_list(), set(data.column_names)
