"""Maximum cut: split the vertices into two sides, maximising the weight of crossing edges.

Question: ``{"num_vertices": n, "edges": {"0-1": 3, "1-2": 2, ...}}`` (undirected, integer
weights). Answer: ``[[side A], [side B]]``; a side may be empty. Valid: the sides are disjoint
and cover 0..n-1. Value: total weight of the edges with one endpoint on each side.
Exact optimum: CP-SAT with cut indicators and triangle inequalities (proved).

Public MM-NP-Bench has max cut only as a vision task and publishes no generator; our sizes
are random graphs with edge probability falling as n grows, integer weights 1..10.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, require
from dmpo.npbench.render import draw_graph
from dmpo.npbench.tasks._cpsat import cp_solver
from dmpo.npbench.tasks._partition import (
    canonical_sides,
    cut_weight,
    format_sides,
    parse_sides,
    partition_reason,
)

_EDGE_KEY = re.compile(r"([0-9]+)-([0-9]+)")
Edges = list[tuple[int, int, int]]


class MaxCut(Task):
    name = "max_cut"
    public_name = "max-cut"
    category = "partition"
    vision_group = "partitioning"
    sense = "max"
    description = (
        "Given an undirected graph with integer edge weights, split its vertices into two sides "
        "so that the total weight of the edges whose endpoints lie on different sides is as "
        "large as possible. Every vertex must be on exactly one side; a side may be empty."
    )
    answer_format = (
        "The two sides as two lists of vertex ids, e.g. `Answer: [[0, 2], [1, 3]]`; every vertex "
        "appears exactly once."
    )

    # (vertices, edge probability)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((5, 7), 0.5),
        "easy": ((8, 12), 0.4),
        "medium": ((13, 20), 0.3),
        "hard": ((21, 29), 0.25),
        "bench": ((30, 40), 0.2),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (lo, hi), p = self.difficulty_params(difficulty)
        n = rng.randint(lo, hi)
        edges = {f"{u}-{v}": rng.randint(1, 10)
                 for u, v in itertools.combinations(range(n), 2) if rng.random() < p}
        if not edges:
            edges["0-1"] = rng.randint(1, 10)
        return {"num_vertices": n, "edges": edges}

    def validate_question(self, question: Any) -> None:
        require(isinstance(question, dict), "max_cut question must be a JSON object")
        n = question.get("num_vertices")
        require(type(n) is int and n >= 2, "max_cut question needs an integer 'num_vertices' ≥ 2")
        edges = question.get("edges")
        require(isinstance(edges, dict), "max_cut question needs 'edges': {\"u-v\": weight, ...}")
        seen = set()
        for key, weight in edges.items():
            match = _EDGE_KEY.fullmatch(key) if isinstance(key, str) else None
            require(match is not None, f"max_cut edge key {key!r} must look like \"u-v\"")
            u, v = int(match[1]), int(match[2])
            require(u != v and u < n and v < n, f"max_cut edge {key!r} must join two vertices of 0..{n - 1}")
            require(frozenset((u, v)) not in seen, f"max_cut edge {key!r} is listed twice")
            require(type(weight) is int, f"max_cut edge {key!r} needs an integer weight, got {weight!r}")
            seen.add(frozenset((u, v)))

    def prepare(self, question: dict) -> np.ndarray:
        n = question["num_vertices"]
        weights = np.zeros((n, n))
        for u, v, w in _edges(question):
            weights[u, v] = weights[v, u] = w
        return weights

    def parse_answer(self, answer: str) -> list[list[int]] | None:
        return parse_sides(answer)

    def format_answer(self, answer: list[list[int]]) -> str:
        return format_sides(answer)

    def canonical(self, answer: list[list[int]]) -> tuple:
        return canonical_sides(answer)

    def check(self, prepared: np.ndarray, answer: Any) -> tuple[bool, float | None, str]:
        reason = partition_reason(answer, len(prepared))
        if reason:
            return False, None, reason
        return True, cut_weight(prepared, answer[0]), ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        n, edges = question["num_vertices"], _edges(question)
        model = cp_model.CpModel()
        side = [model.new_bool_var(f"side{v}") for v in range(n)]
        model.add(side[0] == 0)  # the two sides are interchangeable
        cut = {}
        for u, v, _ in edges:
            y = cut[u, v] = cut[v, u] = model.new_bool_var(f"cut{u}_{v}")
            # y = side[u] XOR side[v], written linearly so the LP relaxation sees it.
            model.add(y <= side[u] + side[v])
            model.add(y <= 2 - side[u] - side[v])
            model.add(y >= side[u] - side[v])
            model.add(y >= side[v] - side[u])
        # A triangle is cut in 0 or 2 edges: the cuts that make the max-cut LP useful.
        neighbours = [set() for _ in range(n)]
        for u, v, _ in edges:
            neighbours[u].add(v)
            neighbours[v].add(u)
        for a, b, _ in edges:
            for c in neighbours[a] & neighbours[b]:
                if c > max(a, b):
                    ab, ac, bc = cut[a, b], cut[a, c], cut[b, c]
                    model.add(ab + ac + bc <= 2)
                    model.add(ab <= ac + bc)
                    model.add(ac <= ab + bc)
                    model.add(bc <= ab + ac)
        model.maximize(sum(w * cut[u, v] for u, v, w in edges))
        solver = cp_solver(time_limit, linearization_level=2)
        status = solver.solve(model)
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)  # else the empty cut, always valid
        bits = [solver.value(s) if found else 0 for s in side]
        answer = [[v for v in range(n) if not bits[v]], [v for v in range(n) if bits[v]]]
        value = sum(w for u, v, w in edges if bits[u] != bits[v])
        return Solution(value=value, answer=answer, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        n, edges = question["num_vertices"], _edges(question)
        best = 0
        for bits in itertools.product((0, 1), repeat=n - 1):
            label = (0, *bits)
            best = max(best, sum(w for u, v, w in edges if label[u] != label[v]))
        return best

    def compact_question(self, question: dict) -> str:
        n, edges = question["num_vertices"], _edges(question)
        return "\n".join([f"n {n}"] + [f"{u}-{v} {w}" for u, v, w in edges])

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        n, edges = question["num_vertices"], _edges(question)
        return draw_graph(n, [(u, v) for u, v, _ in edges],
                          weights={(u, v): w for u, v, w in edges}, title="Max cut")


def _edges(question: dict) -> Edges:
    """The edges as (u, v, weight), in the question's order."""
    edges = []
    for key, weight in question["edges"].items():
        u, v = key.split("-")
        edges.append((int(u), int(v), weight))
    return edges


TASK = MaxCut()
