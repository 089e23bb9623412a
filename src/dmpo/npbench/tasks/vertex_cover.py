"""Minimum vertex cover: the fewest vertices such that every edge has an endpoint among them.

Question: adjacency lists ``{"0": [1, 2], ...}`` (undirected).
Answer: vertex ids ``[0, 2]``. Valid: distinct existing integer ids covering every edge.
Value: the number of vertices.
Sizes (the public suite has this task only as images, so we chose them): vertices as for
graph_coloring/max_clique, tiny 4–7, easy 8–12, medium 15–20, hard 20–30, bench 30–40; edges
G(n, p) with p = 0.45, 0.30, 0.20, 0.15, 0.12 (mean degree about 3–4), redrawn until there is
an edge (``_graph.SPARSE_GRAPH_SIZES``).
Exact optimum: the complement of a CP-SAT maximum independent set (proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from dmpo.npbench.base import Solution, Task
from dmpo.npbench.tasks._graph import (
    SPARSE_GRAPH_SIZES,
    Graph,
    GraphTask,
    adjacency_lists,
    max_independent_set,
    parse_graph,
    random_sparse_graph,
    vertex_mask,
)


class VertexCover(GraphTask, Task):
    name = "vertex_cover"
    public_name = "vertex-cover"
    category = "graph"
    vision_group = "covering"
    sense = "min"
    render_title = "Minimum vertex cover"
    description = (
        "Given an undirected graph as adjacency lists, find a vertex cover (a set of vertices such "
        "that every edge has at least one endpoint in the set) with as few vertices as possible."
    )
    answer_format = "A list of distinct vertex ids, e.g. `Answer: [0, 2, 5]`."

    SIZES: ClassVar[dict[str, tuple]] = SPARSE_GRAPH_SIZES

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        graph = random_sparse_graph(rng, self.difficulty_params(difficulty), lambda g: bool(g.edges))
        return adjacency_lists(graph)

    def check(self, graph: Graph, answer: Any) -> tuple[bool, float | None, str]:
        cover, reason = vertex_mask(answer, graph.n)
        if reason:
            return False, None, reason
        outside = graph.full & ~cover
        for v in range(graph.n):
            # v outside the cover: all its edges must be covered by their other endpoint.
            if outside >> v & 1 and graph.masks[v] & outside:
                u = (graph.masks[v] & outside).bit_length() - 1
                return False, None, f"edge {min(u, v)}-{max(u, v)} is not covered"
        return True, len(answer), ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        graph = parse_graph(question, self.name)
        independent, proved = max_independent_set(graph.n, graph.edges, time_limit)
        cover = sorted(set(range(graph.n)) - set(independent))
        return Solution(len(cover), cover, proved)

    def brute_force(self, question: dict) -> float:
        graph = parse_graph(question, self.name)
        for size in range(graph.n + 1):
            for subset in itertools.combinations(range(graph.n), size):
                if all(u in subset or v in subset for u, v in graph.edges):
                    return size
        return graph.n


TASK = VertexCover()
