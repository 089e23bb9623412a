"""The maths: DMPO and related objectives as pure PyTorch functions. Imports no engine.

One file per family: ``policy_gradient`` (GRPO, BNPO, DAPO, Dr. GRPO, GSPO, LUSPO, CISPO, SAPO,
VESPO: TRL's loss types, and their shared options), ``dm_term`` (the
distribution-matching term), ``dmpo`` (L_base + λ·L_DM and its presets), ``gpg``,
``covariance`` (Clip-Cov, KL-Cov), ``flowrl``, ``passk`` (Pass@k training), ``disco``,
``brain``, ``dgpo``, ``preference`` (DPO and relatives on pairs), ``pair_building`` (pairs from scored
groups), ``forget`` (unlearning); ``common`` holds the shared reductions, ``batch`` the inputs,
``registry`` the names.

    from dmpo import objectives
    out = objectives.get("dmpo")(batch, lam=2.0)   # out.loss, out.metrics
    objectives.names(kind="pair")
"""

# Importing the objective modules registers their objectives by name.
from dmpo.objectives import (  # noqa: F401
    brain,
    covariance,
    dgpo,
    disco,
    flowrl,
    forget,
    gpg,
    passk,
    policy_gradient,
    preference,
)
from dmpo.objectives import dmpo as _dmpo  # noqa: F401
from dmpo.objectives.batch import ForgetBatch, GroupBatch, PairBatch
from dmpo.objectives.dm_term import DMTerm, dm_coefficients, dm_term
from dmpo.objectives.pair_building import best_vs_worst, pair_batch_from_group, pairs_above_margin
from dmpo.objectives.registry import ObjectiveOutput, ObjectiveSpec, get, names, register, specs

__all__ = [
    "DMTerm",
    "ForgetBatch",
    "GroupBatch",
    "ObjectiveOutput",
    "ObjectiveSpec",
    "PairBatch",
    "best_vs_worst",
    "dm_coefficients",
    "dm_term",
    "get",
    "names",
    "pair_batch_from_group",
    "pairs_above_margin",
    "register",
    "specs",
]
