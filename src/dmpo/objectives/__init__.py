"""The maths: DMPO and related objectives as pure PyTorch functions. Imports no engine.

    from dmpo import objectives
    out = objectives.get("dmpo")(batch, lam=2.0)   # out.loss, out.metrics
    objectives.names(kind="pair")
"""

# Importing the objective modules registers their objectives by name.
from dmpo.objectives import (  # noqa: F401
    covariance,
    flowrl,
    forget,
    gpg,
    group,
    pair,
    passk,
    related,
)
from dmpo.objectives import dmpo as _dmpo  # noqa: F401
from dmpo.objectives.batch import ForgetBatch, GroupBatch, PairBatch
from dmpo.objectives.pairs import best_vs_worst, pair_batch_from_group, pairs_above_margin
from dmpo.objectives.registry import ObjectiveOutput, ObjectiveSpec, get, names, register, specs

__all__ = [
    "ForgetBatch",
    "GroupBatch",
    "ObjectiveOutput",
    "ObjectiveSpec",
    "PairBatch",
    "best_vs_worst",
    "get",
    "names",
    "pair_batch_from_group",
    "pairs_above_margin",
    "register",
    "specs",
]
