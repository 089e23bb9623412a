"""0/1 knapsack: choose items of total weight ≤ capacity, maximising total value.

Question: ``{"capacity": 50, "items": {"0": {"weight": 10, "value": 22}, ...}}``.
Answer: item ids ``[0, 3, 4]``; the empty set is valid with value 0.
Exact optimum: dynamic programming over integer capacities (proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import numpy as np

from dmpo.npbench.base import Solution, Task, distinct_ids_in_range, int_keys, require
from dmpo.npbench.render import draw_table


class Knapsack(Task):
    name = "knapsack"
    public_name = "knapsack"
    category = "selection"
    vision_group = None
    sense = "max"
    description = (
        "Given a knapsack capacity and items, each with a weight and a value, choose a set of "
        "distinct items whose total weight does not exceed the capacity and whose total value "
        "is as large as possible."
    )
    answer_format = "A list of the chosen item ids, e.g. `Answer: [0, 3, 4]` (an empty list `[]` is allowed)."

    # (planted items, distractor items)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((2, 3), (2, 3)),
        "easy": ((6, 10), (8, 15)),
        "medium": ((8, 12), (15, 25)),
        "hard": ((15, 25), (20, 35)),
        "bench": ((25, 35), (30, 45)),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (p_lo, p_hi), (d_lo, d_hi) = self.difficulty_params(difficulty)
        planted = []
        for _ in range(rng.randint(p_lo, p_hi)):
            weight = rng.randint(3, 20)
            planted.append((weight, round(weight * rng.uniform(2.0, 3.0))))
        capacity = sum(w for w, _ in planted)
        distractors = []
        for _ in range(rng.randint(d_lo, d_hi)):
            kind = rng.choice(("heavy", "cheap", "trap"))
            if kind == "heavy":  # heavy, low value
                weight = rng.randint(max(2, capacity // 3), max(3, capacity // 2))
                distractors.append((weight, rng.randint(1, max(2, weight // 2))))
            elif kind == "cheap":  # light, low value
                weight = rng.randint(1, 4)
                distractors.append((weight, rng.randint(1, weight + 1)))
            else:  # trap: the best ratio, but too heavy to fit beside much else
                weight = rng.randint(max(2, (capacity * 3) // 5), max(3, (capacity * 9) // 10))
                distractors.append((weight, round(weight * rng.uniform(2.6, 3.2))))
        items = planted + distractors
        rng.shuffle(items)
        return {
            "capacity": capacity,
            "items": {str(i): {"weight": w, "value": v} for i, (w, v) in enumerate(items)},
        }

    def validate_question(self, question: Any) -> None:
        require(isinstance(question, dict), "knapsack question must be a JSON object")
        require(isinstance(question.get("capacity"), int) and question["capacity"] >= 0,
                "knapsack question needs a non-negative integer 'capacity'")
        keys = int_keys(question.get("items"), "knapsack 'items'")
        for k in keys:
            item = question["items"][str(k)]
            require(isinstance(item, dict) and isinstance(item.get("weight"), int)
                    and isinstance(item.get("value"), (int, float)) and item["weight"] >= 0,
                    f"knapsack item {k} needs an integer 'weight' ≥ 0 and a numeric 'value'")

    def prepare(self, question: dict) -> tuple[int, list[int], list[float]]:
        items = question["items"]
        n = len(items)
        weights = [items[str(i)]["weight"] for i in range(n)]
        values = [items[str(i)]["value"] for i in range(n)]
        return question["capacity"], weights, values

    def check(self, prepared: tuple[int, list[int], list[float]], answer: Any) -> tuple[bool, float | None, str]:
        capacity, weights, values = prepared
        reason = distinct_ids_in_range(answer, len(weights))
        if reason:
            return False, None, reason
        weight = sum(weights[i] for i in answer)
        if weight > capacity:
            return False, None, f"total weight {weight} exceeds capacity {capacity}"
        return True, sum(values[i] for i in answer), ""

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        return tuple(sorted(answer))

    def solve(self, question: dict, time_limit: float) -> Solution:
        capacity, weights, values = self.prepare(question)
        n = len(weights)
        # best[c] = max value with weight ≤ c; take[i, c] = item i improved best[c].
        best = np.zeros(capacity + 1, dtype=np.float64)
        take = np.zeros((n, capacity + 1), dtype=bool)
        for i, (w, v) in enumerate(zip(weights, values)):
            if w > capacity:
                continue
            candidate = best[: capacity + 1 - w] + v
            improved = candidate > best[w:]
            take[i, w:] = improved
            best[w:] = np.where(improved, candidate, best[w:])
        chosen, c = [], capacity
        for i in range(n - 1, -1, -1):
            if take[i, c]:
                chosen.append(i)
                c -= weights[i]
        chosen.sort()
        value = sum(values[i] for i in chosen)
        return Solution(value=value, answer=chosen, proved=True)

    def brute_force(self, question: dict) -> float:
        capacity, weights, values = self.prepare(question)
        best = 0
        for r in range(len(weights) + 1):
            for combo in itertools.combinations(range(len(weights)), r):
                if sum(weights[i] for i in combo) <= capacity:
                    best = max(best, sum(values[i] for i in combo))
        return best

    def compact_question(self, question: dict) -> str:
        capacity, weights, values = self.prepare(question)
        lines = [f"cap {capacity}"] + [f"{i}:{w},{v}" for i, (w, v) in enumerate(zip(weights, values))]
        return "\n".join(lines)

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        capacity, weights, values = self.prepare(question)
        rows = [[i, w, v] for i, (w, v) in enumerate(zip(weights, values))]
        return draw_table(["item", "weight", "value"], rows, title="Knapsack",
                          notes=[f"capacity: {capacity}"])


TASK = Knapsack()
