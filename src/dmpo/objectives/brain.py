"""BRAIn: distil the reward-conditioned posterior over each group (arXiv 2402.02479).

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
    group_log_softmax,
    group_softmax,
    group_sum,
    masked_sum,
    token_inputs,
    upcast,
)
from dmpo.objectives.registry import ObjectiveOutput, register


@register(
    "brain",
    "group",
    paper="BRAIn, arXiv 2402.02479",
    oracle="gradient Σ_i (β̂_i − α̂_i)∇lp(y_i)",
    summary="Self-normalised cross-entropy to the reward-conditioned posterior over each group.",
)
def brain(batch: GroupBatch, *, beta_r: float = 1.0, proposal: str = "sampler") -> ObjectiveOutput:
    """BRAIn: distil the reward-conditioned posterior by self-normalised importance sampling.

    With ``lp(y) = Σ_t lp_t`` and per group g:

        log q_prop(y) = Σ_t old_t  (``sampler``; ``logps`` detached when on-policy)
                        Σ_t ref_t  (``prior``: the completions were sampled from the reference)
        log p_prior(y) = Σ_t ref_t, or 0 (flat prior) when the batch has no ``ref_logps``
        α̂_i = softmax_g(log p_prior + r/β_r − log q_prop)_i     (target, no gradient)
        β̂_i = softmax_g(lp − log q_prop)_i
        L = mean_g [ −Σ_{i∈g} α̂_i log β̂_i ]

    Gradient ``Σ_i (β̂_i − α̂_i)∇lp(y_i)`` per group: with the sampler as proposal and a flat
    prior, this is the ``dmpo-ce`` form on summed log-likelihoods.
    """
    check_choice("proposal", proposal, ("sampler", "prior"))
    if beta_r <= 0:
        raise DmpoError(f"beta_r must be > 0, got {beta_r}")
    if proposal == "prior" and batch.ref_logps is None:
        raise DmpoError("brain with proposal='prior' needs batch.ref_logps (the prior's log-probs)")

    real, mask, logps, old = token_inputs(batch)
    seq_logps = masked_sum(logps, mask)
    prior = (
        masked_sum(torch.where(real, upcast(batch.ref_logps), 0.0), mask)
        if batch.ref_logps is not None
        else torch.zeros_like(seq_logps)
    )
    log_proposal = masked_sum(old, mask) if proposal == "sampler" else prior
    rewards = batch.rewards.to(seq_logps.dtype)

    index, k = group_index(batch.group_ids)
    target = group_softmax((prior + rewards / beta_r - log_proposal).detach(), index, k)
    log_policy = group_log_softmax(seq_logps - log_proposal.detach(), index, k)
    loss = group_sum(-target * log_policy, index, k).sum() / k

    with torch.no_grad():
        log_target = torch.log(target.clamp(min=torch.finfo(target.dtype).tiny))
        kl = group_sum(target * (log_target - log_policy), index, k).sum() / k
        size = group_sum(torch.ones_like(target), index, k)
        ess = (1.0 / group_sum(target * target, index, k) / size).mean()
    return ObjectiveOutput(loss, {"kl_target_policy": kl.item(), "target_ess": ess.item()})


brain.whole_groups = "its target and policy distributions are softmaxes over each whole group"
