"""Minimum dominating set: the fewest vertices such that every vertex is one of them or
adjacent to one of them.

Question: adjacency lists ``{"0": [1, 2], ...}`` (undirected).
Answer: vertex ids ``[0, 3]``. Valid: distinct existing integer ids dominating every vertex.
Value: the number of vertices.
Sizes (the public suite has this task only as images, so we chose them): vertices as for
graph_coloring/max_clique, tiny 4–7, easy 8–12, medium 15–20, hard 20–30, bench 30–40; edges
G(n, p) with p = 0.45, 0.30, 0.20, 0.15, 0.12 (mean degree about 3–4), redrawn until there is
an edge (``_graph.SPARSE_GRAPH_SIZES``).
Exact optimum: CP-SAT (one Boolean per vertex, at least one per closed neighbourhood, full LP
relaxation; proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task
from dmpo.npbench.tasks._graph import (
    SPARSE_GRAPH_SIZES,
    GraphTask,
    adjacency_lists,
    parse_graph,
    random_sparse_graph,
    run_cpsat,
    vertex_mask,
)


class DominatingSet(GraphTask, Task):
    name = "dominating_set"
    public_name = "dominating-set"
    category = "graph"
    vision_group = "covering"
    sense = "min"
    render_title = "Minimum dominating set"
    description = (
        "Given an undirected graph as adjacency lists, find a dominating set (a set of vertices "
        "such that every vertex is in the set or adjacent to a vertex in the set) with as few "
        "vertices as possible."
    )
    answer_format = "A list of distinct vertex ids, e.g. `Answer: [0, 3]`."

    SIZES: ClassVar[dict[str, tuple]] = SPARSE_GRAPH_SIZES

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        graph = random_sparse_graph(rng, self.difficulty_params(difficulty), lambda g: bool(g.edges))
        return adjacency_lists(graph)

    def prepare(self, question: dict) -> tuple[int, list[int]]:
        graph = parse_graph(question, self.name)
        closed = [graph.masks[v] | 1 << v for v in range(graph.n)]
        return graph.n, closed

    def check(self, prepared: tuple[int, list[int]], answer: Any) -> tuple[bool, float | None, str]:
        n, closed = prepared
        _, reason = vertex_mask(answer, n)
        if reason:
            return False, None, reason
        dominated = 0
        for v in answer:
            dominated |= closed[v]
        missed = ~dominated & ((1 << n) - 1)
        if missed:
            return False, None, f"vertex {(missed & -missed).bit_length() - 1} is not dominated"
        return True, len(answer), ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        n, closed = self.prepare(question)
        model = cp_model.CpModel()
        x = [model.NewBoolVar(f"x{v}") for v in range(n)]
        for v in range(n):
            model.AddBoolOr([x[u] for u in range(n) if closed[v] >> u & 1])
        model.Minimize(sum(x))
        # The full LP relaxation (level 2) closes most of the gap at bench size: ~30x faster.
        solver, status = run_cpsat(model, time_limit, linearization_level=2)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return Solution(n, list(range(n)), proved=False)  # every vertex dominates
        chosen = [v for v in range(n) if solver.Value(x[v])]
        return Solution(len(chosen), chosen, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        graph = parse_graph(question, self.name)
        for size in range(1, graph.n + 1):
            for subset in itertools.combinations(range(graph.n), size):
                if all(v in subset or any(u in subset for u in graph.neighbours(v)) for v in range(graph.n)):
                    return size
        return graph.n


TASK = DominatingSet()
