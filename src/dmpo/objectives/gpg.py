"""GPG: Group Policy Gradient (Chu et al., arXiv 2504.02546).

A plain policy gradient on group-relative advantages: no importance ratio, no clipping, no
reference model. The loss, per token ``t`` of completion ``i``:

    ℓ_{i,t} = −α · Â_i · log π_θ(y_{i,t} | x, y_{i,<t})
    Â_i     = (r_i − mean_g r) / F_norm,    F_norm = 1 (default) or std_g r + eps
    α       = B / (B − M)

``B`` is the number of completions in the batch and ``M`` the number of completions whose
group has all-equal rewards (max − min ≤ 1e-5): their advantage, hence their gradient, is zero,
and α rescales the gradient so that these "invalid" samples do not dilute it. The sum over
tokens is divided as verl's ``loss_agg_mode="token-mean"`` divides it (``aggregation="dapo"``:
tokens of the whole optimisation batch when ``batch.num_items_in_batch`` is given, else tokens
of this batch).
"""

from __future__ import annotations

import torch

from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import compute_dtype, group_advantages, to_output, zero_signal_groups
from dmpo.objectives.policy_gradient import aggregate_token_loss
from dmpo.objectives.registry import ObjectiveOutput, register


def batch_advantages(
    batch: GroupBatch, dtype: torch.dtype, *, scale_rewards: str, adv_eps: float
) -> torch.Tensor:
    """``batch.advantages`` when the batch brings them, else group-normalised rewards: [N]."""
    if batch.advantages is not None:
        return batch.advantages.to(dtype)
    return group_advantages(
        batch.rewards.to(dtype), batch.group_ids, scale_rewards=scale_rewards, eps=adv_eps
    )


def valid_sample_scale(batch: GroupBatch, dtype: torch.dtype) -> torch.Tensor:
    """GPG's α = B / (B − M) for this batch (1 when every group is degenerate): a scalar."""
    informative = ~zero_signal_groups(batch.rewards.to(dtype), batch.group_ids)
    total = torch.tensor(float(batch.num_completions), dtype=dtype, device=batch.rewards.device)
    return total / informative.sum().to(dtype).clamp(min=1)


@register(
    "gpg",
    "group",
    paper="arXiv 2504.02546 (GPG)",
    oracle="verl compute_gpg_outcome_advantage + compute_policy_loss_gpg (token-mean); "
    "α as in the authors' open-r1 gpg_trainer (adjust_gd)",
    summary="Plain policy gradient −α·Â·log π_t (no ratio, no clip); α = B/(B − M) undoes the "
    "dilution by zero-signal groups.",
)
def gpg(
    batch: GroupBatch,
    *,
    scale_rewards: str = "none",
    adv_eps: float = 1e-4,
    alpha_scaling: bool = True,
    aggregation: str = "dapo",
) -> ObjectiveOutput:
    """GPG (arXiv 2504.02546):  L = −(1/|T|) Σ_i Σ_t α·Â_i·log π_θ(y_{i,t} | x, y_{i,<t}).

    ``Â_i = (r_i − mean_g r)/F_norm``: ``scale_rewards="none"`` is F_norm = 1 (verl's
    ``f_norm=1`` default and the authors' GPG recipes, ``scale_rewards: false``); ``"group"``
    divides by ``std_g r + adv_eps`` (the authors' ``scale_rewards=True`` option); ``"batch"``
    by the std of all rewards. ``batch.advantages``,
    when given, replace Â (α still multiplies them).

    ``α = B/(B − M)`` with ``alpha_scaling`` (the authors' ``adjust_gd``), else 1. ``|T|`` is
    set by ``aggregation`` (one of the GRPO family's: ``dapo`` = verl's token-mean, default;
    ``bnpo``, ``grpo``, ``dr_grpo``).

    Choices where the sources differ or say nothing:

    * M counts completions in groups whose rewards are all equal (the paper's and the
      authors' code's "invalid samples"), not verl's ``count_nonzero(rewards)``, which counts
      completions with a non-zero *raw reward*.
    * α is computed over this batch's groups (the sources compute it over the generation batch;
      an engine that splits a generation batch into micro-batches of whole groups gets a
      per-micro-batch α).
    * A group of one gets advantage 0 (verl gives it Â = r, subtracting a mean of 0).
    * There is no importance ratio: ``batch.old_logps`` is ignored, as in GPG (on-policy). On
      policy the gradient equals the clipped surrogate's at ρ = 1; the loss value differs
      (−Â·log π rather than −Â·ρ).
    """
    dtype = compute_dtype(batch.logps.dtype)
    mask = batch.mask.to(dtype)
    logps = torch.where(batch.mask.bool(), batch.logps.to(dtype), 0.0)
    advantages = batch_advantages(batch, dtype, scale_rewards=scale_rewards, adv_eps=adv_eps)
    if alpha_scaling:
        alpha = valid_sample_scale(batch, dtype)
    else:
        alpha = torch.ones((), dtype=dtype, device=logps.device)

    token_loss = -(alpha * advantages).unsqueeze(-1) * logps
    loss = aggregate_token_loss(
        token_loss,
        mask,
        aggregation,
        max_completion_length=None,
        num_items_in_batch=batch.num_items_in_batch,
    )
    metrics = {
        "alpha": alpha.detach(),
        "advantage_abs_mean": advantages.detach().abs().mean(),
    }
    return to_output(loss, metrics)


def _gpg_whole_groups(params: dict) -> str | None:
    if params.get("alpha_scaling", True):
        return ("its α = B/(B − M) counts the completions of groups whose rewards are all equal, "
                "which part of a group cannot tell; objective_kwargs alpha_scaling=False lifts this")
    return None


# Part of a group is enough without α (registry docstring): −Â_i·lp_t per completion.
gpg.whole_groups = _gpg_whole_groups
