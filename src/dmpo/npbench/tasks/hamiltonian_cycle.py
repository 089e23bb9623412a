"""Longest simple cycle (public name ``hamiltonian-cycle``): a cycle through as many vertices
as possible.

Question: adjacency lists ``{"0": [1, 3], "1": [0, 2], ...}`` of an undirected graph (an edge
listed on one side only still counts). Answer: a closed walk ``[0, 1, 2, 3, 0]``. Valid: at
least 3 distinct existing vertices, no repeat before the closing vertex, the closing vertex
equal to the first, and every consecutive pair an edge. Value, on the public scale: the list
length including the closing vertex, so a Hamiltonian cycle of n vertices scores n+1.
Every generated graph has a planted Hamiltonian cycle; the solver does not rely on that.
Exact optimum: CP-SAT ``add_circuit`` with optional vertices, maximising the vertices used.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, int_keys, require
from dmpo.npbench.render import draw_graph
from dmpo.npbench.tasks._cpsat import cp_solver
from dmpo.npbench.tasks._cycle import canonical_cycle, follow_circuit, parse_walk


class HamiltonianCycle(Task):
    name = "hamiltonian_cycle"
    public_name = "hamiltonian-cycle"
    category = "planning"
    vision_group = "path"
    sense = "max"
    description = (
        "Given an undirected graph, find a simple cycle that visits as many vertices as "
        "possible (ideally all of them, a Hamiltonian cycle). The cycle must contain at least 3 "
        "distinct vertices, never repeat a vertex, use only edges of the graph, and return to "
        "its starting vertex. Its score is the number of entries in the list, closing vertex "
        "included."
    )
    answer_format = (
        "The cycle as a list of vertex ids that ends with its first vertex again, e.g. "
        "`Answer: [0, 1, 2, 3, 0]`."
    )

    # (vertices, probability of each extra edge beside the planted cycle)
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((5, 7), 0.25),
        "easy": ((15, 20), 0.2),
        "medium": ((20, 30), 0.3),
        "hard": ((30, 40), 0.4),
        "bench": ((40, 50), 0.5),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (lo, hi), p = self.difficulty_params(difficulty)
        n = rng.randint(lo, hi)
        order = list(range(n))
        rng.shuffle(order)
        edges = {frozenset(pair) for pair in zip(order, order[1:] + order[:1])}
        edges |= {frozenset(pair) for pair in itertools.combinations(range(n), 2) if rng.random() < p}
        adjacency: list[list[int]] = [[] for _ in range(n)]
        for u, v in edges:
            adjacency[u].append(v)
            adjacency[v].append(u)
        return {str(v): sorted(adjacency[v]) for v in range(n)}

    def validate_question(self, question: Any) -> None:
        vertices = int_keys(question, "hamiltonian_cycle question")
        n = len(vertices)
        require(n >= 3, f"hamiltonian_cycle needs at least 3 vertices, got {n}")
        for v in vertices:
            neighbours = question[str(v)]
            require(isinstance(neighbours, list), f"hamiltonian_cycle vertex {v} needs a list of neighbours")
            for u in neighbours:
                require(type(u) is int and 0 <= u < n and u != v,
                        f"hamiltonian_cycle vertex {v} lists {u!r}; neighbours are other vertices 0..{n - 1}")

    def prepare(self, question: dict) -> list[set[int]]:
        n = len(question)
        adjacency: list[set[int]] = [set() for _ in range(n)]
        for v in range(n):
            for u in question[str(v)]:
                adjacency[v].add(u)
                adjacency[u].add(v)
        return adjacency

    def check(self, prepared: list[set[int]], answer: Any) -> tuple[bool, float | None, str]:
        adjacency = prepared
        n = len(adjacency)
        if not isinstance(answer, list) or len(answer) < 4:
            return False, None, "a cycle lists at least 3 distinct vertices and then its first vertex again"
        seen = bytearray(n)
        for v in answer[:-1]:
            if type(v) is not int:
                return False, None, f"{v!r} is not an integer id"
            if not 0 <= v < n:
                return False, None, f"vertex {v} out of range 0..{n - 1}"
            if seen[v]:
                return False, None, f"vertex {v} repeated before the cycle closes"
            seen[v] = 1
        if type(answer[-1]) is not int or answer[-1] != answer[0]:
            return False, None, "the cycle must end with the vertex it starts from"
        for u, v in itertools.pairwise(answer):
            if v not in adjacency[u]:
                return False, None, f"{u}-{v} is not an edge"
        return True, len(answer), ""

    def parse_answer(self, answer: str) -> list[int] | None:
        return parse_walk(answer)

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        return canonical_cycle(answer)

    def solve(self, question: dict, time_limit: float) -> Solution:
        adjacency = self.prepare(question)
        n = len(adjacency)
        model = cp_model.CpModel()
        arcs = {(u, v): model.new_bool_var(f"arc{u}_{v}") for u in range(n) for v in adjacency[u]}
        # A self-loop arc leaves the vertex out of the cycle.
        skip = [model.new_bool_var(f"skip{v}") for v in range(n)]
        model.add_circuit([(u, v, lit) for (u, v), lit in arcs.items()] + [(v, v, skip[v]) for v in range(n)])
        used = sum(1 - s for s in skip)
        model.add(used >= 3)  # two vertices and back along one edge is not a cycle
        model.maximize(used)
        solver = cp_solver(time_limit, linearization_level=2)
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # no cycle at all (not generated by us)
            return Solution(value=0, answer=[], proved=status == cp_model.INFEASIBLE)
        start = next(v for v in range(n) if not solver.value(skip[v]))
        cycle = follow_circuit(arcs, solver, start)
        return Solution(value=len(cycle), answer=list(canonical_cycle(cycle)), proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        adjacency = self.prepare(question)
        best = 0

        def extend(path: list[int], on_path: set[int]) -> None:
            nonlocal best
            start, last = path[0], path[-1]
            if len(path) >= 3 and start in adjacency[last]:
                best = max(best, len(path) + 1)
            for v in adjacency[last]:
                if v > start and v not in on_path:  # each cycle is listed from its smallest vertex
                    path.append(v)
                    on_path.add(v)
                    extend(path, on_path)
                    on_path.remove(v)
                    path.pop()

        for start in range(len(adjacency)):
            extend([start], {start})
        return best

    def compact_question(self, question: dict) -> str:
        return "\n".join(f"{v}: " + " ".join(map(str, question[str(v)])) for v in range(len(question)))

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        adjacency = self.prepare(question)
        edges = [(u, v) for u in range(len(adjacency)) for v in sorted(adjacency[u]) if u < v]
        return draw_graph(len(adjacency), edges, title="Longest cycle")


TASK = HamiltonianCycle()
