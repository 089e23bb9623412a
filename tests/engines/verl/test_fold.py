"""The fold of the DM term into advantages, by hand (no verl needed: runs in both environments).

One group of two completions: φ = (−1, −2) (lengths 1 and 2), rewards (0, 1), α = 1, λ = 2, mse:
q = (σ(1), σ(−1)), p = (σ(−1), σ(1)), and c_k = (2/G)·q_k·[(q_k − p_k) − Σ_j q_j(q_j − p_j)].
"""

from __future__ import annotations

import math

import pytest
import torch

from dmpo.engines.verl.fold import dm_advantage_shift, group_ids_from_uids, token_weights
from dmpo.errors import DmpoError

LOGPS = torch.tensor([[-1.0, 0.0], [-2.0, -2.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 0], [1, 1]])
REWARDS = torch.tensor([0.0, 1.0], dtype=torch.float64)
GIDS = torch.tensor([0, 0])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def hand_coefficients() -> list[float]:
    q, p = [sigmoid(1), sigmoid(-1)], [sigmoid(-1), sigmoid(1)]
    inner = sum(qj * (qj - pj) for qj, pj in zip(q, p))
    return [(2 / 2) * qk * ((qk - pk) - inner) for qk, pk in zip(q, p)]


@pytest.mark.parametrize(("mode", "scale"), [
    ("seq-mean-token-mean", lambda c, n: -2 * c * 2),          # w = 1/(|y|·N): δ = −λ·c·N
    ("token-mean", lambda c, n: -2 * c / n * 3),               # w = 1/3 tokens: δ = −λ·c/|y|·3
    ("seq-mean-token-sum", lambda c, n: -2 * c / n * 2),       # w = 1/N
    ("token-sum", lambda c, n: -2 * c / n),                    # w = 1
])
def test_the_shift_by_hand(mode, scale):
    shift, dm = dm_advantage_shift(LOGPS, MASK, REWARDS, GIDS, lam=2.0, loss_agg_mode=mode, alpha=1.0)
    c = hand_coefficients()
    torch.testing.assert_close(dm.coefficients, torch.tensor(c, dtype=torch.float64))
    expected = [scale(c[0], 1), scale(c[1], 2)]
    torch.testing.assert_close(shift, torch.tensor(expected, dtype=torch.float64))
    assert abs(c[0]) > 0.1


def test_weights_and_ids_and_bad_input():
    torch.testing.assert_close(token_weights(MASK, "seq-mean-token-mean"),
                               torch.tensor([0.5, 0.25]))
    assert group_ids_from_uids(["b", "a", "b"]).tolist() == [1, 0, 1]
    with pytest.raises(DmpoError, match="loss_agg_mode"):
        dm_advantage_shift(LOGPS, MASK, REWARDS, GIDS, lam=2.0,
                           loss_agg_mode="seq-mean-token-sum-norm")
    with pytest.raises(DmpoError, match="no parameter"):
        dm_advantage_shift(LOGPS, MASK, REWARDS, GIDS, lam=2.0, loss_agg_mode="token-mean", alfa=1)
    bad = LOGPS.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(DmpoError, match="NaN"):
        dm_advantage_shift(bad, MASK, REWARDS, GIDS, lam=2.0, loss_agg_mode="token-mean")
    # padding may hold anything: it never reaches φ
    padded = LOGPS.clone()
    padded[0, 1] = float("-inf")
    same, _ = dm_advantage_shift(padded, MASK, REWARDS, GIDS, lam=2.0, loss_agg_mode="token-mean")
    ref, _ = dm_advantage_shift(LOGPS, MASK, REWARDS, GIDS, lam=2.0, loss_agg_mode="token-mean")
    torch.testing.assert_close(same, ref)
