"""The maths: DMPO and related objectives as pure PyTorch functions. Imports no engine.

    from dmpo import objectives
    out = objectives.get("dmpo")(batch, lam=2.0)   # out.loss, out.metrics
    objectives.names(kind="pair")
"""

from dmpo.objectives.batch import ForgetBatch, GroupBatch, PairBatch
from dmpo.objectives.registry import ObjectiveOutput, ObjectiveSpec, get, names, register, specs

# Importing the modules registers their objectives (order: group, pair, forget).
from dmpo.objectives import related  # noqa: F401
from dmpo.objectives import forget, pair  # noqa: F401


__all__ = [
    "ForgetBatch",
    "GroupBatch",
    "ObjectiveOutput",
    "ObjectiveSpec",
    "PairBatch",
    "get",
    "names",
    "register",
    "specs",
]
