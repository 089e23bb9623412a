"""reasoning-gym's procedural tasks as a source: ``rg:NAME`` (``rg:countdown``, ``rg:graph_color``,
any name of ``reasoning_gym.factory.DATASETS``), with its own generator and ``score_answer``.

    rg:countdown
    rg:countdown?min_numbers=3&max_numbers=4&max_target=50     fields of the task's config

Item ``seed`` is ``create_dataset(NAME, seed=seed, size=1, **config)[0]``: the same on every
machine and for every caller, and its id (``countdown-1000003``) names it completely, so
``dmpo bench score rg:countdown PREDICTIONS`` rebuilds the items from the predictions' ids.
Callers take seeds from ``dmpo.npbench.splits`` (RL prompts from 100,000, held-out items from
1,000,000), and the questions are split too (``dmpo.sources.base.fits_split``): a seed whose
question belongs to the other side is not an item and is passed over, so train and held-out
sets share neither seeds nor questions (a held-out set costs about 4 generations per item). A
seed whose generation fails is skipped and counted (``source.skipped``), and the next is used.

Answer: the last ``<answer>...</answer>`` (reasoning-gym's own convention; the only way to give
an answer of several lines), ``\\boxed{...}``, or the rest of the line after ``Answer:``;
white space around it is removed and nothing else. Reward: 0.1 for a well-formed answer plus
the task's ``score_answer`` (in [0, 1]); ``correct`` = a score of 1.

Safety: some scorers evaluate the answer with sympy's ``parse_expr`` (countdown), which runs
Python ``eval``. Answers with a double underscore, and powers or factorials too large to
compute (``9**9**9``: a C call no time limit interrupts, ``dmpo.sources.extract.too_costly``),
are refused (well formed, score 0) before the scorer sees them; run untrusted models in a
sandbox all the same. Each generation and each score runs under ``timeout_s`` (5 s).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from dmpo.errors import DmpoError
from dmpo.sources.base import Item, Verdict, check_style, fits_split, split_spec
from dmpo.sources.countdown import MAX_NUMBERS, countdown_solutions
from dmpo.sources.extract import final_answer, too_costly
from dmpo.sources.timeouts import call_with_timeout

_CACHE_SIZE = 20_000
_MAX_SKIPPED_SEEDS = 1_000


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
        from reasoning_gym.factory import DATASETS
    except ImportError:
        raise DmpoError("rg: sources need reasoning-gym; install it with pip install 'dmpo[sources]'") from None
    return reasoning_gym, DATASETS


def task_names() -> list[str]:
    """Every reasoning-gym task name."""
    return sorted(_reasoning_gym()[1])


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


class ReasoningGymSource:
    """``rg:NAME`` (module doc)."""

    kind = "rg"
    generated = True

    def __init__(self, spec: str, *, timeout_s: float | None = 5.0) -> None:
        prefix, task, options = split_spec(spec)
        if prefix != "rg":
            raise DmpoError(f"not a reasoning-gym source: {spec!r}")
        rg, datasets = _reasoning_gym()
        if task not in datasets:
            close = difflib.get_close_matches(task, list(datasets), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise DmpoError(f"unknown reasoning-gym task {task!r}{hint} ({len(datasets)} tasks: "
                            f"{', '.join(sorted(datasets)[:8])}, ...)")
        config_cls = datasets[task][1]
        fields = {f.name for f in dataclasses.fields(config_cls)} - {"seed", "size"}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise DmpoError(f"{spec!r}: {task}'s config has no field(s) {unknown}; valid: {sorted(fields)}")
        self.name = spec.strip()
        self.task = task
        self.config = {key: _scalar(value) for key, value in options.items()}
        self.timeout_s = timeout_s
        self._create = rg.create_dataset
        self._skipped: dict[str, str] = {}
        self._entries: dict[int, dict] = {}
        self._datasets: dict[int, Any] = {}
        try:  # a bad config is an error now, not at the first item
            self._create(task, seed=0, size=1, **self.config)
        except (AssertionError, TypeError, ValueError) as exc:
            raise DmpoError(f"{spec!r}: invalid config for {task}: {exc}") from None
        errors = []
        for seed in range(5):  # a config its validation passes may still generate nothing
            try:
                self._entry(seed)
                break
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        else:
            raise DmpoError(f"{spec!r}: {task} generates no item with this config ({errors[-1][:200]})")

    @property
    def skipped(self) -> dict[str, str]:
        return dict(self._skipped)

    # ---- items -------------------------------------------------------------------------------
    def _entry(self, seed: int) -> tuple[Any, dict]:
        """(the dataset of item ``seed``, its entry); raises what the generator raises."""
        if seed not in self._entries:
            if len(self._entries) >= _CACHE_SIZE:
                self._entries.clear()
                self._datasets.clear()
            dataset = self._create(self.task, seed=seed, size=1, **self.config)
            self._entries[seed] = call_with_timeout(dataset.__getitem__, self.timeout_s, 0)
            self._datasets[seed] = dataset
        return self._datasets[seed], self._entries[seed]

    def _item(self, seed: int) -> Item | None:
        """Item ``seed``, or None when its question belongs to the other side of the split."""
        _, entry = self._entry(seed)
        question = str(entry["question"])
        if not fits_split(seed, question):
            return None
        answer = entry.get("answer")
        return Item(self.name, f"{self.task}-{seed}", question, answer if isinstance(answer, str) else None, seed)

    def items(self, start: int = 0, count: int | None = None) -> list[Item]:
        if count is None or count < 1:
            raise DmpoError(f"{self.name}: give a positive number of items, got {count}")
        items: list[Item] = []
        seed = start
        while len(items) < count:
            if seed - start > 50 * count + 1_000:
                raise DmpoError(f"{self.name}: found only {len(items)} of {count} items in seeds "
                                f"{start}..{seed - 1}; its configuration yields too few distinct questions")
            try:
                item = self._item(seed)
                if item is not None:
                    items.append(item)
            except DmpoError:
                raise
            except Exception as exc:  # the task's generator failed for this seed
                self._skipped[f"{self.task}-{seed}"] = f"generation failed ({type(exc).__name__}: {exc})"[:200]
                if len(self._skipped) > _MAX_SKIPPED_SEEDS:
                    raise DmpoError(f"{self.name}: generation failed for {len(self._skipped)} seeds "
                                    f"(last: {self._skipped[f'{self.task}-{seed}']})") from None
            seed += 1
        return items

    def item_for_id(self, item_id: str) -> Item:
        task, _, seed = str(item_id).rpartition("-")
        if task != self.task or not seed.isdigit():
            raise DmpoError(f"{self.name}: item ids look like '{self.task}-<seed>', got {item_id!r}")
        try:
            item = self._item(int(seed))
        except Exception as exc:
            raise DmpoError(f"{self.name}: cannot generate item {item_id!r}: {exc}") from None
        if item is None:
            raise DmpoError(f"{self.name}: seed {seed} is not an item (its question belongs to the other "
                            "side of the train / held-out split)")
        return item

    def item_from_json(self, text: str) -> Item:
        item = Item.from_json(text)
        if item.seed is None:
            raise DmpoError(f"{self.name}: item {item.id!r} has no seed")
        return item

    def answers(self, item: Item, *, limit: int = 64) -> list[str]:
        """Correct answers of ``item`` for a supervised warm start, each one checked by
        :meth:`score`: for countdown with at most ``MAX_NUMBERS`` numbers every solution
        (``dmpo.sources.countdown``, up to ``limit``), else the task's own reference answer when
        it scores as correct; ``[]`` when there is none."""
        if item.seed is None:
            raise DmpoError(f"{self.name}: item {item.id!r} has no seed")
        _, entry = self._entry(item.seed)
        candidates: list[str] = []
        metadata = entry.get("metadata") or {}
        if self.task == "countdown" and len(metadata.get("numbers", ())) <= MAX_NUMBERS:
            candidates = countdown_solutions(metadata["numbers"], metadata["target"], limit=limit)
        elif item.answer is not None:
            candidates = [item.answer]
        return [text for text in candidates if self.score(item, f"Answer: {text}").correct][:limit]

    # ---- prompts and scores ------------------------------------------------------------------
    @property
    def prompt_version(self) -> int:
        """2 for countdown, whose compact prompt became short (cached warm starts are keyed by it)."""
        return 2 if self.task == "countdown" else 1

    def prompt(self, item: Item, style: str = "compact") -> str:
        """``compact``: the question text, except for countdown, whose compact prompt is the
        problem alone (``countdown: make 12 from 4, 3, 1``: a tenth of the question's length,
        for the built-in character model); ``nl``: the question and how to answer."""
        check_style(style)
        if style == "compact":
            if self.task == "countdown" and item.seed is not None:
                metadata = self._entry(item.seed)[1].get("metadata") or {}
                if "target" in metadata and metadata.get("numbers"):
                    numbers = ", ".join(str(n) for n in metadata["numbers"])
                    return f"countdown: make {metadata['target']} from {numbers}\n"
            return f"{item.question}\n"
        return (f"{item.question}\n\nThink step by step, then give only the final answer between "
                "<answer> and </answer>.")

    def score(self, item: Item, completion: str) -> Verdict:
        if item.seed is None:
            raise DmpoError(f"{self.name}: item {item.id!r} has no seed")
        dataset, entry = self._entry(item.seed)
        answer = final_answer(completion, clean=False)
        if answer is None:
            return Verdict(False, False, 0.0, None, "no final answer (<answer>...</answer> or 'Answer: ...')")
        canonical = " ".join(answer.split())
        refused = "a double underscore is refused" if "__" in answer else too_costly(answer)
        if refused:
            return Verdict(True, False, 0.0, canonical, refused)
        score = float(call_with_timeout(dataset.score_answer, self.timeout_s, answer, entry))
        if not math.isfinite(score):
            raise ValueError(f"{self.task}'s score_answer returned {score}")
        score = min(max(score, 0.0), 1.0)
        correct = score >= 1.0 - 1e-9
        return Verdict(True, correct, score, canonical, "" if correct else f"score {score:g}")
