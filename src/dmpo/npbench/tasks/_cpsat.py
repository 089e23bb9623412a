"""The one way every task builds its CP-SAT solver, so results are reproducible."""

from __future__ import annotations

from typing import Any

from ortools.sat.python import cp_model


def cp_solver(time_limit: float, **parameters: Any) -> cp_model.CpSolver:
    """A single-worker CP-SAT solver whose result does not depend on the machine's speed (the
    deterministic limit binds before the wall-clock one on any reasonable machine).

    ``parameters`` are further CP-SAT parameters, e.g. ``linearization_level=2``, which puts
    the Boolean constraints into the LP and proves cut and circuit models several times faster.
    """
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.max_deterministic_time = time_limit
    for key, value in parameters.items():
        setattr(solver.parameters, key, value)
    return solver
