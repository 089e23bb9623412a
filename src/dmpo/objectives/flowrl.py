"""FlowRL: matching the reward distribution by flow balance (Zhu et al., arXiv 2509.15207).

A trajectory-balance objective (GFlowNets) that makes π_θ(y|x) proportional to
π_ref(y|x)·exp(β·r̂(x, y)), with a learned log-partition log Z_φ(x). The log-partition comes
from a small head on the prompt's hidden states (the authors: an MLP on the mean last-layer
hidden state of the prompt tokens); the pure objective takes its output as
``batch.log_z`` and sends gradient to it.
"""

from __future__ import annotations

import math

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import compute_dtype, masked_mean, masked_sum, num_tokens, to_output
from dmpo.objectives.gpg import batch_advantages
from dmpo.objectives.registry import ObjectiveOutput, register


@register(
    "flowrl",
    "group",
    paper="arXiv 2509.15207 (FlowRL)",
    oracle="authors' verl actor (compute_flowrl_objective) and verl recipe/flowrl "
    "(compute_flowrl_clip); hand values",
    summary="Squared trajectory-balance residual log Z + avg log π − β·r̂ − avg log π_ref, "
    "weighted by a clipped sequence importance ratio; β = 15.",
)
def flowrl(
    batch: GroupBatch,
    *,
    beta: float = 15.0,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    use_ref: bool = True,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> ObjectiveOutput:
    """FlowRL (arXiv 2509.15207, the FlowRL objective):

        δ_i = log Z_φ(x_i) + (1/|y_i|) log π_θ(y_i|x_i) − β·r̂_i − (1/|y_i|) log π_ref(y_i|x_i)
        w_i = sg[clip(π_θ(y_i|x_i) / π_old(y_i|x_i), 1 − ε_low, 1 + ε_high)]
        L   = (1/N) Σ_i w_i·δ_i²

    with ``log π(y|x) = Σ_t lp_t`` over the completion's real tokens, ``log Z_φ(x_i)`` =
    ``batch.log_z[i]`` and r̂ the group-normalised reward ``(r − mean_g r)/(std_g r + adv_eps)``
    (``batch.advantages`` when given, as verl feeds its GRPO advantages to the loss). Gradient
    flows to ``batch.logps`` and ``batch.log_z``; w carries none.

    Choices the paper leaves open, taken from the authors' code unless said otherwise:

    * r̂ is normalised by the group std (``scale_rewards="group"``, GRPO's estimator in their
      runs), not only centred; ``"none"`` centres only. Unbiased std, eps 1e-4 as this
      library's GRPO (the authors' verl uses 1e-6). A group of one, or of equal rewards, has
      r̂ = 0.
    * The importance ratio is the sequence ratio exp(Σ_t (lp_t − old_t)) (product of token
      ratios), not the per-token geometric mean.
    * w is clipped to [1 − ε_low, 1 + ε_high] as the paper writes, ε = 0.2 as verl's
      ``clip_ratio``. (The authors' first release computed the clipped weight but multiplied
      by the unclipped one; verl's recipe has variants with [0.8, 1.28] and with max 10.)
      On-policy (``old_logps`` None) w = 1.
    * β = 15 as in the paper and code. ``use_ref=False`` drops the reference term
      (π_ref uniform), for runs without a reference model.
    * A completion without tokens contributes 0 (and no gradient to its log Z) but counts in
      N, as in ``grpo``.
    * ``log_z`` should hold the same value for every completion of a prompt (one head output
      per prompt); this is not checked.
    """
    if batch.log_z is None:
        raise DmpoError(
            "flowrl needs batch.log_z: the learned log-partition log Z_φ(x) of each completion's "
            "prompt ([N], with gradient, from a head on the prompt's hidden states)"
        )
    if use_ref and batch.ref_logps is None:
        raise DmpoError(
            "flowrl with use_ref=True needs batch.ref_logps (reference-model log-probs); "
            "pass use_ref=False to drop the reference term"
        )
    if not (0.0 <= epsilon_low < 1.0 and epsilon_high >= 0.0):
        raise DmpoError(
            f"flowrl needs 0 <= epsilon_low < 1 and epsilon_high >= 0, got "
            f"epsilon_low={epsilon_low}, epsilon_high={epsilon_high}"
        )
    if not (beta >= 0.0 and math.isfinite(beta)):
        raise DmpoError(f"beta must be finite and >= 0, got {beta}")

    dtype = compute_dtype(batch.logps.dtype)
    real = batch.mask.bool()
    mask = batch.mask.to(dtype)
    logps = torch.where(real, batch.logps.to(dtype), 0.0)
    old = logps.detach() if batch.old_logps is None else batch.old_logps.to(dtype)
    rewards = batch_advantages(batch, dtype, scale_rewards=scale_rewards, adv_eps=adv_eps)

    residual = batch.log_z.to(dtype) + masked_mean(logps, mask) - beta * rewards
    if use_ref:
        residual = residual - masked_mean(torch.where(real, batch.ref_logps.to(dtype), 0.0), mask)

    with torch.no_grad():
        log_ratio = masked_sum(torch.where(real, logps - old, 0.0), mask)
        raw_weight = torch.exp(log_ratio)
        weight = raw_weight.clamp(1.0 - epsilon_low, 1.0 + epsilon_high)
    has_tokens = num_tokens(mask) > 0
    loss = torch.where(has_tokens, weight * residual * residual, 0.0).mean()

    with torch.no_grad():
        rows = has_tokens.to(dtype)
        n_rows = rows.sum().clamp(min=1)
        clipped = (
            (raw_weight < 1.0 - epsilon_low) | (raw_weight > 1.0 + epsilon_high)
        ) & has_tokens
        metrics = {
            "log_z_mean": batch.log_z.detach().to(dtype).mean(),
            "residual_abs_mean": (residual.detach().abs() * rows).sum() / n_rows,
            "importance_weight_mean": (weight * rows).sum() / n_rows,
            "importance_weight_clip_fraction": clipped.to(dtype).sum() / n_rows,
        }
    return to_output(loss, metrics)



# Batch fields an engine must fill in for this objective (besides the usual ones).
flowrl.needs = ("log_z",)
# Part of a group is enough (registry docstring): δ_i and w_i are per completion, r̂ comes from
# batch.advantages, and log Z is a function of the prompt alone.
flowrl.whole_groups = None
