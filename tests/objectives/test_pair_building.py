"""Pair builders: which pairs a scored group yields, in which order, and the PairBatch they make."""

from __future__ import annotations

import pytest
import torch

from dmpo.errors import DmpoError
from dmpo.objectives import (
    PairBatch,
    best_vs_worst,
    get,
    pair_batch_from_group,
    pairs_above_margin,
)

# Group 7: rewards 0.2, 1.0, 1.0 (tied best), 0.2 (tied worst)  → best 1, worst 0, gap 0.8
# Group 3: a single completion                                 → skipped
# Group 5: all rewards equal                                   → skipped
# Group 9: rewards 0.0, 0.3                                    → best 9, worst 8, gap 0.3
# Group 2: 1.5, 0.0, nan                                       → best 10, worst 11, gap 1.5
REWARDS = torch.tensor([0.2, 1.0, 1.0, 0.2, 0.9, 0.5, 0.5, 0.5, 0.0, 0.3, 1.5, 0.0, float("nan")])
GROUP_IDS = torch.tensor([7, 7, 7, 7, 3, 5, 5, 5, 9, 9, 2, 2, 2])


def test_best_vs_worst_picks_extremes_with_lowest_index_ties_and_orders_by_gap():
    chosen, rejected, gap = best_vs_worst(REWARDS, GROUP_IDS)
    assert chosen.tolist() == [10, 1, 9]
    assert rejected.tolist() == [11, 0, 8]
    torch.testing.assert_close(gap, torch.tensor([1.5, 0.8, 0.3]))
    assert chosen.dtype == rejected.dtype == torch.long


def test_best_vs_worst_skips_everything_when_no_group_has_a_pair():
    chosen, rejected, gap = best_vs_worst(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([0, 0, 1]))
    assert chosen.numel() == rejected.numel() == gap.numel() == 0


def test_best_vs_worst_accepts_integer_rewards():
    chosen, rejected, gap = best_vs_worst(torch.tensor([0, 1, 1]), torch.tensor([4, 4, 4]))
    assert (chosen.tolist(), rejected.tolist(), gap.tolist()) == ([1], [0], [1.0])


def test_pairs_above_margin_lists_all_strictly_ordered_pairs_easy_to_hard():
    chosen, rejected, gap = pairs_above_margin(REWARDS, GROUP_IDS, margin=0.0)
    pairs = list(zip(chosen.tolist(), rejected.tolist()))
    # gaps: (10,11) 1.5; (1,0) (1,3) (2,0) (2,3) 0.8; (9,8) 0.3 — ties by chosen, then rejected.
    assert pairs == [(10, 11), (1, 0), (1, 3), (2, 0), (2, 3), (9, 8)]
    torch.testing.assert_close(gap, torch.tensor([1.5, 0.8, 0.8, 0.8, 0.8, 0.3]))


def test_pairs_above_margin_drops_small_gaps():
    chosen, rejected, gap = pairs_above_margin(REWARDS, GROUP_IDS, margin=0.5)
    assert list(zip(chosen.tolist(), rejected.tolist())) == [
        (10, 11),
        (1, 0),
        (1, 3),
        (2, 0),
        (2, 3),
    ]
    assert bool((gap > 0.5).all())


def test_pairs_above_margin_is_invariant_to_row_order():
    perm = torch.tensor([5, 0, 12, 3, 8, 1, 11, 6, 9, 2, 4, 10, 7])
    chosen, rejected, gap = pairs_above_margin(REWARDS[perm], GROUP_IDS[perm])
    original = {(int(perm[c]), int(perm[r])) for c, r in zip(chosen, rejected)}
    expected_chosen, expected_rejected, expected_gap = pairs_above_margin(REWARDS, GROUP_IDS)
    assert original == set(zip(expected_chosen.tolist(), expected_rejected.tolist()))
    torch.testing.assert_close(gap, expected_gap)


def test_builders_reject_bad_input():
    with pytest.raises(DmpoError, match="margin"):
        pairs_above_margin(REWARDS, GROUP_IDS, margin=-0.1)
    with pytest.raises(DmpoError, match="shape"):
        best_vs_worst(REWARDS, GROUP_IDS[:-1])


def test_pair_batch_from_group_indexes_rows_and_keeps_gradient():
    logps = torch.arange(12.0).reshape(4, 3).neg().requires_grad_()
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=torch.float32)
    ref = logps.detach() - 1
    rewards = torch.tensor([0.0, 2.0, 1.0, 0.5])
    chosen, rejected, _ = best_vs_worst(rewards, torch.zeros(4, dtype=torch.long))
    batch = pair_batch_from_group(logps, mask, chosen, rejected, ref_logps=ref, rewards=rewards)
    assert isinstance(batch, PairBatch)
    torch.testing.assert_close(batch.chosen_logps, logps[[1]])
    torch.testing.assert_close(batch.rejected_mask, mask[[0]])
    torch.testing.assert_close(batch.ref_rejected_logps, ref[[0]])
    torch.testing.assert_close(batch.reward_margin, torch.tensor([2.0]))
    get("dpo")(batch).loss.backward()
    assert logps.grad[1].abs().sum() > 0 and logps.grad[2].abs().sum() == 0


def test_pair_batch_from_group_without_pairs_trains_to_zero():
    logps = torch.zeros(2, 3, requires_grad=True)
    chosen, rejected, _ = best_vs_worst(torch.ones(2), torch.tensor([0, 1]))
    batch = pair_batch_from_group(
        logps, torch.ones(2, 3), chosen, rejected, ref_logps=logps.detach()
    )
    out = get("dpo")(batch)
    out.loss.backward()
    assert out.loss.item() == 0.0 and logps.grad.abs().sum() == 0


def test_pair_batch_from_group_rejects_out_of_range_indices():
    logps = torch.zeros(2, 3)
    with pytest.raises(DmpoError, match="chosen_idx"):
        pair_batch_from_group(logps, torch.ones(2, 3), torch.tensor([2]), torch.tensor([0]))
    with pytest.raises(DmpoError, match="shape"):
        pair_batch_from_group(logps, torch.ones(2, 3), torch.tensor([1, 0]), torch.tensor([0]))
