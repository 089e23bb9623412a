"""Task specs → task sources: the one place that knows every kind of source.

    knapsack, tsp, npbench:knapsack     NP-Bench tasks (dmpo.npbench.source.NPBenchSource)
    math:PATH[?problem=..&answer=..]    a math file; math:synthetic[?kind=..]  (dmpo.sources.math)
    rg:NAME[?FIELD=VALUE&...]           a reasoning-gym task (dmpo.sources.rg)

``dmpo train --tasks``, ``dmpo eval --tasks`` and ``dmpo bench score`` take these specs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dmpo.errors import DmpoError
from dmpo.npbench.source import NPBenchSource
from dmpo.sources import MathSource, ReasoningGymSource, split_spec

PREFIXES: tuple[str, ...] = ("npbench", "math", "rg")


def is_npbench(spec: str) -> bool:
    """An NP-Bench task name, with or without the ``npbench:`` prefix."""
    return split_spec(spec)[0] == "npbench"


def get_source(spec: str, *, difficulty: str = "tiny", timeout_s: float | None = 5.0) -> Any:
    """The :class:`~dmpo.sources.TaskSource` a spec names (DmpoError for an unknown one)."""
    prefix, body, options = split_spec(spec)
    if prefix == "npbench":
        if options:
            raise DmpoError(f"{spec!r}: NP-Bench tasks take no options")
        return NPBenchSource(body, difficulty=difficulty)
    if prefix == "math":
        return MathSource(spec, timeout_s=timeout_s)
    if prefix == "rg":
        return ReasoningGymSource(spec, timeout_s=timeout_s)
    raise DmpoError(f"unknown task source prefix {prefix + ':'!r} in {spec!r}; valid: an NP-Bench task "
                    f"name (knapsack), {', '.join(p + ':' for p in PREFIXES)}")


def get_sources(specs: Sequence[str], *, difficulty: str = "tiny", timeout_s: float | None = 5.0) -> list[Any]:
    """One source per spec; a spec given twice is an error."""
    sources = [get_source(spec, difficulty=difficulty, timeout_s=timeout_s) for spec in specs]
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DmpoError(f"tasks {repeated} given more than once")
    return sources
