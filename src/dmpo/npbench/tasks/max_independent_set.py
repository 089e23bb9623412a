"""Maximum independent set: the largest set of vertices no two of which are adjacent.

Question (public maximum-set): a dict of dicts ``{"0": {"1": 1}, "1": {"0": 1, "2": 1}, "3": {}}``;
a weight of 0 means no edge. Adjacency lists ``{"0": [1], ...}`` with integer ids, as in the
public vision files, are read too, and their edges count (the public validator missed them
and accepted every vertex).
Answer: vertex ids ``[0, 2, 3]``. Valid: distinct existing integer ids, no edge inside (the
empty list is valid with value 0). Value: the number of vertices.
Generation: G(n, 0.3) with the edges inside a planted set of k vertices removed.
Exact optimum: CP-SAT (one Boolean per vertex, at most one per edge; proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from dmpo.npbench.base import Solution, Task
from dmpo.npbench.tasks._graph import (
    Graph,
    GraphTask,
    dict_of_dicts,
    max_independent_set,
    parse_graph,
    random_edges,
    vertex_mask,
)


class MaxIndependentSet(GraphTask, Task):
    name = "max_independent_set"
    public_name = "maximum-set"
    category = "graph"
    vision_group = "subgraph"
    sense = "max"
    render_title = "Maximum independent set"
    description = (
        "Given an undirected graph (each vertex maps to its neighbours), find an independent set "
        "(a set of vertices no two of which are adjacent) with as many vertices as possible."
    )
    answer_format = "A list of distinct vertex ids, e.g. `Answer: [0, 2, 5]`."

    # (vertices, planted independent set size, probability of every other edge)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((5, 7), (2, 3), 0.3),
        "easy": ((12, 20), (4, 8), 0.3),
        "medium": ((20, 30), (8, 12), 0.3),
        "hard": ((30, 40), (12, 16), 0.3),
        "bench": ((40, 50), (16, 20), 0.3),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (n_lo, n_hi), (k_lo, k_hi), p = self.difficulty_params(difficulty)
        n = rng.randint(n_lo, n_hi)
        planted = set(rng.sample(range(n), min(n, rng.randint(k_lo, k_hi))))
        edges = [(u, v) for u, v in random_edges(rng, n, p) if not (u in planted and v in planted)]
        return dict_of_dicts(Graph.from_edges(n, edges))

    def check(self, graph: Graph, answer: Any) -> tuple[bool, float | None, str]:
        mask, reason = vertex_mask(answer, graph.n)
        if reason:
            return False, None, reason
        for v in answer:
            inside = mask & graph.masks[v]
            if inside:
                u = (inside & -inside).bit_length() - 1
                return False, None, f"vertices {v} and {u} are adjacent"
        return True, len(answer), ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        graph = parse_graph(question, self.name)
        chosen, proved = max_independent_set(graph.n, graph.edges, time_limit)
        return Solution(len(chosen), chosen, proved)

    def brute_force(self, question: dict) -> float:
        graph = parse_graph(question, self.name)
        adjacent = set(graph.edges)
        for size in range(graph.n, 0, -1):
            for subset in itertools.combinations(range(graph.n), size):
                if not any(pair in adjacent for pair in itertools.combinations(subset, 2)):
                    return size
        return 0


TASK = MaxIndependentSet()
