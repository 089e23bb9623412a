"""Subset sum, maximum-cardinality variant: as many distinct numbers as possible summing
exactly to the target.

Question: ``{"target": 12, "numbers": {"0": 5, "1": 3, ...}}`` (positive integers).
Answer: index list ``[1, 3, 4]``; an index may appear once. Value: the number of indices.
Exact optimum: dynamic programming over exact sums (proved). Generated instances hide a few
planted solutions, so the target is always reachable.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from dmpo.errors import DmpoError
from dmpo.npbench.base import Solution, Task, distinct_ids_in_range, int_keys, require
from dmpo.npbench.parsing import is_int_id
from dmpo.npbench.render import draw_table

_ATTEMPTS = 10  # tries to plant each extra solution before giving it up


class SubsetSum(Task):
    name = "subset_sum"
    public_name = "subset-sum"
    category = "selection"
    vision_group = None
    sense = "max"
    description = (
        "Given a target and a list of numbered positive integers, choose as many distinct "
        "numbers as possible whose sum is exactly the target. Each number may be used at most "
        "once."
    )
    answer_format = "A list of the chosen indices, e.g. `Answer: [1, 3, 4]`."

    # (numbers, planted solution size, largest value, planted solutions); values are 1..largest
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((4, 7), (2, 4), 5, (1, 2)),
        "easy": ((5, 10), (4, 8), 5, (2, 3)),
        "medium": ((8, 12), (4, 8), 10, (3, 4)),
        "hard": ((12, 15), (8, 12), 15, (4, 5)),
        "bench": ((15, 20), (10, 15), 15, (5, 6)),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (n_lo, n_hi), (k_lo, k_hi), largest, (p_lo, p_hi) = self.difficulty_params(difficulty)
        n = rng.randint(n_lo, n_hi)
        numbers = [rng.randint(1, largest) for _ in range(n)]
        first = rng.sample(range(n), min(rng.randint(k_lo, k_hi), n))
        target = sum(numbers[i] for i in first)
        fixed = set(first)  # indices of planted solutions: their values stay as they are
        for _ in range(rng.randint(p_lo, p_hi) - 1):
            for _ in range(_ATTEMPTS):
                chosen = rng.sample(range(n), min(rng.randint(k_lo, k_hi), n))
                if self._plant(numbers, chosen, fixed, target, largest, rng):
                    fixed.update(chosen)
                    break
        return {"target": target, "numbers": {str(i): v for i, v in enumerate(numbers)}}

    @staticmethod
    def _plant(numbers: list[int], chosen: list[int], fixed: set[int], target: int, largest: int,
               rng: random.Random) -> bool:
        """Change the free values among ``chosen`` (within 1..largest) so that they sum to
        ``target``; leave ``numbers`` unchanged and return False if that is impossible."""
        free = [i for i in chosen if i not in fixed]
        gap = target - sum(numbers[i] for i in chosen)
        if not free or not len(free) - sum(numbers[i] for i in free) <= gap <= sum(
                largest - numbers[i] for i in free):
            return False
        rng.shuffle(free)
        for i in free:
            new = min(largest, max(1, numbers[i] + gap))
            gap -= new - numbers[i]
            numbers[i] = new
        return True

    def validate_question(self, question: Any) -> None:
        require(isinstance(question, dict), "subset_sum question must be a JSON object")
        target = question.get("target")
        require(is_int_id(target) and target >= 0, "subset_sum question needs a non-negative integer 'target'")
        for k in int_keys(question.get("numbers"), "subset_sum 'numbers'"):
            value = question["numbers"][str(k)]
            require(is_int_id(value) and value > 0, f"subset_sum number {k} must be a positive integer, got {value!r}")

    def prepare(self, question: dict) -> tuple[int, list[int]]:
        numbers = question["numbers"]
        return question["target"], [numbers[str(i)] for i in range(len(numbers))]

    def check(self, prepared: tuple[int, list[int]], answer: Any) -> tuple[bool, float | None, str]:
        target, numbers = prepared
        reason = distinct_ids_in_range(answer, len(numbers))
        if reason:
            return False, None, reason
        total = sum(numbers[i] for i in answer)
        if total != target:
            return False, None, f"the chosen numbers sum to {total}, not {target}"
        return True, len(answer), ""

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        return tuple(sorted(answer))

    def solve(self, question: dict, time_limit: float) -> Solution:
        target, numbers = self.prepare(question)
        # most[s] = the largest count of numbers (among those seen so far) summing exactly to s,
        # -1 if s is unreachable; took[i][s] = number i improved most[s].
        most = [0] + [-1] * target
        took = []
        for value in numbers:
            improved = [False] * (target + 1)
            for s in range(target, value - 1, -1):
                if most[s - value] >= 0 and most[s - value] + 1 > most[s]:
                    most[s] = most[s - value] + 1
                    improved[s] = True
            took.append(improved)
        if most[target] < 0:
            raise DmpoError(f"no subset of the numbers sums to the target {target}")
        chosen, s = [], target
        for i in range(len(numbers) - 1, -1, -1):
            if took[i][s]:
                chosen.append(i)
                s -= numbers[i]
        chosen.sort()
        return Solution(value=len(chosen), answer=chosen, proved=True)

    def brute_force(self, question: dict) -> float:
        target, numbers = self.prepare(question)
        for r in range(len(numbers), -1, -1):
            if any(sum(combo) == target for combo in itertools.combinations(numbers, r)):
                return r
        raise DmpoError(f"no subset of the numbers sums to the target {target}")

    def compact_question(self, question: dict) -> str:
        target, numbers = self.prepare(question)
        return "\n".join([f"target {target}"] + [f"{i}:{v}" for i, v in enumerate(numbers)])

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        target, numbers = self.prepare(question)
        return draw_table(["index", "number"], list(enumerate(numbers)), title="Subset sum",
                          notes=[f"target: {target}"])


TASK = SubsetSum()
