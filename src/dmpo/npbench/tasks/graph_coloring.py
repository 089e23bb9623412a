"""Graph colouring: colour the vertices so that adjacent vertices differ, with as few colours
as possible.

Question: adjacency lists ``{"0": [1, 3], "1": [0, 2], ...}`` (undirected).
Answer: n positive integers, the colour of vertex i at position i (``[1, 2, 1, 2]``); colour 0
and negative colours are invalid. Value: the number of distinct colours.
Generation (public GCP-D): vertices split into k planted colour classes, each pair from
different classes an edge with probability p; the true chromatic number may be below k.
Exact optimum: a greedy clique gives a lower bound and DSatur an upper bound; when they differ,
CP-SAT (one Boolean per vertex and colour, colour-used indicators in decreasing order, the
clique's vertices fixed to colours 1..|K|) proves the chromatic number.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task
from dmpo.npbench.tasks._graph import Graph, GraphTask, adjacency_lists, parse_graph, run_cpsat


class GraphColoring(GraphTask, Task):
    name = "graph_coloring"
    public_name = "GCP-D"
    category = "graph"
    vision_group = "constraint"
    sense = "min"
    render_title = "Graph colouring"
    description = (
        "Given an undirected graph as adjacency lists, assign each vertex a colour (a positive "
        "integer) so that every two adjacent vertices have different colours, using as few "
        "distinct colours as possible."
    )
    answer_format = (
        "A list with one positive integer colour per vertex, the colour of vertex i at position i, "
        "e.g. `Answer: [1, 2, 1, 3]`."
    )

    # (vertices, planted colours, edge probability between colour classes)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((4, 7), (2, 3), 0.60),
        "easy": ((8, 12), (3, 4), 0.20),
        "medium": ((15, 22), (4, 6), 0.35),
        "hard": ((25, 32), (6, 8), 0.50),
        "bench": ((32, 40), (6, 8), 0.50),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (n_lo, n_hi), (k_lo, k_hi), p = self.difficulty_params(difficulty)
        n = rng.randint(n_lo, n_hi)
        k = rng.randint(k_lo, k_hi)
        # Every class non-empty, then shuffled so that ids say nothing about classes.
        classes = list(range(k)) + [rng.randrange(k) for _ in range(n - k)]
        rng.shuffle(classes)
        edges = [(u, v) for u in range(n) for v in range(u + 1, n)
                 if classes[u] != classes[v] and rng.random() < p]
        return adjacency_lists(Graph.from_edges(n, edges))

    def check(self, graph: Graph, answer: Any) -> tuple[bool, float | None, str]:
        if not isinstance(answer, list) or len(answer) != graph.n:
            return False, None, f"need exactly {graph.n} colours, one per vertex"
        for colour in answer:
            if type(colour) is not int or colour < 1:
                return False, None, f"colour {colour!r} is not a positive integer"
        for u, v in graph.edges:
            if answer[u] == answer[v]:
                return False, None, f"adjacent vertices {u} and {v} share colour {answer[u]}"
        return True, len(set(answer)), ""

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        """Colours renamed 1, 2, ... in order of first appearance (also the witness's form)."""
        names: dict[int, int] = {}
        return tuple(names.setdefault(c, len(names) + 1) for c in answer)

    def solve(self, question: dict, time_limit: float) -> Solution:
        graph = parse_graph(question, self.name)
        clique = _greedy_clique(graph)
        colours = _dsatur(graph)
        upper = max(colours, default=0) + 1
        if upper <= len(clique):
            return Solution(upper, list(self.canonical(colours)), proved=True)

        model = cp_model.CpModel()
        x = [[model.NewBoolVar(f"x{v}_{c}") for c in range(upper)] for v in range(graph.n)]
        used = [model.NewBoolVar(f"used{c}") for c in range(upper)]
        for v in range(graph.n):
            model.AddExactlyOne(x[v])
            for c in range(upper):
                model.AddImplication(x[v][c], used[c])
        for u, v in graph.edges:
            for c in range(upper):
                model.AddBoolOr([x[u][c].Not(), x[v][c].Not()])
        for c in range(upper - 1):
            model.AddImplication(used[c + 1], used[c])
        for c, v in enumerate(clique):  # colour permutations are symmetric: fix the clique's
            model.Add(x[v][c] == 1)
        for v, c in enumerate(colours):
            model.AddHint(x[v][c], 1)
        model.Minimize(sum(used))
        solver, status = run_cpsat(model, time_limit)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return Solution(upper, list(self.canonical(colours)), proved=False)
        answer = [next(c for c in range(upper) if solver.Value(x[v][c])) for v in range(graph.n)]
        return Solution(len(set(answer)), list(self.canonical(answer)), proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        graph = parse_graph(question, self.name)
        for k in range(1, graph.n + 1):
            for colours in itertools.product(range(k), repeat=graph.n):
                if all(colours[u] != colours[v] for u, v in graph.edges):
                    return k
        return graph.n


def _greedy_clique(graph: Graph) -> list[int]:
    """A large clique: from each start vertex, repeatedly add the candidate of highest degree."""
    degree = [m.bit_count() for m in graph.masks]
    best: list[int] = []
    for start in range(graph.n):
        clique, candidates = [start], graph.masks[start]
        while candidates:
            v = max((u for u in range(graph.n) if candidates >> u & 1), key=lambda u: degree[u])
            clique.append(v)
            candidates &= graph.masks[v]
        if len(clique) > len(best):
            best = clique
    return best


def _dsatur(graph: Graph) -> list[int]:
    """DSatur greedy colouring (colours from 0): colour next the vertex whose neighbours show
    the most distinct colours, ties by degree then id."""
    colours = [-1] * graph.n
    neighbour_colours: list[set[int]] = [set() for _ in range(graph.n)]
    degree = [m.bit_count() for m in graph.masks]
    for _ in range(graph.n):
        v = max((u for u in range(graph.n) if colours[u] < 0),
                key=lambda u: (len(neighbour_colours[u]), degree[u], -u))
        colour = next(c for c in itertools.count() if c not in neighbour_colours[v])
        colours[v] = colour
        for u in graph.neighbours(v):
            neighbour_colours[u].add(colour)
    return colours


TASK = GraphColoring()
