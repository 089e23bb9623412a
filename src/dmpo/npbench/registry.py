"""The 14 tasks by name, their categories, and the public benchmark's names for them."""

from __future__ import annotations

import importlib
from functools import cache

from dmpo.errors import DmpoError
from dmpo.npbench.base import Task

# name -> module under dmpo.npbench.tasks (one module per task; each defines TASK).
TASK_NAMES: tuple[str, ...] = (
    "graph_coloring",
    "max_clique",
    "max_independent_set",
    "meeting_schedule",
    "min_cut",
    "set_cover",
    "subset_sum",
    "knapsack",
    "tsp",
    "hamiltonian_cycle",
    "vertex_cover",
    "dominating_set",
    "feedback_vertex_set",
    "max_cut",
)

TEXT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "graph": ("graph_coloring", "max_clique", "max_independent_set"),
    "schedule": ("meeting_schedule",),
    "partition": ("min_cut",),
    "selection": ("set_cover", "subset_sum", "knapsack"),
    "planning": ("tsp", "hamiltonian_cycle"),
}
VISION_GROUPS: dict[str, tuple[str, ...]] = {
    "constraint": ("graph_coloring", "feedback_vertex_set"),
    "covering": ("vertex_cover", "dominating_set"),
    "partitioning": ("min_cut", "max_cut"),
    "subgraph": ("max_clique", "max_independent_set"),
    "path": ("tsp", "hamiltonian_cycle"),
}


def list_tasks() -> list[str]:
    """The 14 task names."""
    return list(TASK_NAMES)


@cache
def get_task(name: str) -> Task:
    """The task called ``name`` (ours, or the public benchmark's ``task_type``)."""
    canonical = _PUBLIC_TO_NAME.get(name, name)
    if canonical not in TASK_NAMES:
        raise DmpoError(f"unknown task {name!r}; valid tasks: {list(TASK_NAMES)}")
    module = importlib.import_module(f"dmpo.npbench.tasks.{canonical}")
    return module.TASK


def category_of(name: str, *, protocol: str = "text") -> str | None:
    groups = TEXT_CATEGORIES if protocol == "text" else VISION_GROUPS
    for group, members in groups.items():
        if name in members:
            return group
    return None


# Public task_type names (text benchmark and VLMEvalKit's npmm) mapped to ours.
_PUBLIC_TO_NAME: dict[str, str] = {
    "GCP-D": "graph_coloring",
    "graph-coloring": "graph_coloring",
    "maximum_clique_problem": "max_clique",
    "maximum-clique": "max_clique",
    "maximum-set": "max_independent_set",
    "meeting-schedule": "meeting_schedule",
    "minimum-cut": "min_cut",
    "set-cover": "set_cover",
    "subset-sum": "subset_sum",
    "knapsack": "knapsack",
    "tsp": "tsp",
    "TSP": "tsp",
    "hamiltonian-cycle": "hamiltonian_cycle",
    "vertex-cover": "vertex_cover",
    "dominating-set": "dominating_set",
    "feedback-vertex-set": "feedback_vertex_set",
    "max-cut": "max_cut",
    "maximum-cut": "max_cut",
}


def task_name_for(public: str) -> str:
    """Our name for a public ``task_type`` (or our own name), else DmpoError."""
    name = _PUBLIC_TO_NAME.get(public, public)
    if name not in TASK_NAMES:
        raise DmpoError(f"unknown task_type {public!r}; known: {sorted(set(_PUBLIC_TO_NAME) | set(TASK_NAMES))}")
    return name
