"""Maximum clique: the largest set of pairwise adjacent vertices.

Question: adjacency lists ``{"0": [1, 3], "1": [0, 2], ...}`` (undirected).
Answer: vertex ids ``[0, 1, 3]``. Valid: distinct existing integer ids, pairwise adjacent (the
empty list is a clique of size 0). Value: the number of vertices.
Generation (public maximum_clique_problem): G(n, 0.3) with a planted clique of k vertices.
Exact optimum: CP-SAT maximum independent set of the complement graph (proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from dmpo.npbench.base import Solution, Task
from dmpo.npbench.tasks._graph import (
    Graph,
    GraphTask,
    adjacency_lists,
    max_independent_set,
    parse_graph,
    random_edges,
    vertex_mask,
)


class MaxClique(GraphTask, Task):
    name = "max_clique"
    public_name = "maximum_clique_problem"
    category = "graph"
    vision_group = "subgraph"
    sense = "max"
    render_title = "Maximum clique"
    description = (
        "Given an undirected graph as adjacency lists, find a clique (a set of vertices every two "
        "of which are adjacent) with as many vertices as possible."
    )
    answer_format = "A list of the clique's vertex ids, e.g. `Answer: [0, 2, 5]`."

    # (vertices, planted clique size, probability of every other edge)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((4, 7), (2, 3), 0.3),
        "easy": ((4, 8), (2, 4), 0.3),
        "medium": ((8, 12), (2, 4), 0.3),
        "hard": ((12, 16), (2, 6), 0.3),
        "bench": ((16, 20), (4, 8), 0.3),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (n_lo, n_hi), (k_lo, k_hi), p = self.difficulty_params(difficulty)
        n = rng.randint(n_lo, n_hi)
        planted = rng.sample(range(n), min(n, rng.randint(k_lo, k_hi)))
        edges = random_edges(rng, n, p) + list(itertools.combinations(planted, 2))
        return adjacency_lists(Graph.from_edges(n, edges))

    def check(self, graph: Graph, answer: Any) -> tuple[bool, float | None, str]:
        mask, reason = vertex_mask(answer, graph.n)
        if reason:
            return False, None, reason
        for v in answer:
            missing = mask & ~graph.masks[v] & ~(1 << v)
            if missing:
                u = (missing & -missing).bit_length() - 1
                return False, None, f"vertices {v} and {u} are not adjacent"
        return True, len(answer), ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        graph = parse_graph(question, self.name)
        clique, proved = max_independent_set(graph.n, graph.complement_edges(), time_limit)
        return Solution(len(clique), clique, proved)

    def brute_force(self, question: dict) -> float:
        graph = parse_graph(question, self.name)
        adjacent = set(graph.edges)
        for size in range(graph.n, 0, -1):
            for subset in itertools.combinations(range(graph.n), size):
                if all(pair in adjacent for pair in itertools.combinations(subset, 2)):
                    return size
        return 0


TASK = MaxClique()
