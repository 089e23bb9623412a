"""The CP-SAT solver settings shared by tsp, hamiltonian_cycle, min_cut and max_cut."""

from __future__ import annotations

from ortools.sat.python import cp_model


def cp_solver(time_limit: float) -> cp_model.CpSolver:
    """A single-worker CP-SAT solver whose result does not depend on the machine's speed
    (the deterministic limit binds before the wall-clock one on any reasonable machine).
    Linearization level 2 puts the Boolean constraints into the LP; on cut and circuit
    models it proves optima several times faster than the default."""
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.max_deterministic_time = time_limit
    solver.parameters.linearization_level = 2
    return solver
