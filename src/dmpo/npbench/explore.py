"""Feasible answers of varied quality for an instance, found by a random walk of small edits
from the solver's witness, each step checked by the strict validator.

Used to build supervised warm-start data with a spread of feasible answers (not only optima),
so that RL has something to choose between, and to measure how many distinct good answers an
instance has. Works for every task, because it only uses the task's own parser, formatter and
validator.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

from dmpo.npbench.base import Instance, Task


@dataclass(frozen=True)
class FoundAnswer:
    text: str  # the answer string, as the task formats it
    quality_ratio: float
    canonical: Any


def explore_answers(
    task: Task,
    instance: Instance,
    *,
    rng: random.Random,
    steps: int = 400,
    max_answers: int = 64,
    restart_prob: float = 0.1,
) -> list[FoundAnswer]:
    """Distinct feasible answers (by canonical form), best first; always includes the witness."""
    if instance.solution is None:
        return []
    start = task.parse_answer(instance.solution)
    if start is None:
        return []
    ids = _id_pool(start, instance.question)
    found: dict[Any, FoundAnswer] = {}
    first = task.evaluate(instance, f"Answer: {instance.solution}")
    if first.valid:
        found[first.answer] = FoundAnswer(task.format_answer(start), first.quality_ratio, first.answer)
    current = start
    for _ in range(steps):
        if len(found) >= max_answers:
            break
        if rng.random() < restart_prob:
            current = start
        candidate = _edit(copy.deepcopy(current), rng, ids)
        try:
            text = task.format_answer(candidate)
        except (ValueError, TypeError):  # an edit broke the answer's shape (a short tuple)
            continue
        verdict = task.evaluate(instance, f"Answer: {text}")
        if verdict.valid:
            current = candidate
            if verdict.answer not in found:
                found[verdict.answer] = FoundAnswer(text, verdict.quality_ratio, verdict.answer)
    return sorted(found.values(), key=lambda a: (-a.quality_ratio, a.text))


def _id_pool(answer: Any, question: dict) -> list[int]:
    """Integers an edit may write: those in the answer and 0..n-1 for the question's size."""
    pool: set[int] = set()
    stack = [answer]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, int):
            pool.add(value)
    size = question_size(question)
    pool.update(range(size))
    return sorted(pool)


def question_size(question: dict) -> int:
    """How many ids a question's answers range over (items, numbers, meetings, subsets,
    vertices): the range random edits draw from."""
    for key in ("items", "numbers", "meetings", "S", "num_vertices"):
        if key in question:
            value = question[key]
            return value if isinstance(value, int) else len(value)
    return len(question)


def _edit(answer: Any, rng: random.Random, ids: list[int]) -> Any:
    """One random structural edit (drop, duplicate, swap, replace, insert, move) somewhere."""
    if not isinstance(answer, list):
        return answer
    lists = [answer]
    stack = [answer]
    while stack:
        for child in stack.pop():
            if isinstance(child, list):
                lists.append(child)
                stack.append(child)
    target = rng.choice(lists)
    op = rng.choice(("drop", "swap", "replace", "insert", "move"))
    leaves = [i for i, v in enumerate(target) if not isinstance(v, list)]
    if op == "drop" and target:
        target.pop(rng.randrange(len(target)))
    elif op == "swap" and len(target) > 1:
        i, j = rng.sample(range(len(target)), 2)
        target[i], target[j] = target[j], target[i]
    elif op == "replace" and leaves:
        target[rng.choice(leaves)] = rng.choice(ids)
    elif op == "insert" and (leaves or not target):
        target.insert(rng.randrange(len(target) + 1), rng.choice(ids))
    elif op == "move" and leaves and len(lists) > 1:
        # Move a leaf to another list (partitions: a vertex changes side).
        value = target.pop(rng.choice(leaves))
        other = rng.choice([lst for lst in lists if lst is not target])
        other.insert(rng.randrange(len(other) + 1), value)
    return answer
