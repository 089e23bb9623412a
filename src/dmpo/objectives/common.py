"""Shared pieces of the objectives: masked token reductions and per-group operations.

Groups are given by arbitrary integer ``group_ids``; :func:`group_index` maps them to
``0..num_groups-1`` so that per-group reductions are one ``index_add`` (no Python loop, no
fixed group size).
"""

from __future__ import annotations

from typing import Any

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.registry import ObjectiveOutput

# Groups whose target values span no more than this carry no learning signal.
ZERO_SIGNAL_TOL = 1e-5


# ---- checks and outputs ------------------------------------------------------------------
def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """A clear error when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise DmpoError(f"{name} must be one of {list(choices)}, got {value!r}")


def require(batch: Any, objective: str, *names: str) -> None:
    """A clear error naming the batch fields ``objective`` needs and did not get."""
    missing = [name for name in names if getattr(batch, name) is None]
    if missing:
        kind = type(batch).__name__
        raise DmpoError(
            f"objective {objective!r} needs {kind}.{f', {kind}.'.join(missing)}; "
            "pass it when building the batch"
        )


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs, else the input's own floating dtype."""
    return torch.promote_types(dtype, torch.float32)


def upcast(values: torch.Tensor) -> torch.Tensor:
    """``values`` in :func:`compute_dtype` (half precision → float32)."""
    return values.to(compute_dtype(values.dtype))


def to_output(loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> ObjectiveOutput:
    """Wrap a loss and metric tensors; one device sync for all metrics."""
    values = (
        torch.stack([m.detach().double() for m in metrics.values()]).tolist() if metrics else []
    )
    return ObjectiveOutput(loss=loss, metrics=dict(zip(metrics, values)))


# ---- token reductions --------------------------------------------------------------------
def mean_or_zero(values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values``; an empty tensor gives a zero that still has a graph."""
    return values.mean() if values.numel() else values.sum()


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over every real token of the batch / number of real tokens (0 without tokens)."""
    return masked_sum(values, mask).sum() / mask.sum().clamp(min=1)


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_t values·mask per row: [N, T] → [N]. Positions outside the mask never contribute,
    whatever their value (padding filled with −inf or NaN gives no NaN)."""
    out = (values * mask).sum(dim=-1)
    if bool(torch.isfinite(out).all()):
        return out  # finite: no NaN/±inf sat under the mask (inf·0 would be NaN)
    return (torch.where(mask != 0, values, 0.0) * mask).sum(dim=-1)


def num_tokens(mask: torch.Tensor) -> torch.Tensor:
    """Number of real tokens per row, as the mask's dtype: [N, T] → [N]."""
    return mask.sum(dim=-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's real tokens; 0 for a row without tokens: [N, T] → [N]."""
    return masked_sum(values, mask) / num_tokens(mask).clamp(min=1)


def sequence_logps(logps: torch.Tensor, mask: torch.Tensor, *, average: bool = False) -> torch.Tensor:
    """lp(y) = Σ_t lp_t, or avg(y) = lp(y)/|y| with ``average=True``: [N, T] → [N]."""
    return masked_mean(logps, mask) if average else masked_sum(logps, mask)


def group_index(group_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map arbitrary group ids to (index in 0..K-1 per completion, K)."""
    uniq, inverse = torch.unique(group_ids, return_inverse=True)
    return inverse, int(uniq.numel())


def group_sum(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Σ over each group: [N] → [K]."""
    out = torch.zeros(num_groups, dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


def group_size(index: torch.Tensor, num_groups: int, dtype: torch.dtype) -> torch.Tensor:
    """Completions per group: [K]."""
    return group_sum(torch.ones_like(index, dtype=dtype), index, num_groups)


def group_mean(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean over each group: [N] → [K]."""
    return group_sum(values, index, num_groups) / group_size(index, num_groups, values.dtype)


def group_std(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Unbiased standard deviation per group (as ``torch.std``); 0 for a group of one: [K]."""
    size = group_size(index, num_groups, values.dtype)
    centred = values - group_mean(values, index, num_groups)[index]
    var = group_sum(centred * centred, index, num_groups) / (size - 1).clamp(min=1)
    return var.clamp(min=0).sqrt()


def group_max(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    out = torch.full((num_groups,), float("-inf"), dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, index, values, reduce="amax", include_self=True)


def group_min(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    out = torch.full((num_groups,), float("inf"), dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, index, values, reduce="amin", include_self=True)


def group_softmax(logits: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """softmax_i(logits_i) within each group: [N] → [N], differentiable."""
    shift = group_max(logits.detach(), index, num_groups)[index]
    exp = torch.exp(logits - shift)
    return exp / group_sum(exp, index, num_groups)[index]


def group_log_softmax(logits: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """log softmax_i(logits_i) within each group: [N] → [N], differentiable and stable."""
    shift = group_max(logits.detach(), index, num_groups)[index]
    shifted = logits - shift
    log_norm = torch.log(group_sum(torch.exp(shifted), index, num_groups))
    return shifted - log_norm[index]


def group_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    scale_rewards: str = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """A_i = (r_i − mean_g r) / (std_g r + eps), as TRL computes it.

    ``scale_rewards``: ``group`` (std of the group), ``batch`` (std of all rewards), ``none``
    (only subtract the group mean). A group of one or of equal rewards gets advantage 0.
    """
    index, k = group_index(group_ids)
    centred = rewards - group_mean(rewards, index, k)[index]
    if scale_rewards == "group":
        return centred / (group_std(rewards, index, k)[index] + eps)
    if scale_rewards == "batch":
        std = rewards.std() if rewards.numel() > 1 else rewards.new_zeros(())
        return centred / (std + eps)
    if scale_rewards == "none":
        return centred
    raise DmpoError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")


def zero_signal_groups(values: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """[N] bool: the completion's group has max − min of ``values`` ≤ 1e-5 (no learning signal)."""
    index, k = group_index(group_ids)
    spread = group_max(values, index, k) - group_min(values, index, k)
    return (spread <= ZERO_SIGNAL_TOL)[index]


# ---- the clipped surrogate ---------------------------------------------------------------
def clipped_surrogate(
    log_ratio: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ℓ, ρ): ℓ = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A), ρ = exp(log_ratio).

    ``advantages`` broadcast against ``log_ratio`` (per completion [N, 1] or per token [N, T]).
    """
    ratio = torch.exp(log_ratio)
    clipped = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    return -torch.minimum(ratio * advantages, clipped * advantages), ratio


def token_inputs(
    batch: GroupBatch,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(real-token bool mask, mask as float, logps, old_logps), padding set to 0.

    Padding is zeroed so that ``exp`` or ``0·inf`` on arbitrary pad values cannot make NaN.
    ``old_logps`` defaults to the detached ``logps`` (on-policy).
    """
    real = batch.mask.bool()
    logps = torch.where(real, upcast(batch.logps), 0.0)
    old = logps.detach() if batch.old_logps is None else upcast(batch.old_logps)
    old = torch.where(real, old, 0.0)
    return real, real.to(logps.dtype), logps, old
