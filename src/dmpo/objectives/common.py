"""Shared pieces of the objectives: masked token reductions and per-group operations.

Groups are given by arbitrary integer ``group_ids``; :func:`group_index` maps them to
``0..num_groups-1`` so that per-group reductions are one ``index_add`` (no Python loop, no
fixed group size).
"""

from __future__ import annotations

import torch


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_t values·mask per row: [N, T] → [N]."""
    return (values * mask).sum(dim=-1)


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
    from dmpo.errors import DmpoError

    raise DmpoError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")
