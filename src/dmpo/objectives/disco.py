"""DisCO: discriminative constrained optimisation (arXiv 2505.12366).

A pure function of a :class:`GroupBatch`; groups are complete and may differ in size.
Half-precision inputs are computed in float32 (gradients flow back in the input's dtype).
"""

from __future__ import annotations

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    check_choice,
    group_index,
    group_max,
    group_sum,
    masked_mean,
    masked_sum,
    token_inputs,
)
from dmpo.objectives.registry import ObjectiveOutput, register


def _group_logsumexp(
    values: torch.Tensor, include: torch.Tensor, index: torch.Tensor, num_groups: int
) -> torch.Tensor:
    """log Σ_{i∈g, include_i} exp(values_i) per group: [N] → [K]; 0 for a group with no member.

    Stable, and with finite gradients even for the empty groups.
    """
    masked = torch.where(include, values, float("-inf"))
    shift = group_max(masked.detach(), index, num_groups)
    shift = torch.where(torch.isfinite(shift), shift, 0.0)
    total = group_sum(torch.exp(masked - shift[index]), index, num_groups)
    has_member = group_sum(include.to(values.dtype), index, num_groups) > 0
    return torch.log(torch.where(has_member, total, 1.0)) + torch.where(has_member, shift, 0.0)


@register(
    "disco",
    "group",
    paper="DisCO, arXiv 2505.12366",
    oracle="official code's detach-trick log-sum-exp (gradient only); DisCO-b = mean_pos − mean_neg",
    summary="Discriminative objective on binary rewards with a squared-hinge KL constraint.",
)
def disco(
    batch: GroupBatch,
    *,
    score: str = "logL",
    tau: float | None = None,
    form: str = "dro",
    threshold: float = 0.5,
    delta: float = 1e-4,
    beta_constraint: float = 1e3,
) -> ObjectiveOutput:
    """DisCO: discriminative constrained optimisation (arXiv 2505.12366).

    Completion i is positive when ``r_i > threshold``. Score ``s_i = avg(y_i)`` (``logL``,
    τ = 10) or ``s_i = mean_t ρ_t``, ``ρ_t = exp(lp_t − old_t)`` (``Lratio``, τ = 1).
    Per group holding both positives and negatives:

        dro:    J_g = mean_pos s − τ·log Σ_neg exp(s/τ)
        basic:  J_g = mean_pos s − mean_neg s                    (DisCO-b)

    ``J = Σ_g J_g / K`` over all K groups: all-correct and all-wrong groups add 0 but count.
    ``KL̂ = Σ_t (old_t − lp_t) / #tokens`` over every real token of the batch, and

        L = −J + (β/2)·max(KL̂ − δ, 0)²

    whose gradient is the paper's squared-hinge step ``−∇J + sg[β·max(KL̂ − δ, 0)]·∇KL̂``.
    The loss value is the honest one: the true log-sum-exp and the penalty itself, not the
    official code's detach-trick surrogate (same gradient, different value).
    """
    check_choice("score", score, ("logL", "Lratio"))
    check_choice("form", form, ("dro", "basic"))
    if tau is None:
        tau = 10.0 if score == "logL" else 1.0
    if tau <= 0:
        raise DmpoError(f"tau must be > 0, got {tau}")
    if delta < 0 or beta_constraint < 0:
        raise DmpoError(f"delta and beta_constraint must be >= 0, got {delta}, {beta_constraint}")

    real, mask, logps, old = token_inputs(batch)
    log_ratio = torch.where(real, logps - old, 0.0)
    scores = (
        masked_mean(logps, mask) if score == "logL" else masked_mean(torch.exp(log_ratio), mask)
    )

    index, k = group_index(batch.group_ids)
    positive = batch.rewards > threshold
    pos = positive.to(scores.dtype)
    neg = 1.0 - pos
    n_pos = group_sum(pos, index, k)
    n_neg = group_sum(neg, index, k)
    kept = (n_pos > 0) & (n_neg > 0)

    mean_pos = group_sum(scores * pos, index, k) / n_pos.clamp(min=1)
    if form == "basic":
        neg_term = group_sum(scores * neg, index, k) / n_neg.clamp(min=1)
    else:
        neg_term = tau * _group_logsumexp(scores / tau, ~positive, index, k)
    j = torch.where(kept, mean_pos - neg_term, 0.0).sum() / k

    kl = masked_sum(old - logps, mask).sum() / mask.sum().clamp(min=1)
    hinge = torch.clamp(kl - delta, min=0.0)
    loss = -j + 0.5 * beta_constraint * hinge * hinge

    metrics = {
        "j": j.item(),
        "kl": kl.item(),
        "dropped_fraction": (~kept).float().mean().item(),
    }
    return ObjectiveOutput(loss, metrics)


disco.whole_groups = (
    "its J_g compares each group's positives with its negatives (a mean over the positives and "
    "a log-sum-exp over the negatives of the whole group)"
)
