"""Forget (unlearning) objectives: gradient ascent and NPO with its retain-set variants.

Notation: ``lp(y) = Σ_t lp_t`` on a forget sequence,
``ref(y)`` under the frozen reference. The forget terms average over forget sequences; the
retain terms average over all retain tokens of the batch, as the NPO code's
``model(...).loss`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dmpo.errors import DmpoError
from dmpo.objectives.batch import ForgetBatch
from dmpo.objectives.common import mean_or_zero, require, sequence_logps, token_mean
from dmpo.objectives.registry import ObjectiveOutput, register

GA_NLL_FORMS = ("sum", "token_mean")


def _npo_term(batch: ForgetBatch, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """−(2/β)·mean log σ(−β·(lp(y) − ref(y))) over the forget sequences."""
    if beta <= 0:
        raise DmpoError(f"NPO needs beta > 0, got {beta}")
    log_ratio = sequence_logps(batch.forget_logps, batch.forget_mask) - sequence_logps(
        batch.ref_forget_logps, batch.forget_mask
    )
    loss = mean_or_zero(-(2 / beta) * F.logsigmoid(-beta * log_ratio))
    metrics = {
        "forget/logps": mean_or_zero(
            sequence_logps(batch.forget_logps, batch.forget_mask).detach().float()
        ).item(),
        "forget/log_ratio": mean_or_zero(log_ratio.detach().float()).item(),
    }
    return loss, metrics


@register(
    "ga",
    "forget",
    paper="gradient ascent on the forget set (baseline in NPO, arXiv 2404.05868)",
    oracle="limit of npo as β → 0 (gradient)",
    summary="−NLL(forget) = mean lp(y)",
)
def ga(batch: ForgetBatch, *, nll_form: str = "sum") -> ObjectiveOutput:
    """Gradient ascent: ``L = −NLL(y)`` on the forget set.

    ``nll_form``: ``sum`` gives ``L = mean_y lp(y)`` (summed log-probs, the β → 0 limit of NPO's
    gradient); ``token_mean`` gives the mean over every forget token (the NPO code's GA baseline).
    """
    if nll_form not in GA_NLL_FORMS:
        raise DmpoError(f"nll_form must be one of {list(GA_NLL_FORMS)}, got {nll_form!r}")
    if nll_form == "sum":
        loss = mean_or_zero(sequence_logps(batch.forget_logps, batch.forget_mask))
    else:
        loss = token_mean(batch.forget_logps, batch.forget_mask)
    return ObjectiveOutput(loss, {"forget/nll": -loss.detach().float().item()})


@register(
    "npo",
    "forget",
    paper="NPO, Negative Preference Optimization: From Catastrophic Collapse to Effective "
    "Unlearning (arXiv 2404.05868)",
    oracle="β → 0 tends to ga (gradient scaled by 1)",
    summary="−(2/β)·mean log σ(−β·(lp(y) − ref(y)))",
)
def npo(batch: ForgetBatch, *, beta: float = 0.1) -> ObjectiveOutput:
    """NPO: ``L = −(2/β)·mean_y log σ(−β·(lp(y) − ref(y)))`` on the forget set.

    As β → 0, ``L − 2·log 2/β → mean_y (lp(y) − ref(y))``: the gradient of gradient ascent.
    """
    require(batch, "npo", "ref_forget_logps")
    loss, metrics = _npo_term(batch, beta)
    return ObjectiveOutput(loss, metrics)


@register(
    "npo_gd",
    "forget",
    paper="NPO+RT (arXiv 2404.05868)",
    oracle="npo + retain_weight·(token-mean NLL on retain data)",
    summary="npo + λ_r·NLL(retain)",
)
def npo_gd(batch: ForgetBatch, *, beta: float = 0.1, retain_weight: float = 1.0) -> ObjectiveOutput:
    """NPO with gradient descent on retain data: ``L = npo + λ_r·NLL_retain``.

    ``NLL_retain = −Σ_{t} lp_t / (number of retain tokens)``, the token mean over the retain batch.
    """
    require(batch, "npo_gd", "ref_forget_logps", "retain_logps")
    loss, metrics = _npo_term(batch, beta)
    retain_nll = -token_mean(batch.retain_logps, batch.retain_mask)
    metrics["retain/nll"] = retain_nll.detach().float().item()
    return ObjectiveOutput(loss + retain_weight * retain_nll, metrics)


@register(
    "npo_kl",
    "forget",
    paper="NPO+KL (arXiv 2404.05868)",
    oracle="npo + retain_weight·(token-mean k3 estimate of KL(ref‖policy) on retain data)",
    summary="npo + λ_r·KL(ref‖π) on retain data",
)
def npo_kl(batch: ForgetBatch, *, beta: float = 0.1, retain_weight: float = 1.0) -> ObjectiveOutput:
    """NPO with a KL to the reference on retain data: ``L = npo + λ_r·KL_retain``.

    The NPO code computes ``KL(π_ref ‖ π_θ)`` over the full vocabulary at every retain
    position. A batch holds only the log-probs of the retain tokens themselves, so we estimate
    it per token with ``k3 = exp(lp_t − ref_t) − (lp_t − ref_t) − 1``, which is ≥ 0, zero when
    policy and reference agree, and unbiased for ``KL(π_ref ‖ π_θ)`` when the tokens follow the
    reference; it is averaged over all retain tokens.
    """
    require(batch, "npo_kl", "ref_forget_logps", "retain_logps", "ref_retain_logps")
    loss, metrics = _npo_term(batch, beta)
    log_ratio = batch.retain_logps - batch.ref_retain_logps
    retain_kl = token_mean(torch.expm1(log_ratio) - log_ratio, batch.retain_mask)
    metrics["retain/kl"] = retain_kl.detach().float().item()
    return ObjectiveOutput(loss + retain_weight * retain_kl, metrics)
