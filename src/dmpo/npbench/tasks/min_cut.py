"""Minimum bisection (public name ``minimum-cut``): split the vertices into two halves,
minimising the weight of the edges between them.

Question: a dense symmetric dict of dicts of integer weights, 0 meaning no edge,
``{"0": {"0": 0, "1": 7, ...}, ...}``. Answer: ``[[side A], [side B]]``, two lists of distinct
int ids that partition 0..n-1, of sizes ⌊n/2⌋ and ⌈n/2⌉ in either order. Value: the total
weight of the crossing edges.

Generator: three planted communities, two of which together fill one half, dense heavy edges
inside a community and sparse light noise edges between communities.
Exact optimum: CP-SAT on the bisection model (vertex 0 fixed on side A), warm-started from a
pairwise-swap local search; ``proved`` records whether the time limit (the default
``solver_time_limit`` of 10 s) allowed a proof: on easy…bench it does, in well under a second.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, int_keys, require
from dmpo.npbench.render import draw_graph, draw_table
from dmpo.npbench.tasks._cpsat import cp_solver
from dmpo.npbench.tasks._partition import (
    canonical_sides,
    cut_weight,
    format_sides,
    parse_sides,
    partition_reason,
)

# Up to this many vertices the image is a weighted graph; beyond, the weight table.
_MAX_DRAWN_VERTICES = 12
# Random starts of the local search that warm-starts the solver.
_RESTARTS = 4


class MinCut(Task):
    name = "min_cut"
    public_name = "minimum-cut"
    category = "partition"
    vision_group = "partitioning"
    sense = "min"
    description = (
        "Given an undirected graph with integer edge weights (weight 0 means no edge), split its "
        "vertices into two sides whose sizes differ by at most one (⌊n/2⌋ and ⌈n/2⌉), so that "
        "the total weight of the edges between the two sides is as small as possible. Every "
        "vertex must be on exactly one side."
    )
    answer_format = (
        "The two sides as two lists of vertex ids, e.g. `Answer: [[0, 1, 4], [2, 3, 5]]`; every "
        "vertex appears exactly once."
    )

    # (vertices, edge probability inside a community, edge probability between communities)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((6, 8), 0.6, 0.2),
        "easy": ((42, 42), 0.5, 0.1),
        "medium": ((45, 45), 0.5, 0.12),
        "hard": ((45, 45), 0.45, 0.15),
        "bench": ((50, 50), 0.4, 0.15),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (lo, hi), p_inside, p_between = self.difficulty_params(difficulty)
        n = rng.randint(lo, hi)
        half = rng.choice((n // 2, n - n // 2))  # the side that holds two communities
        first = rng.randint(max(1, half // 3), max(1, 2 * half // 3))
        community = [0] * first + [1] * (half - first) + [2] * (n - half)
        rng.shuffle(community)
        weights = [[0] * n for _ in range(n)]
        for i, j in itertools.combinations(range(n), 2):
            if community[i] == community[j]:
                w = rng.randint(5, 10) if rng.random() < p_inside else 0
            else:
                w = rng.randint(1, 3) if rng.random() < p_between else 0
            weights[i][j] = weights[j][i] = w
        return {str(i): {str(j): weights[i][j] for j in range(n)} for i in range(n)}

    def validate_question(self, question: Any) -> None:
        vertices = int_keys(question, "min_cut question")
        n = len(vertices)
        require(n >= 2, f"min_cut needs at least 2 vertices, got {n}")
        names = {str(v) for v in vertices}
        for i in vertices:
            row = question[str(i)]
            require(isinstance(row, dict) and set(row) <= names,
                    f"min_cut row {i} must be a JSON object of weights to vertices \"0\"..\"{n - 1}\"")
        for i in vertices:
            for j, w in question[str(i)].items():
                require(type(w) is int and w >= 0, f"min_cut weight {i}-{j} must be an integer ≥ 0, got {w!r}")
                require(str(i) != j or w == 0, f"min_cut weight {i}-{i} must be 0")
                require(question[j].get(str(i), 0) == w, f"min_cut weights {i}-{j} and {j}-{i} differ")

    def prepare(self, question: dict) -> np.ndarray:
        n = len(question)
        weights = np.zeros((n, n))
        for i in range(n):
            for j, w in question[str(i)].items():
                weights[i, int(j)] = w
        return weights

    def check(self, prepared: np.ndarray, answer: Any) -> tuple[bool, float | None, str]:
        n = len(prepared)
        reason = partition_reason(answer, n)
        if reason:
            return False, None, reason
        if min(len(answer[0]), len(answer[1])) != n // 2:
            return False, None, f"the sides must have sizes {n // 2} and {n - n // 2}"
        return True, cut_weight(prepared, answer[0]), ""

    def parse_answer(self, answer: str) -> list[list[int]] | None:
        return parse_sides(answer)

    def format_answer(self, answer: list[list[int]]) -> str:
        return format_sides(answer)

    def canonical(self, answer: list[list[int]]) -> tuple:
        return canonical_sides(answer)

    def solve(self, question: dict, time_limit: float) -> Solution:
        weights = self.prepare(question)
        n = len(weights)
        start = _local_search_bisection(weights)
        if not start[0]:
            start = [1 - s for s in start]
        model = cp_model.CpModel()
        on_a = [model.new_bool_var(f"a{v}") for v in range(n)]
        model.add(on_a[0] == 1)  # the sides are interchangeable (up to their sizes)
        model.add_linear_constraint(sum(on_a), n // 2, n - n // 2)
        rows, cols = np.nonzero(np.triu(weights, 1))
        cuts = []
        for i, j in zip(rows.tolist(), cols.tolist()):
            # Weights are ≥ 0, so minimisation drives cut down to |a_i - a_j|.
            cut = model.new_bool_var(f"cut{i}_{j}")
            model.add(cut >= on_a[i] - on_a[j])
            model.add(cut >= on_a[j] - on_a[i])
            model.add_hint(cut, start[i] != start[j])  # without it the proof takes twice as long
            cuts.append(cut)
        for v in range(n):
            model.add_hint(on_a[v], start[v])
        model.minimize(cp_model.LinearExpr.weighted_sum(cuts, weights[rows, cols].astype(int).tolist()))
        solver = cp_solver(time_limit, linearization_level=2)
        # The model is already tight and the hint usually optimal, so the time goes into the
        # proof; presolve and generic cuts slow it (measured: 0.03 s instead of 0.07 s on easy).
        solver.parameters.cp_model_presolve = False
        solver.parameters.cut_level = 0
        status = solver.solve(model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            best = [solver.value(a) for a in on_a]
        else:
            best = start
        answer = [[v for v in range(n) if best[v]], [v for v in range(n) if not best[v]]]
        value = self.check(weights, answer)[1]
        return Solution(value=value, answer=answer, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        weights = self.prepare(question)
        n = len(weights)
        best = None
        for size in {n // 2, n - n // 2}:
            for rest in itertools.combinations(range(1, n), size - 1):
                side_a = [0, *rest]
                side_b = [v for v in range(n) if v not in side_a]
                cut = sum(int(weights[i, j]) for i in side_a for j in side_b)
                best = cut if best is None else min(best, cut)
        return best

    def compact_question(self, question: dict) -> str:
        weights = self.prepare(question)
        n = len(weights)
        edges = [f"{i}-{j} {int(weights[i, j])}" for i, j in itertools.combinations(range(n), 2) if weights[i, j]]
        return "\n".join([f"n {n}", *edges])

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        weights = self.prepare(question)
        n = len(weights)
        if n <= _MAX_DRAWN_VERTICES:
            edges = [(i, j) for i, j in itertools.combinations(range(n), 2) if weights[i, j]]
            return draw_graph(n, edges, weights={(i, j): int(weights[i, j]) for i, j in edges}, title="Min bisection")
        rows = [[i, *map(int, row)] for i, row in enumerate(weights)]
        return draw_table(["v", *map(str, range(n))], rows, title="Min bisection weights")


def _local_search_bisection(weights: np.ndarray) -> list[int]:
    """A good bisection (0/1 per vertex) to warm-start the exact solver: from a few random
    splits, apply the best improving swap (or, for odd n, move from the larger side) until
    none improves; keep the best. On generated instances it is usually already optimal, so
    the solver's work is the proof."""
    n = len(weights)
    rng = np.random.default_rng(0)  # fixed: solve() must be a function of the question
    best_cut, best = None, None
    for _ in range(_RESTARTS):
        sign = np.ones(n)
        sign[rng.permutation(n)[: n // 2]] = -1
        sign = _improve(weights, sign)
        cut = float(weights[sign > 0][:, sign < 0].sum())
        if best_cut is None or cut < best_cut:
            best_cut, best = cut, sign
    return [int(s > 0) for s in best]


def _improve(w: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Local search on ±1 labels keeping the sizes ⌊n/2⌋/⌈n/2⌉: flipping i changes the cut
    by sign_i·(W sign)_i, swapping i and j by the sum of both plus 2·w_ij."""
    n = len(sign)
    while True:
        flip = sign * (w @ sign)
        side_a, side_b = np.flatnonzero(sign > 0), np.flatnonzero(sign < 0)
        swap = flip[side_a][:, None] + flip[side_b][None, :] + 2 * w[np.ix_(side_a, side_b)]
        k = int(np.argmin(swap))
        gain = swap.flat[k]
        if n % 2:
            larger = side_a if len(side_a) > len(side_b) else side_b
            v = larger[np.argmin(flip[larger])]
            if flip[v] < min(gain, 0):
                sign[v] = -sign[v]
                continue
        if gain >= -1e-9:
            return sign
        sign[side_a[k // len(side_b)]] *= -1
        sign[side_b[k % len(side_b)]] *= -1


TASK = MinCut()
