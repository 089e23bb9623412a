"""What the six graph tasks share: reading and validating a graph question, random graphs,
the vertex-set check, a configured CP-SAT run, the compact encoding and the image.

A graph question is keyed by vertex ids ``"0".."n-1"``; each value lists the neighbours,
either as a list of ids (``{"0": [1, 3], ...}``) or as a dict of neighbour id to weight
(``{"0": {"1": 1}, ...}``, where a weight of 0 means no edge). Graphs are undirected: an edge
listed on either side counts, so a question that lists it on one side only is still judged
strictly. Integer ids are accepted wherever string ids are (the public vision files use
them), and self loops are malformed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.errors import DmpoError
from dmpo.npbench.base import require
from dmpo.npbench.render import draw_graph
from dmpo.npbench.tasks._cpsat import cp_solver

# Sizes of vertex_cover, dominating_set and feedback_vertex_set, which the public suite only
# has as images: (vertices, edge probability). Vertex counts follow max_clique and
# graph_coloring (easy 8–12 … bench 30–40); the edge probability falls with n so that the mean
# degree stays near 3–4, which keeps the drawings legible and the problems non-trivial.
SPARSE_GRAPH_SIZES: dict[str, tuple[tuple[int, int], float]] = {
    "tiny": ((4, 7), 0.45),
    "easy": ((8, 12), 0.30),
    "medium": ((15, 20), 0.20),
    "hard": ((20, 30), 0.15),
    "bench": ((30, 40), 0.12),
}


@dataclass(frozen=True, slots=True)
class Graph:
    """An undirected simple graph on vertices 0..n-1.

    ``edges`` holds each edge once as ``(u, v)`` with ``u < v``, sorted; ``masks[v]`` is the
    neighbourhood of v as a bitmask (bit u set when u and v are adjacent)."""

    n: int
    edges: tuple[tuple[int, int], ...]
    masks: tuple[int, ...]

    @classmethod
    def from_edges(cls, n: int, edges: Any) -> Graph:
        masks = [0] * n
        for u, v in edges:
            masks[u] |= 1 << v
            masks[v] |= 1 << u
        unique = sorted({(min(u, v), max(u, v)) for u, v in edges})
        return cls(n, tuple(unique), tuple(masks))

    @property
    def full(self) -> int:
        """The bitmask of all vertices."""
        return (1 << self.n) - 1

    def neighbours(self, v: int) -> list[int]:
        return [u for u in range(self.n) if self.masks[v] >> u & 1]

    def complement_edges(self) -> list[tuple[int, int]]:
        return [(u, v) for u in range(self.n) for v in range(u + 1, self.n) if not self.masks[u] >> v & 1]


def _vertex_id(key: Any, n: int, what: str) -> int:
    if type(key) is int:
        vertex = key
    elif isinstance(key, str) and key.isascii() and key.isdigit() and str(int(key)) == key:
        vertex = int(key)
    else:
        raise DmpoError(f"{what}: {key!r} is not a vertex id (an integer or a string like \"3\")")
    require(0 <= vertex < n, f"{what}: vertex {vertex} is out of range 0..{n - 1}")
    return vertex


def parse_graph(question: Any, task: str) -> Graph:
    """The graph of an adjacency-list or dict-of-dicts question, or a clear DmpoError."""
    require(isinstance(question, dict) and question,
            f"{task} question must be a non-empty JSON object mapping vertex ids \"0\"..\"n-1\" to "
            f"neighbour lists, got {type(question).__name__}")
    n = len(question)
    rows: dict[int, Any] = {}
    for key, row in question.items():
        vertex = _vertex_id(key, n, f"{task} question keys must be \"0\"..\"{n - 1}\"")
        require(vertex not in rows, f"{task} question lists vertex {vertex} twice")
        rows[vertex] = row
    edges = []
    for u, row in rows.items():
        what = f"{task} neighbours of vertex {u}"
        if isinstance(row, dict):
            for key, weight in row.items():
                require(type(weight) in (int, float),
                        f"{what}: the weight of {key!r} must be a number (0 means no edge), got {weight!r}")
                if weight != 0:
                    edges.append((u, _vertex_id(key, n, what)))
        else:
            require(isinstance(row, (list, tuple)), f"{what} must be a list of ids or a dict, got {row!r}")
            edges.extend((u, _vertex_id(key, n, what)) for key in row)
    for u, v in edges:
        require(u != v, f"{task} question has a self loop at vertex {u}")
    return Graph.from_edges(n, edges)


# ---- generation -------------------------------------------------------------------------
def random_edges(rng: random.Random, n: int, p: float) -> list[tuple[int, int]]:
    """Each pair of 0..n-1 is an edge with probability p (G(n, p))."""
    return [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < p]


def random_sparse_graph(rng: random.Random, size: tuple[tuple[int, int], float],
                        accept: Callable[[Graph], bool]) -> Graph:
    """G(n, p) for a ``SPARSE_GRAPH_SIZES`` entry, redrawn until ``accept`` holds (so that no
    instance is trivial, e.g. without edges)."""
    (n_lo, n_hi), p = size
    while True:
        n = rng.randint(n_lo, n_hi)
        graph = Graph.from_edges(n, random_edges(rng, n, p))
        if accept(graph):
            return graph


def adjacency_lists(graph: Graph) -> dict[str, list[int]]:
    """``{"0": [1, 3], ...}``: sorted neighbour lists, every vertex present."""
    return {str(v): graph.neighbours(v) for v in range(graph.n)}


def dict_of_dicts(graph: Graph) -> dict[str, dict[str, int]]:
    """``{"0": {"1": 1}, ...}``: the maximum-set layout, every vertex present."""
    return {str(v): {str(u): 1 for u in graph.neighbours(v)} for v in range(graph.n)}


# ---- checking ---------------------------------------------------------------------------
def vertex_mask(answer: Any, n: int) -> tuple[int, str]:
    """(bitmask, '') of a list of distinct int ids in 0..n-1, else (0, reason)."""
    if not isinstance(answer, list):
        return 0, "answer is not a list of vertex ids"
    mask = 0
    for v in answer:
        if type(v) is not int:  # bools and floats are not ids
            return 0, f"{v!r} is not an integer vertex id"
        if not 0 <= v < n:
            return 0, f"vertex {v} out of range 0..{n - 1}"
        if mask >> v & 1:
            return 0, f"vertex {v} repeated"
        mask |= 1 << v
    return mask, ""


# ---- solving ----------------------------------------------------------------------------
def run_cpsat(model: cp_model.CpModel, time_limit: float, **parameters: Any) -> tuple[cp_model.CpSolver, int]:
    """Solve single-threaded under a deterministic time limit, so results are reproducible;
    ``parameters`` are further CP-SAT parameters (e.g. ``linearization_level=2``)."""
    solver = cp_solver(time_limit, **parameters)
    return solver, solver.Solve(model)


def max_independent_set(n: int, edges: Any, time_limit: float) -> tuple[list[int], bool]:
    """A maximum independent set (sorted) and whether it is proved optimal (CP-SAT)."""
    model = cp_model.CpModel()
    x = [model.NewBoolVar(f"x{v}") for v in range(n)]
    for u, v in edges:
        model.AddBoolOr([x[u].Not(), x[v].Not()])
    model.Maximize(sum(x))
    solver, status = run_cpsat(model, time_limit)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return [], False  # the empty set is independent; no proof
    return [v for v in range(n) if solver.Value(x[v])], status == cp_model.OPTIMAL


# ---- presentation -----------------------------------------------------------------------
def compact_graph(graph: Graph) -> str:
    """``n 5`` then ``edges 0-1 0-3 ...`` (each edge once, u < v)."""
    return f"n {graph.n}\nedges " + " ".join(f"{u}-{v}" for u, v in graph.edges)


def render_graph(instance: Any, task: str, title: str) -> Any:
    """The instance's graph drawn on a circle, ids as labels."""
    graph = parse_graph(getattr(instance, "question", instance), task)
    return draw_graph(graph.n, graph.edges, title=title)


class GraphTask:
    """Mixin for tasks whose question is a graph: validation, preparation, compact form and
    image in one place. ``render_title`` names the image."""

    name: ClassVar[str]
    render_title: ClassVar[str]

    def validate_question(self, question: Any) -> None:
        parse_graph(question, self.name)

    def prepare(self, question: dict) -> Graph:
        return parse_graph(question, self.name)

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        return tuple(sorted(answer))

    def compact_question(self, question: dict) -> str:
        return compact_graph(parse_graph(question, self.name))

    def render(self, instance: Any) -> Any:
        return render_graph(instance, self.name, self.render_title)
