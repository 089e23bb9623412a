"""Preference pairs from a scored group, so every pair objective can train on verifiable tasks.

A group is the completions sampled for one prompt (same ``group_ids``) with scalar ``rewards``.
Pairs come back ordered easy → hard: largest reward gap first, as in Curry-DPO's curriculum
(arXiv 2403.07230); ties in the gap are broken by chosen index, then rejected index, so the
order is deterministic. Groups without a usable pair (one completion, all rewards equal) are
skipped; non-finite rewards (a reward function that returned None) never enter a pair.
"""

from __future__ import annotations

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import PairBatch
from dmpo.objectives.common import group_index, group_max, group_min


def _scored_group(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Checked, detached, floating-point rewards."""
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise DmpoError(
            f"rewards and group_ids must both have shape [N], got {tuple(rewards.shape)} "
            f"and {tuple(group_ids.shape)}"
        )
    rewards = rewards.detach()
    return rewards if rewards.is_floating_point() else rewards.double()


def _easy_to_hard(
    chosen_idx: torch.Tensor, rejected_idx: torch.Tensor, gap: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Lexicographic order (−gap, chosen, rejected) by stable sorts, least significant key first.
    order = torch.argsort(rejected_idx, stable=True)
    order = order[torch.argsort(chosen_idx[order], stable=True)]
    order = order[torch.argsort(gap[order], descending=True, stable=True)]
    return chosen_idx[order], rejected_idx[order], gap[order]


def best_vs_worst(
    rewards: torch.Tensor, group_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pair per group: highest reward (chosen) against lowest (rejected).

    Ties pick the lowest index. Returns ``(chosen_idx, rejected_idx, gap)``, each ``[P]``, with
    ``gap = r[chosen] − r[rejected] > 0``, ordered largest gap first.
    """
    rewards = _scored_group(rewards, group_ids)
    valid = torch.isfinite(rewards)
    index, num_groups = group_index(group_ids)
    positions = torch.arange(rewards.numel(), device=rewards.device)

    def first_index_of(extreme: torch.Tensor) -> torch.Tensor:
        hit = valid & (rewards == extreme[index])
        first = torch.full((num_groups,), rewards.numel(), device=rewards.device)
        return first.scatter_reduce(0, index[hit], positions[hit], reduce="amin")

    group_high = group_max(torch.where(valid, rewards, float("-inf")), index, num_groups)
    group_low = group_min(torch.where(valid, rewards, float("inf")), index, num_groups)
    usable = torch.isfinite(group_high) & torch.isfinite(group_low) & (group_high > group_low)
    chosen_idx = first_index_of(group_high)[usable]
    rejected_idx = first_index_of(group_low)[usable]
    return _easy_to_hard(chosen_idx, rejected_idx, rewards[chosen_idx] - rewards[rejected_idx])


def pairs_above_margin(
    rewards: torch.Tensor, group_ids: torch.Tensor, margin: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ordered pair (i, j) of the same group with ``r_i − r_j > margin``.

    ``margin ≥ 0``; with 0, all strictly ordered pairs. Builds an ``[N, N]`` comparison, fine for
    generation batches. Returns ``(chosen_idx, rejected_idx, gap)``, ordered largest gap first.
    """
    rewards = _scored_group(rewards, group_ids)
    if margin < 0:
        raise DmpoError(
            f"margin must be >= 0 (a negative margin pairs worse over better), got {margin}"
        )
    gap = rewards[:, None] - rewards[None, :]
    same_group = group_ids[:, None] == group_ids[None, :]
    finite = torch.isfinite(rewards)
    keep = same_group & finite[:, None] & finite[None, :] & (gap > margin)
    chosen_idx, rejected_idx = keep.nonzero(as_tuple=True)
    return _easy_to_hard(chosen_idx, rejected_idx, gap[chosen_idx, rejected_idx])


def pair_batch_from_group(
    logps: torch.Tensor,
    mask: torch.Tensor,
    chosen_idx: torch.Tensor,
    rejected_idx: torch.Tensor,
    *,
    ref_logps: torch.Tensor | None = None,
    rewards: torch.Tensor | None = None,
) -> PairBatch:
    """A :class:`PairBatch` from a group batch's per-token tensors and pair indices.

    ``logps``/``mask``/``ref_logps`` are ``[N, T]`` (gradient flows through the indexing);
    ``rewards`` ``[N]``, if given, become the pairs' ``reward_margin = r_w − r_l``.
    """
    if chosen_idx.shape != rejected_idx.shape or chosen_idx.dim() != 1:
        raise DmpoError(
            f"chosen_idx and rejected_idx must both have shape [P], got {tuple(chosen_idx.shape)} "
            f"and {tuple(rejected_idx.shape)}"
        )
    n = logps.shape[0]
    for name, idx in (("chosen_idx", chosen_idx), ("rejected_idx", rejected_idx)):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise DmpoError(f"{name} must index the {n} completions, got values outside [0, {n})")

    def take(values: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
        return None if values is None else values[idx]

    return PairBatch(
        chosen_logps=logps[chosen_idx],
        chosen_mask=mask[chosen_idx],
        rejected_logps=logps[rejected_idx],
        rejected_mask=mask[rejected_idx],
        ref_chosen_logps=take(ref_logps, chosen_idx),
        ref_rejected_logps=take(ref_logps, rejected_idx),
        reward_margin=None if rewards is None else rewards[chosen_idx] - rewards[rejected_idx],
    )
