"""Answers that are closed walks ``[0, 2, 1, 3, 0]``: parsing, the canonical form, and reading
a walk back from a CP-SAT circuit; shared by tsp and hamiltonian_cycle."""

from __future__ import annotations

import re
from typing import Any

from ortools.sat.python import cp_model

from dmpo.npbench.parsing import MAX_DIGITS, parse_int_list

# The usual well-formed answer, "[0, 2, 1, 3, 0]", is read with one regex and str.split (the
# general tokenizer costs ~1 µs per id); anything else goes through parse_int_list.
_FLAT_LIST = re.compile(r"\[([0-9\s,]*+)\]")
_TOO_LONG = re.compile(rf"[0-9]{{{MAX_DIGITS + 1}}}")


def parse_walk(text: str) -> list[int] | None:
    """A flat list of ints (``[0, 2, 1, 0]``, ``0 -> 2 -> 1 -> 0``, ...), else None."""
    if isinstance(text, str):
        match = _FLAT_LIST.fullmatch(text)
        if match and match[1].strip() and not _TOO_LONG.search(text):
            try:
                return list(map(int, match[1].split(",")))
            except ValueError:
                pass
    return parse_int_list(text)


def canonical_cycle(answer: list[int]) -> tuple[int, ...]:
    """A closed walk rotated to start at its smallest vertex, in the direction whose second
    vertex is smaller, so that one cycle written from any start or either way counts once.
    Anything that is not a closed walk without repeats is returned as written."""
    if len(answer) >= 4 and answer[0] == answer[-1]:
        cycle = answer[:-1]
        if len(set(cycle)) == len(cycle):
            start = cycle.index(min(cycle))
            cycle = cycle[start:] + cycle[:start]
            if cycle[-1] < cycle[1]:
                cycle = [cycle[0], *reversed(cycle[1:])]
            return (*cycle, cycle[0])
    return tuple(answer)


def follow_circuit(arcs: dict[tuple[int, int], Any], cp_solver: cp_model.CpSolver, start: int) -> list[int]:
    """The closed walk that the chosen arcs of an ``add_circuit`` solution trace from ``start``."""
    successor = {i: j for (i, j), lit in arcs.items() if i != j and cp_solver.value(lit)}
    walk = [start]
    while successor[walk[-1]] != start:
        walk.append(successor[walk[-1]])
    walk.append(start)
    return walk
