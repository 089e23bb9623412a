"""What every NP-Bench task is: a seeded generator, an exact solver, a tolerant parser, a
strict validator, prompts and an image. One module per task under ``dmpo.npbench.tasks``.

A task subclass supplies the task-specific pieces (the abstract methods below); this base
turns them into ``generate``, ``evaluate``, ``prompt`` and ``render`` with the same
semantics for every task.
"""

from __future__ import annotations

import json
import math
import random
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from dmpo.errors import DmpoError
from dmpo.npbench.parsing import extract_answer, is_int_id, parse_int_list

DIFFICULTIES: tuple[str, ...] = ("tiny", "easy", "medium", "hard", "bench")
Sense = Literal["min", "max"]

# Reward used for training (docs/npbench.md): 0.1 for a parseable final Answer line, plus QR if valid.
FORMAT_REWARD = 0.1
# A valid answer with QR ≥ 1 − OPTIMAL_TOL is optimal.
OPTIMAL_TOL = 1e-9


@dataclass
class Solution:
    """What a solver returns: the objective value, a witness answer, and whether the value is
    a proved optimum (False when a time limit stopped the search)."""

    value: float
    answer: Any
    proved: bool


@dataclass
class Instance:
    """One generated (or loaded) problem instance.

    ``question`` is the benchmark's own JSON layout; ``optimum`` the exact optimum, ``proved``
    whether it is a proved optimum (False when a solver limit stopped the search: then it is
    the best value found, or for a public file that was not re-solved, its ``ground_truth``),
    ``solution`` a witness answer string that scores ``optimum``. ``reference`` is the value a
    loaded public file claimed (its ``ground_truth``), kept for comparison; QR never uses it
    when a proved optimum is known.
    """

    task: str
    difficulty: str
    seed: int | None
    question: dict
    optimum: float | None
    proved: bool
    solution: str | None = None
    id: str = ""
    reference: float | None = None
    # (task, what task.prepare returned): tied to the task that prepared it.
    _prepared: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("_prepared")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Instance:
        """An instance from ``to_dict()`` output, every field type checked (DmpoError)."""
        if not isinstance(data, dict):
            raise DmpoError(f"an instance must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("task", "question") if k not in data]
        if missing:
            raise DmpoError(f"instance is missing field(s) {missing}; it has {sorted(data)}")
        _require_type(data, "task", str)
        _require_type(data, "difficulty", str, optional=True)
        _require_type(data, "seed", int, optional=True)
        _require_type(data, "proved", bool, optional=True)
        _require_type(data, "solution", str, optional=True)
        _require_type(data, "id", (str, int), optional=True)
        for key in ("optimum", "reference"):
            value = data.get(key)
            if value is not None and not is_number(value):
                raise DmpoError(f"instance field {key!r} must be a finite number or null, got {value!r}")
        return cls(
            task=data["task"],
            difficulty=data.get("difficulty") or "unknown",
            seed=data.get("seed"),
            question=data["question"],
            optimum=data.get("optimum"),
            proved=data.get("proved", False),
            solution=data.get("solution"),
            id=str(data.get("id", "")),
            reference=data.get("reference"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not NaN or infinity)."""
    return type(value) in (int, float) and math.isfinite(value)


def _require_type(data: dict, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> None:
    value = data.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) and kind is not bool:
        ok = False
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DmpoError(f"instance field {key!r} must be {names}{' or null' if optional else ''}, "
                        f"got {value!r:.80}")


@dataclass(frozen=True)
class Verdict:
    """The judgement of one answer.

    ``well_formed``: the completion has a final ``Answer:`` that parses into the task's answer
    shape. ``valid``: the answer is feasible. ``value``: its objective value (None if
    invalid). ``quality_ratio``: 0 if invalid, else optimum/value (min) or value/optimum (max).
    ``answer``: the parsed answer (canonical, hashable) for diversity counting.
    """

    well_formed: bool
    valid: bool
    value: float | None
    quality_ratio: float
    reason: str = ""
    answer: Any = None

    @property
    def reward(self) -> float:
        """Training reward: 0.1·well_formed + QR·valid."""
        return FORMAT_REWARD * self.well_formed + self.quality_ratio * self.valid

    @property
    def correct(self) -> bool:
        """The answer is optimal: valid with QR ≥ 1 (what pass@k counts). For task sources
        (``dmpo.sources``), where math and reasoning-gym call a right answer correct."""
        return self.valid and self.quality_ratio >= 1.0 - OPTIMAL_TOL


def quality_ratio(value: float | None, optimum: float | None, sense: Sense, *, cap: bool = False) -> float:
    """QR of a valid answer's value; 0 when there is no value or no reference optimum."""
    if value is None or optimum is None:
        return 0.0
    if sense == "max":
        # optimum 0: nothing to gain, every valid answer is optimal (0/0 = 1).
        ratio = 1.0 if optimum == 0 else value / optimum
    else:
        if value == 0:
            ratio = 1.0 if optimum == 0 else 0.0  # guard: cannot happen with exact optima
        else:
            ratio = optimum / value
    ratio = max(0.0, float(ratio))
    return min(ratio, 1.0) if cap else ratio


class Task(ABC):
    """Base of every NP-Bench task. Subclasses set the class attributes and implement the
    abstract methods; everything public is defined here."""

    name: ClassVar[str]
    public_name: ClassVar[str]  # the ``task_type`` of the public benchmark files
    category: ClassVar[str]  # text category: graph, schedule, partition, selection, planning
    vision_group: ClassVar[str | None]  # constraint, covering, partitioning, subgraph, path
    sense: ClassVar[Sense]
    description: ClassVar[str]  # one paragraph: what to find, for the nl prompt
    answer_format: ClassVar[str]  # how to write the answer, for the nl prompt
    solver_time_limit: ClassVar[float] = 10.0

    # ---- task-specific pieces ---------------------------------------------------------
    @abstractmethod
    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        """A random question in the public layout, drawn only from ``rng``."""

    @abstractmethod
    def solve(self, question: dict, time_limit: float) -> Solution:
        """Exact optimum with a witness (CP-SAT or a proven exact method)."""

    @abstractmethod
    def check(self, prepared: Any, answer: Any) -> tuple[bool, float | None, str]:
        """Strict feasibility of a parsed answer: (valid, value, reason-if-invalid)."""

    @abstractmethod
    def brute_force(self, question: dict) -> float:
        """Reference solver for the tests: the optimum by exhaustive search (exponential time).

        Nothing in the library calls it; the test suite checks every exact solver against it on
        ``tiny`` instances. Written as plainly as possible, independent of :meth:`solve`."""

    @abstractmethod
    def compact_question(self, question: dict) -> str:
        """Short line-based encoding of the question for small models."""

    @abstractmethod
    def validate_question(self, question: Any) -> None:
        """Raise DmpoError with a clear message if ``question`` is not a well-formed instance."""

    def prepare(self, question: dict) -> Any:
        """Precompute what ``check`` needs (adjacency sets, int keys); cached per Instance."""
        return question

    def parse_answer(self, answer: str) -> Any:
        """Parse the text after ``Answer:`` into the task's answer shape, or None. Never raises.
        Default: a flat list of ints."""
        return parse_int_list(answer)

    def format_answer(self, answer: Any) -> str:
        """The canonical answer string for a parsed answer (inverse of parse_answer)."""
        return "[" + ", ".join(str(v) for v in answer) + "]"

    def canonical(self, answer: Any) -> Any:
        """A hashable normal form, so that equal solutions written differently count once
        in diversity metrics. Default: the tuple as written (order matters)."""
        return _freeze(answer)

    def example(self) -> tuple[dict, str]:
        """A small example question and its answer string, for the nl prompt."""
        inst = self.generate(seed=0, difficulty="tiny")
        return inst.question, inst.solution or ""

    def render(self, instance: Instance | dict) -> Any:
        """A PIL image of the instance (graph drawing or table) for vision models."""
        raise NotImplementedError(f"{self.name} has no renderer")

    def vision_prompt(self, instance: Instance | dict, render: str = "grid", *, include_text: bool = False,
                      style: str = "nl", size: int | None = 448) -> Any:
        """A ``VisionPrompt(text, image)`` for vision-language models (``npbench.vision``): the
        structure in the picture, ``render`` ``grid`` (a pixel encoding for small models trained
        from scratch, decoded by ``npbench.grid.decode_grid``) or ``drawing`` (labelled graph or
        table, ``size`` px square); the text says what to find and how to answer. ``style``
        ``nl`` or ``compact`` as for ``prompt``; ``include_text`` adds the text encoding."""
        from dmpo.npbench.vision import vision_prompt  # vision imports this module

        return vision_prompt(self, instance, render, include_text=include_text, style=style, size=size)

    # ---- the public surface -----------------------------------------------------------
    def difficulty_params(self, difficulty: str) -> Any:
        sizes = getattr(self, "SIZES", None)
        if difficulty not in DIFFICULTIES or (sizes is not None and difficulty not in sizes):
            raise DmpoError(f"unknown difficulty {difficulty!r} for {self.name}; valid: {list(DIFFICULTIES)}")
        return sizes[difficulty] if sizes is not None else None

    def generate(self, seed: int, difficulty: str = "easy", *, time_limit: float | None = None) -> Instance:
        """The instance for ``(task, difficulty, seed)``; the same on every machine.
        ``proved`` is False when ``time_limit`` stopped the solver before it proved the optimum
        (``optimum`` is then the best value found, a bound, not the optimum)."""
        if difficulty not in DIFFICULTIES:
            raise DmpoError(f"unknown difficulty {difficulty!r}; valid: {list(DIFFICULTIES)}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise DmpoError(f"seed must be an int, got {seed!r}")
        check_time_limit(time_limit)
        rng = random.Random(f"npbench/{self.name}/{difficulty}/{seed}")
        question = self.generate_question(rng, difficulty)
        sol = self.solve(question, self.solver_time_limit if time_limit is None else time_limit)
        return Instance(
            task=self.name,
            difficulty=difficulty,
            seed=seed,
            question=question,
            optimum=sol.value,
            proved=sol.proved,
            solution=self.format_answer(sol.answer),
            id=f"{self.name}-{difficulty}-{seed}",
        )

    def evaluate(self, instance: Instance | dict, completion: Any, *, cap: bool = False) -> Verdict:
        """Judge a completion (the whole model output, or just an answer) against an instance.

        Never raises on the completion; raises DmpoError only for a malformed instance or one
        of another task."""
        if not isinstance(instance, Instance):
            instance = Instance(self.name, "unknown", None, instance, None, False)
        cached = instance._prepared
        if cached is None or cached[0] is not self:
            self._check_instance(instance)
            cached = instance._prepared = (self, self.prepare(instance.question))
        prepared = cached[1]
        text = extract_answer(completion)
        if text is None:
            return Verdict(False, False, None, 0.0, "no final 'Answer:' found")
        try:
            answer = self.parse_answer(text)
        except (ValueError, TypeError, RecursionError, OverflowError):
            answer = None
        if answer is None:
            return Verdict(False, False, None, 0.0, f"could not parse answer {text[:80]!r}")
        try:
            valid, value, reason = self.check(prepared, answer)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            valid, value, reason = False, None, f"invalid answer ({type(exc).__name__})"
        if not valid:
            return Verdict(True, False, None, 0.0, reason or "infeasible", self.canonical(answer))
        qr = quality_ratio(value, instance.optimum, self.sense, cap=cap)
        return Verdict(True, True, value, qr, "", self.canonical(answer))

    def _check_instance(self, instance: Instance) -> None:
        """DmpoError unless ``instance`` is a well-formed instance of this task."""
        if instance.task != self.name:
            from dmpo.npbench.registry import task_name_for  # the registry imports this module

            if not isinstance(instance.task, str) or task_name_for(instance.task) != self.name:
                raise DmpoError(
                    f"instance {instance.id or '(no id)'} is a {instance.task!r} instance, not "
                    f"{self.name!r}: judge it with npbench.get_task({instance.task!r})")
        if instance.optimum is not None and not is_number(instance.optimum):
            raise DmpoError(f"instance {instance.id or '(no id)'}: optimum must be a finite number "
                            f"or None, got {instance.optimum!r}")
        self.validate_question(instance.question)

    def prompt(self, instance: Instance | dict, style: str = "nl") -> str:
        """``nl``: the benchmark's seven-section prompt; ``compact``: the task name and a short
        encoding, one item per line, after which a model writes ``Answer: ...``."""
        question = instance.question if isinstance(instance, Instance) else instance
        self.validate_question(question)
        if style == "compact":
            # The completion itself carries "Answer: ...", so that rewards read it the same way
            # whatever the prompt style.
            return f"{self.name}\n{self.compact_question(question)}\n"
        if style == "nl":
            return self._nl_prompt(question)
        raise DmpoError(f"unknown prompt style {style!r}; valid: ['nl', 'compact']")

    def _nl_prompt(self, question: dict) -> str:
        example_q, example_a = self.example()
        title = self.name.replace("_", " ")
        return (
            f"## Introduction\nYou are an expert in combinatorial optimisation, in particular the "
            f"{title} problem.\n\n"
            f"## Task description\n{self.description}\n\n"
            f"## Question\n{_py_dict(question)}\n\n"
            f"## Example Input and Output\nInput: {_py_dict(example_q)}\nOutput: Answer: {example_a}\n\n"
            f"## Submission Format\n{self.answer_format}\n\n"
            "## Instructions\nThink step by step, check that your answer satisfies every constraint, "
            "and do not repeat yourself.\n\n"
            "## Response format\nEnd your response with a final line `Answer: YOUR ANSWER`."
        )


def check_time_limit(time_limit: float | None) -> None:
    """DmpoError unless ``time_limit`` is None (the task's default) or a finite number > 0: a
    solver given no time returns its fallback, which is not an optimum."""
    if time_limit is None:
        return
    if not is_number(time_limit) or time_limit <= 0:
        raise DmpoError(f"the solver time limit must be a finite number of seconds > 0, got {time_limit!r}")


def _py_dict(question: dict) -> str:
    return repr(question)


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


# ---- helpers shared by the task modules --------------------------------------------------
def require(condition: bool, message: str) -> None:
    """Raise DmpoError(message) unless condition: for validate_question."""
    if not condition:
        raise DmpoError(message)


def int_keys(mapping: Any, what: str) -> list[int]:
    """Keys "0".."n-1" of a question mapping as ints, or a clear DmpoError."""
    require(isinstance(mapping, dict), f"{what} must be a JSON object, got {type(mapping).__name__}")
    try:
        keys = sorted(int(k) for k in mapping)
    except (TypeError, ValueError):
        raise DmpoError(f"{what} keys must be integer strings \"0\"..\"n-1\"") from None
    require(keys == list(range(len(keys))), f"{what} keys must be \"0\"..\"n-1\", got {keys[:10]}")
    return keys


def distinct_ids_in_range(answer: Any, n: int) -> str:
    """'' if ``answer`` is a list of distinct int ids in 0..n-1, else the reason."""
    if not isinstance(answer, list):
        return "answer is not a list"
    seen: set[int] = set()
    for v in answer:
        if not is_int_id(v):
            return f"{v!r} is not an integer id"
        if not 0 <= v < n:
            return f"id {v} out of range 0..{n - 1}"
        if v in seen:
            return f"id {v} repeated"
        seen.add(v)
    return ""
