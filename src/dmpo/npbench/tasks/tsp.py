"""Travelling salesman: the shortest closed tour through every city.

Question: a complete symmetric dict of dicts of integer distances in [10, 100] with a zero
diagonal, ``{"0": {"0": 0, "1": 23, ...}, ...}``; not metric. Answer: a closed tour
``[0, 2, 1, 3, 0]`` from any start. Valid: n+1 entries, the first n a permutation of
0..n-1, the last equal to the first. Value: the tour length.
Exact optimum: CP-SAT ``add_circuit`` (proved).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, int_keys, require
from dmpo.npbench.render import draw_graph, draw_table
from dmpo.npbench.tasks._cpsat import cp_solver
from dmpo.npbench.tasks._cycle import canonical_cycle, follow_circuit, parse_walk

# Up to this many cities the image is a weighted graph; beyond, a distance table.
_MAX_DRAWN_CITIES = 8


class TSP(Task):
    name = "tsp"
    public_name = "tsp"
    category = "planning"
    vision_group = "path"
    sense = "min"
    description = (
        "Given the distances between every pair of cities, find a closed tour that starts at a "
        "city, visits every other city exactly once and returns to the start, with the "
        "smallest total distance. Distances are symmetric but need not obey the triangle "
        "inequality."
    )
    answer_format = (
        "The tour as a list of city ids that starts and ends at the same city, e.g. "
        "`Answer: [0, 2, 1, 3, 0]` (every city exactly once before the return)."
    )

    # cities
    SIZES: ClassVar[dict[str, tuple[int, int]]] = {
        "tiny": (4, 7),
        "easy": (10, 20),
        "medium": (20, 30),
        "hard": (35, 45),
        "bench": (45, 55),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        lo, hi = self.difficulty_params(difficulty)
        n = rng.randint(lo, hi)
        dist = [[0] * n for _ in range(n)]
        for i, j in itertools.combinations(range(n), 2):
            dist[i][j] = dist[j][i] = rng.randint(10, 100)
        return {str(i): {str(j): dist[i][j] for j in range(n)} for i in range(n)}

    def validate_question(self, question: Any) -> None:
        cities = int_keys(question, "tsp question")
        n = len(cities)
        require(n >= 3, f"tsp needs at least 3 cities, got {n}")
        names = {str(i) for i in cities}
        for i in cities:
            row = question[str(i)]
            require(isinstance(row, dict) and set(row) <= names,
                    f"tsp row {i} must be a JSON object of distances to cities \"0\"..\"{n - 1}\"")
        for i in cities:
            for j in cities:
                d = question[str(i)].get(str(j), 0 if i == j else None)
                require(type(d) is int and d >= 0, f"tsp distance {i}->{j} must be an integer ≥ 0, got {d!r}")
                require(i != j or d == 0, f"tsp distance {i}->{i} must be 0")
                require(question[str(j)].get(str(i)) == d or i == j, f"tsp distances {i}->{j} and {j}->{i} differ")

    def prepare(self, question: dict) -> list[list[int]]:
        n = len(question)
        return [[question[str(i)].get(str(j), 0) for j in range(n)] for i in range(n)]

    def check(self, prepared: list[list[int]], answer: Any) -> tuple[bool, float | None, str]:
        dist = prepared
        n = len(dist)
        if not isinstance(answer, list) or len(answer) != n + 1:
            return False, None, f"a tour lists n+1 = {n + 1} cities (closing city included)"
        seen = bytearray(n)
        for v in answer[:-1]:
            if type(v) is not int:
                return False, None, f"{v!r} is not an integer id"
            if not 0 <= v < n:
                return False, None, f"city {v} out of range 0..{n - 1}"
            if seen[v]:
                return False, None, f"city {v} visited twice"
            seen[v] = 1
        if type(answer[-1]) is not int or answer[-1] != answer[0]:
            return False, None, "the tour must end at the city it starts from"
        return True, sum(dist[a][b] for a, b in itertools.pairwise(answer)), ""

    def parse_answer(self, answer: str) -> list[int] | None:
        return parse_walk(answer)

    def canonical(self, answer: list[int]) -> tuple[int, ...]:
        return canonical_cycle(answer)

    def solve(self, question: dict, time_limit: float) -> Solution:
        dist = self.prepare(question)
        n = len(dist)
        model = cp_model.CpModel()
        arcs = {(i, j): model.new_bool_var(f"arc{i}_{j}") for i in range(n) for j in range(n) if i != j}
        model.add_circuit([(i, j, lit) for (i, j), lit in arcs.items()])
        model.minimize(sum(dist[i][j] * lit for (i, j), lit in arcs.items()))
        solver = cp_solver(time_limit, linearization_level=2)
        status = solver.solve(model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            tour = follow_circuit(arcs, solver, 0)
        else:  # nothing found in time: any tour is valid
            tour = [*range(n), 0]
        value = sum(dist[a][b] for a, b in itertools.pairwise(tour))
        return Solution(value=value, answer=tour, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        dist = self.prepare(question)
        n = len(dist)
        return min(
            sum(dist[a][b] for a, b in zip((0, *order), (*order, 0)))
            for order in itertools.permutations(range(1, n))
        )

    def compact_question(self, question: dict) -> str:
        dist = self.prepare(question)
        return "\n".join([f"n {len(dist)}"] + [f"{i}: " + " ".join(map(str, row)) for i, row in enumerate(dist)])

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        dist = self.prepare(question)
        n = len(dist)
        if n <= _MAX_DRAWN_CITIES:
            pairs = list(itertools.combinations(range(n), 2))
            return draw_graph(n, pairs, weights={(i, j): dist[i][j] for i, j in pairs}, title="TSP")
        rows = [[i, *row] for i, row in enumerate(dist)]
        return draw_table(["city", *map(str, range(n))], rows, title="TSP distances")


TASK = TSP()
