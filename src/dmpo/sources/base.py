"""What a task source is: items with ids (and seeds, when generated), a prompt per item, and a
verdict per completion. NP-Bench (``dmpo.npbench.source.NPBenchSource``), math
(:class:`~dmpo.sources.math.MathSource`) and reasoning-gym
(:class:`~dmpo.sources.rg.ReasoningGymSource`) implement :class:`TaskSource`; training, evaluation
and ``dmpo bench score`` use nothing else.

The interface is structural (a ``Protocol``): NP-Bench implements it without importing this
package, which keeps the two core packages independent.

Splits: a generated source makes item ``seed`` the same on every machine; the caller picks the
seeds (``dmpo.npbench.splits``: RL prompts from 100,000, held-out evaluation from 1,000,000), so
train and held-out items never share a seed. Math and reasoning-gym problems come from small
spaces where two seeds can draw the same question, so their sources also split the *questions*:
a question belongs to the held-out side when a hash of its text falls in one quarter
(:func:`heldout_question`); seeds from ``HELDOUT_SEED_START`` take only such questions, lower
seeds only the others, so no held-out question is ever a training question. A file source has
no seeds: it is used as given (train on one file, evaluate on another).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from dmpo.errors import DmpoError

# Reward of a well-formed final answer, as in NP-Bench (``dmpo.npbench.base.FORMAT_REWARD``).
FORMAT_REWARD = 0.1
PROMPT_STYLES: tuple[str, ...] = ("compact", "nl")
# First seed of held-out items: ``dmpo.npbench.splits.EVAL_SEED_START`` (a test checks they agree;
# this package does not import NP-Bench).
HELDOUT_SEED_START = 1_000_000
HELDOUT_SHARE = 4  # one question in HELDOUT_SHARE is on the held-out side


def heldout_question(question: str) -> bool:
    """Whether a question is on the held-out side of the split (a hash of its text)."""
    return hashlib.sha256(question.encode("utf-8")).digest()[0] % HELDOUT_SHARE == 0


def fits_split(seed: int, question: str) -> bool:
    """Whether item ``seed`` may hold ``question``: held-out seeds take held-out questions only,
    other seeds the other questions only."""
    return heldout_question(question) == (seed >= HELDOUT_SEED_START)


@runtime_checkable
class SourceItem(Protocol):
    """One problem of a source."""

    id: str
    seed: int | None

    def to_json(self) -> str: ...


@runtime_checkable
class SourceVerdict(Protocol):
    """The judgement of one completion.

    ``well_formed``: a final answer was found where the source expects it. ``valid``: the answer
    is feasible (NP-Bench) or correct (math, reasoning-gym). ``correct``: the answer is right
    (math, reasoning-gym) or optimal (NP-Bench). ``value``: its objective value (NP-Bench) or
    score (math: 1/0, reasoning-gym: ``score_answer``); None when not well formed. ``answer``:
    its canonical form (hashable; equal answers written differently are equal), for
    distinct-answer counts. ``reward``: the training reward.
    """

    well_formed: bool
    valid: bool
    value: float | None
    answer: Hashable | None
    reason: str

    @property
    def correct(self) -> bool: ...

    @property
    def reward(self) -> float: ...


@runtime_checkable
class TaskSource(Protocol):
    """A family of problems with a verifiable reward.

    ``name``: the spec that names it on the command line (``knapsack``, ``math:data.jsonl``,
    ``math:synthetic``, ``rg:countdown``); ``kind``: ``npbench``, ``math`` or ``rg``;
    ``generated``: items come from seeds (else from a file, used whole); ``skipped``: ids of
    items left out while loading (a gold answer that cannot be parsed), never scored.
    """

    name: str
    kind: str
    generated: bool

    @property
    def skipped(self) -> dict[str, str]: ...

    def items(self, start: int = 0, count: int | None = None) -> Sequence[Any]:
        """Generated: ``count`` items with seeds ``start, start+1, ...``. A file: every item."""

    def item_for_id(self, item_id: str) -> Any:
        """The item with this id (a generated source rebuilds it from the seed in the id)."""

    def item_from_json(self, text: str) -> Any:
        """An item from its ``to_json()``."""

    def prompt(self, item: Any, style: str = "compact") -> str:
        """``compact``: the problem and nothing else (the completion writes ``Answer: ...``);
        ``nl``: the problem with instructions for a chat model."""

    def score(self, item: Any, completion: str) -> SourceVerdict:
        """Judge a completion. Never raises on the completion itself; DmpoError for a bad item."""


@dataclass(frozen=True)
class Item:
    """An item of a math or reasoning-gym source: ``question`` (the problem text), ``answer``
    (math: the gold answer; reasoning-gym: one valid answer or None), ``seed`` (generated
    sources) and ``data`` (source-specific, JSON-safe)."""

    source: str
    id: str
    question: str
    answer: str | None = None
    seed: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | dict) -> Item:
        try:
            data = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as exc:
            raise DmpoError(f"the item column must hold item JSON: {exc}") from None
        if not isinstance(data, dict) or not {"source", "id", "question"} <= set(data):
            raise DmpoError(f"an item needs 'source', 'id' and 'question', got {str(data)[:120]!r}")
        return cls(source=str(data["source"]), id=str(data["id"]), question=str(data["question"]),
                   answer=data.get("answer"), seed=data.get("seed"), data=dict(data.get("data") or {}))


@dataclass(frozen=True)
class Verdict:
    """The judgement of one completion by a math or reasoning-gym source.

    ``score`` is the source's own score of a well-formed answer (math: 1 if math-verify finds it
    equal to the gold answer, else 0; reasoning-gym: its ``score_answer``, in [0, 1]); the
    reward is ``FORMAT_REWARD·well_formed + score``, as in the paper (0.1 + 1 for a correct
    answer)."""

    well_formed: bool
    correct: bool
    score: float = 0.0
    answer: Hashable | None = None
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.correct

    @property
    def value(self) -> float | None:
        return self.score if self.well_formed else None

    @property
    def reward(self) -> float:
        return FORMAT_REWARD * self.well_formed + (self.score if self.well_formed else 0.0)


def failed_verdict(reason: str) -> Verdict:
    """The verdict of a completion whose scoring raised or timed out (reward 0, counted)."""
    return Verdict(False, False, 0.0, None, f"scoring failed: {reason}")


def check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise DmpoError(f"unknown prompt style {style!r}; valid: {list(PROMPT_STYLES)}")


def chat_messages(prompt: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """A one-turn conversation: an optional system message, then the prompt as the user's."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": prompt}]


def split_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """``"math:data.csv?problem=q&answer=a"`` → ``("math", "data.csv", {"problem": "q", "answer": "a"})``.

    A spec without a known prefix is an NP-Bench task name (``("npbench", name, {})``). The
    options after ``?`` are ``key=value`` pairs joined by ``&``."""
    spec = spec.strip()
    prefix, sep, rest = spec.partition(":")
    if not sep:
        return "npbench", spec, {}
    prefix = prefix.strip().lower()
    body, options = rest, {}
    if "?" in rest:
        head, _, query = rest.rpartition("?")
        pairs = [p for p in query.split("&") if p]
        if pairs and all("=" in p for p in pairs):
            body = head
            for pair in pairs:
                key, _, value = pair.partition("=")
                if not key.strip():
                    raise DmpoError(f"{spec!r}: an option needs a name, got {pair!r}")
                options[key.strip()] = value.strip()
    return prefix, body.strip(), options


def describe_skipped(sources: Sequence[Any]) -> list[str]:
    """One line per source with skipped items: how many, and a few ids with their reason."""
    lines = []
    for source in sources:
        skipped = source.skipped
        if skipped:
            examples = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:3])
            lines.append(f"{source.name}: {len(skipped)} item(s) skipped ({examples})")
    return lines
