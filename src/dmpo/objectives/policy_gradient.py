"""The GRPO family: one clipped surrogate, aggregated over tokens in the way that names the method.

Per token (DeepSeekMath, arXiv 2402.03300):

    ρ_t = exp(lp_t − old_t)
    ℓ_t = −min(ρ_t·A, clip(ρ_t, 1−ε_low, 1+ε_high)·A) + β_kl·k3_t,
    k3_t = exp(ref_t − lp_t) − (ref_t − lp_t) − 1    (times ρ_t with kl_bias_correction, as
                                                     TRL's use_bias_correction_kl, default on there)

with the group-normalised advantage ``A_i = (r_i − mean_g r) / (std_g r + eps)`` unless the
batch brings its own. The methods differ only in how ℓ_t is averaged (TRL's ``loss_type``):

    grpo     mean over each completion's tokens, then over completions
    bnpo     Σ ℓ_t / tokens in this batch
    dapo     Σ ℓ_t / tokens in the whole optimisation batch (``batch.num_items_in_batch``)
    dr_grpo  Σ ℓ_t / (completions × max_completion_length)
    gspo     grpo, with ρ_t replaced by the sequence ratio s_i = exp(mean_t(lp_t − old_t))

Half-precision inputs are computed in float32 and the loss is float32; float32 and float64
inputs keep their dtype. Tokens outside ``mask`` never reach an ``exp`` (their log-ratios are
zeroed first), so padding filled with −inf or −1e4 cannot turn the loss into NaN.
"""

from __future__ import annotations

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    ZERO_SIGNAL_TOL,
    clipped_surrogate,
    compute_dtype,
    group_advantages,
    masked_mean,
    masked_sum,
    to_output,
    token_mean,
    zero_signal_groups,
)
from dmpo.objectives.registry import ObjectiveOutput, register

__all__ = ["AGGREGATIONS", "BASES", "ZERO_SIGNAL_TOL", "bnpo", "dapo", "dr_grpo", "grpo", "gspo"]

AGGREGATIONS = ("grpo", "bnpo", "dapo", "dr_grpo")


def clipped_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
    sequence_level: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ_t = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A), and ρ.

    Token level: ρ and ℓ are [N, T]. Sequence level (GSPO): ρ = exp(mean_t(lp_t − old_t)) and
    ℓ are [N, 1], broadcast over the completion's tokens by the aggregation, as in TRL.
    """
    log_ratio = torch.where(mask.bool(), logps - old_logps, 0.0)
    if sequence_level:
        log_ratio = masked_mean(log_ratio, mask).unsqueeze(-1)
    return clipped_surrogate(log_ratio, advantages.unsqueeze(-1), epsilon_low, epsilon_high)


def aggregate_token_loss(
    token_loss: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str,
    *,
    max_completion_length: int | None,
    num_items_in_batch: float | torch.Tensor | None,
) -> torch.Tensor:
    if aggregation == "grpo":
        return masked_mean(token_loss, mask).mean()
    total = masked_sum(token_loss, mask).sum()
    if aggregation == "bnpo":
        return total / mask.sum().clamp(min=1)
    if aggregation == "dapo":
        if num_items_in_batch is None:
            return total / mask.sum().clamp(min=1)
        if isinstance(num_items_in_batch, torch.Tensor):
            return total / num_items_in_batch.to(total.dtype).clamp(min=1)
        return total / max(float(num_items_in_batch), 1.0)
    if aggregation == "dr_grpo":
        length = mask.shape[1] if max_completion_length is None else max_completion_length
        if length <= 0:
            raise DmpoError(f"max_completion_length must be positive, got {length}")
        return total / (mask.shape[0] * length)
    raise DmpoError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def clip_fraction(flags: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Fraction of real tokens flagged within ``rows``; of completions for [N, 1] flags, as TRL logs."""
    if flags.shape[1] == 1:
        return (flags[:, 0] & rows).to(mask.dtype).mean()
    per_row = torch.where(flags, mask, 0.0).sum(-1)
    return (per_row * rows).sum() / mask.sum().clamp(min=1)


def policy_loss(
    batch: GroupBatch,
    *,
    aggregation: str,
    sequence_level: bool = False,
    epsilon_low: float,
    epsilon_high: float,
    beta_kl: float,
    kl_bias_correction: bool = False,
    scale_rewards: str,
    adv_eps: float,
    max_completion_length: int | None = None,
    dynamic_sampling: bool = False,
    mask_truncated: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate of every group objective: (scalar loss, detached metric tensors)."""
    dtype = compute_dtype(batch.logps.dtype)
    logps = batch.logps.to(dtype)
    old_logps = logps.detach() if batch.old_logps is None else batch.old_logps.to(dtype)
    mask = batch.mask.to(dtype)
    if batch.advantages is not None:
        advantages = batch.advantages.to(dtype)
    else:
        advantages = group_advantages(
            batch.rewards.to(dtype), batch.group_ids, scale_rewards=scale_rewards, eps=adv_eps
        )

    if mask_truncated:
        if batch.truncated is None:
            raise DmpoError(
                "mask_truncated=True needs batch.truncated (which completions hit the length limit)"
            )
        mask = mask * (~batch.truncated.bool()).to(dtype).unsqueeze(-1)
    if dynamic_sampling:
        informative = ~zero_signal_groups(batch.rewards.to(dtype), batch.group_ids)
        mask = mask * informative.to(dtype).unsqueeze(-1)

    token_loss, ratio = clipped_token_loss(
        logps,
        old_logps,
        mask,
        advantages,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        sequence_level=sequence_level,
    )
    metrics: dict[str, torch.Tensor] = {}
    if beta_kl != 0.0:
        if batch.ref_logps is None:
            raise DmpoError(f"beta_kl={beta_kl} needs batch.ref_logps (reference-model log-probs)")
        ref_minus_lp = torch.where(mask.bool(), batch.ref_logps.to(dtype) - logps, 0.0)
        kl = torch.exp(ref_minus_lp) - ref_minus_lp - 1
        if kl_bias_correction:
            kl = kl * ratio
        token_loss = token_loss + beta_kl * kl
        metrics["kl"] = token_mean(kl.detach(), mask)

    loss = aggregate_token_loss(
        token_loss,
        mask,
        aggregation,
        max_completion_length=max_completion_length,
        num_items_in_batch=batch.num_items_in_batch,
    )

    with torch.no_grad():
        # Clipped low needs A < 0 and clipped high A > 0: disjoint, so region = low + high.
        low = clip_fraction(ratio < 1 - epsilon_low, mask, advantages < 0)
        high = clip_fraction(ratio > 1 + epsilon_high, mask, advantages > 0)
        metrics["clip_ratio/low_mean"] = low
        metrics["clip_ratio/high_mean"] = high
        metrics["clip_ratio/region_mean"] = low + high
        metrics["advantage_abs_mean"] = advantages.abs().mean()
    return loss, metrics


@register(
    "grpo",
    "group",
    paper="arXiv 2402.03300 (DeepSeekMath)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='grpo'",
    summary="Clipped surrogate, mean over each completion's tokens, then over completions.",
)
def grpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> ObjectiveOutput:
    """GRPO: L = mean_i [ (1/|y_i|) Σ_t ℓ_{i,t} ]; an empty completion contributes 0."""
    return to_output(
        *policy_loss(
            batch,
            aggregation="grpo",
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            beta_kl=beta_kl,
            kl_bias_correction=kl_bias_correction,
            scale_rewards=scale_rewards,
            adv_eps=adv_eps,
        )
    )


@register(
    "bnpo",
    "group",
    paper="— (TRL loss_type='bnpo')",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='bnpo'",
    summary="Clipped surrogate, summed over tokens / tokens in this (micro-)batch.",
)
def bnpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> ObjectiveOutput:
    """BNPO (TRL): L = Σ_{i,t} ℓ_{i,t} / Σ_i |y_i| over this batch."""
    return to_output(
        *policy_loss(
            batch,
            aggregation="bnpo",
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            beta_kl=beta_kl,
            kl_bias_correction=kl_bias_correction,
            scale_rewards=scale_rewards,
            adv_eps=adv_eps,
        )
    )


@register(
    "dapo",
    "group",
    paper="arXiv 2503.14476 (DAPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='dapo'",
    summary="Clip-higher (0.2/0.28), Σ ℓ_t / tokens of the whole optimisation batch.",
)
def dapo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    dynamic_sampling: bool = False,
    mask_truncated: bool = False,
) -> ObjectiveOutput:
    """DAPO: L = Σ_{i,t} ℓ_{i,t} / num_items_in_batch (tokens of this batch when not given).

    ``dynamic_sampling`` drops groups whose rewards are all equal: their tokens leave the sum
    and, when ``batch.num_items_in_batch`` is None, the token count. (Refilling the batch with
    new groups, as the paper does, is the sampler's job.) ``mask_truncated`` drops completions
    flagged in ``batch.truncated`` (overlong filtering). Both off by default, as in TRL.
    """
    return to_output(
        *policy_loss(
            batch,
            aggregation="dapo",
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            beta_kl=beta_kl,
            kl_bias_correction=kl_bias_correction,
            scale_rewards=scale_rewards,
            adv_eps=adv_eps,
            dynamic_sampling=dynamic_sampling,
            mask_truncated=mask_truncated,
        )
    )


@register(
    "dr_grpo",
    "group",
    paper="arXiv 2503.20783 (Dr. GRPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='dr_grpo'",
    summary="Unscaled advantages, Σ ℓ_t / (completions × max completion length).",
)
def dr_grpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "none",
    adv_eps: float = 1e-4,
    max_completion_length: int | None = None,
) -> ObjectiveOutput:
    """Dr. GRPO: L = Σ_{i,t} ℓ_{i,t} / (N · L_max), L_max = max_completion_length (None: batch T)."""
    return to_output(
        *policy_loss(
            batch,
            aggregation="dr_grpo",
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            beta_kl=beta_kl,
            kl_bias_correction=kl_bias_correction,
            scale_rewards=scale_rewards,
            adv_eps=adv_eps,
            max_completion_length=max_completion_length,
        )
    )


@register(
    "gspo",
    "group",
    paper="arXiv 2507.18071 (GSPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='grpo', importance_sampling_level='sequence'",
    summary="Sequence-level ratio exp(mean_t(lp_t − old_t)), clipped at 3e-4/4e-4.",
)
def gspo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> ObjectiveOutput:
    """GSPO: L = mean_i −min(s_i·A_i, clip(s_i, 1−ε_low, 1+ε_high)·A_i), s_i = exp(mean_t(lp_t − old_t)).

    An empty completion contributes 0; the k3 term, when used, is per token as in grpo.
    """
    return to_output(
        *policy_loss(
            batch,
            aggregation="grpo",
            sequence_level=True,
            epsilon_low=epsilon_low,
            epsilon_high=epsilon_high,
            beta_kl=beta_kl,
            kl_bias_correction=kl_bias_correction,
            scale_rewards=scale_rewards,
            adv_eps=adv_eps,
        )
    )


BASES = {"grpo": grpo, "bnpo": bnpo, "dapo": dapo, "dr_grpo": dr_grpo, "gspo": gspo}
