"""Set cover: choose the fewest subsets whose union contains the universe U.

Question: ``{"U": [0, 1, 2, 3, 4], "S": {"0": [0, 1], "1": [1, 2, 3], ...}}``.
Answer: subset ids ``[1, 3]``, or the word ``Impossible``. A subset may hold elements outside
U; a cover only has to contain U (superset check). ``Impossible`` is valid, with value 0, only
when the union of all subsets misses part of U; the reference optimum of such an instance is 0,
so the correct ``Impossible`` scores QR 1 and nothing else is valid.
Exact optimum: CP-SAT on the 0/1 covering model (proved within the time limit).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, distinct_ids_in_range, int_keys, require
from dmpo.npbench.parsing import SPACES, is_int_id, parse_int_list
from dmpo.npbench.render import draw_table
from dmpo.npbench.tasks._cpsat import cp_solver

IMPOSSIBLE = "Impossible"
_WRAPPING = SPACES + "*`\"'.[](){}"


class SetCover(Task):
    name = "set_cover"
    public_name = "set-cover"
    category = "selection"
    vision_group = None
    sense = "min"
    description = (
        "Given a universe U of elements and a collection S of numbered subsets, choose as few "
        "distinct subsets as possible whose union contains every element of U. If even all "
        "subsets together miss some element of U, the answer is the word Impossible."
    )
    answer_format = (
        "A list of the chosen subset ids, e.g. `Answer: [1, 3]`, or `Answer: Impossible` if no "
        "choice of subsets covers U."
    )

    # (|U|, |S|); subset sizes are 1..floor(0.4 |U|)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((5, 7), (4, 6)),
        "easy": ((10, 20), (5, 10)),
        "medium": ((20, 25), (10, 15)),
        "hard": ((25, 30), (15, 25)),
        "bench": ((30, 40), (20, 30)),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (u_lo, u_hi), (s_lo, s_hi) = self.difficulty_params(difficulty)
        universe = list(range(rng.randint(u_lo, u_hi)))
        largest = max(1, (2 * len(universe)) // 5)
        subsets = [set(rng.sample(universe, rng.randint(1, largest))) for _ in range(rng.randint(s_lo, s_hi))]
        covered = set().union(*subsets)
        for element in universe:  # repair: every element joins some random subset
            if element not in covered:
                rng.choice(subsets).add(element)
        return {"U": universe, "S": {str(i): sorted(s) for i, s in enumerate(subsets)}}

    def validate_question(self, question: Any) -> None:
        require(isinstance(question, dict), "set_cover question must be a JSON object")
        universe = question.get("U")
        require(isinstance(universe, list) and all(is_int_id(e) for e in universe),
                "set_cover question needs 'U', a list of integer elements")
        require(len(set(universe)) == len(universe), "set_cover 'U' must not repeat an element")
        for k in int_keys(question.get("S"), "set_cover 'S'"):
            subset = question["S"][str(k)]
            require(isinstance(subset, list) and all(is_int_id(e) for e in subset),
                    f"set_cover subset {k} must be a list of integer elements")

    def prepare(self, question: dict) -> tuple[list[int], int, bool]:
        """(bit mask of each subset's elements inside U, mask of U, whether U is coverable)."""
        bit = {element: 1 << i for i, element in enumerate(question["U"])}
        masks = []
        for k in range(len(question["S"])):
            mask = 0
            for element in question["S"][str(k)]:
                mask |= bit.get(element, 0)
            masks.append(mask)
        full = (1 << len(bit)) - 1
        union = 0
        for mask in masks:
            union |= mask
        return masks, full, union == full

    def parse_answer(self, answer: str) -> Any:
        if isinstance(answer, str) and answer.strip(_WRAPPING).lower() == "impossible":
            return IMPOSSIBLE
        return parse_int_list(answer)

    def format_answer(self, answer: Any) -> str:
        if answer == IMPOSSIBLE:
            return IMPOSSIBLE
        return super().format_answer(answer)

    def check(self, prepared: tuple[list[int], int, bool], answer: Any) -> tuple[bool, float | None, str]:
        masks, full, coverable = prepared
        if answer == IMPOSSIBLE:
            if coverable:
                return False, None, "'Impossible' is wrong: the union of all subsets covers U"
            return True, 0, ""
        reason = distinct_ids_in_range(answer, len(masks))
        if reason:
            return False, None, reason
        union = 0
        for i in answer:
            union |= masks[i]
        if union != full:
            return False, None, f"{(full & ~union).bit_count()} element(s) of U left uncovered"
        return True, len(answer), ""

    def canonical(self, answer: Any) -> Any:
        return IMPOSSIBLE if answer == IMPOSSIBLE else tuple(sorted(answer))

    def solve(self, question: dict, time_limit: float) -> Solution:
        masks, full, coverable = self.prepare(question)
        if not coverable:
            return Solution(value=0, answer=IMPOSSIBLE, proved=True)
        model = cp_model.CpModel()
        take = [model.NewBoolVar(f"take{k}") for k in range(len(masks))]
        for e in range(full.bit_length()):
            model.AddBoolOr([take[k] for k, mask in enumerate(masks) if mask >> e & 1])
        model.Minimize(sum(take))
        solver = cp_solver(time_limit)
        status = solver.Solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # cannot happen: all subsets cover U
            chosen = list(range(len(masks)))
        else:
            chosen = [k for k in range(len(masks)) if solver.Value(take[k])]
        return Solution(value=len(chosen), answer=chosen, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        masks, full, coverable = self.prepare(question)
        if not coverable:
            return 0
        for r in range(len(masks) + 1):
            for combo in itertools.combinations(masks, r):
                union = 0
                for mask in combo:
                    union |= mask
                if union == full:
                    return r
        raise AssertionError("unreachable: the union of all subsets covers U")

    def compact_question(self, question: dict) -> str:
        lines = ["U " + " ".join(map(str, question["U"]))]
        lines += [f"{k}: " + " ".join(map(str, question["S"][str(k)])) for k in range(len(question["S"]))]
        return "\n".join(lines)

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        rows = [[k, ", ".join(map(str, question["S"][str(k)]))] for k in range(len(question["S"]))]
        return draw_table(["subset", "elements"], rows, title="Set cover",
                          notes=["U = {" + ", ".join(map(str, question["U"])) + "}"])


TASK = SetCover()
