"""GPG: hand values, a numpy reference, the gradient of bnpo on-policy, gradcheck, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.common import group_advantages
from dmpo.objectives.gpg import gpg
from dmpo.objectives.policy_gradient import bnpo

F64 = torch.float64

# Groups 5 (3 members, graded), 2 (2 members, equal rewards: no signal) and 8 (2 members).
LOGPS = np.array(
    [
        [-0.5, -1.2, -0.3, -0.8],
        [-2.0, -0.1, -0.4, 0.0],
        [-0.7, 0.0, 0.0, 0.0],
        [-1.5, -0.4, -0.9, -0.2],
        [-0.2, -0.6, 0.0, 0.0],
        [-1.1, -0.8, -0.3, 0.0],
        [-0.9, -0.2, -0.6, -0.1],
    ]
)
MASK = np.array(
    [
        [1, 1, 1, 1],
        [1, 1, 1, 0],
        [1, 0, 0, 0],
        [1, 1, 1, 1],
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [1, 1, 1, 1],
    ],
    dtype=float,
)
REWARDS = np.array([1.0, 0.0, 0.5, 0.3, 0.3, 0.9, 0.2])
GROUP_IDS = np.array([5, 5, 5, 2, 2, 8, 8])
OLD = LOGPS + 0.1  # ignored by GPG


def make_batch(
    logps: np.ndarray | torch.Tensor = LOGPS,
    *,
    mask: np.ndarray = MASK,
    rewards: np.ndarray = REWARDS,
    group_ids: np.ndarray = GROUP_IDS,
    old: np.ndarray | None = None,
    dtype: torch.dtype = F64,
    **fields,
) -> GroupBatch:
    if not isinstance(logps, torch.Tensor):
        logps = torch.tensor(logps, dtype=dtype, requires_grad=True)
    return GroupBatch(
        logps=logps,
        mask=torch.as_tensor(mask, dtype=dtype),
        rewards=torch.as_tensor(rewards, dtype=dtype),
        group_ids=torch.as_tensor(group_ids),
        old_logps=None if old is None else torch.as_tensor(old, dtype=dtype),
        **fields,
    )


def gpg_ref(logps, mask, rewards, group_ids, *, std=False, alpha_on=True, agg="token"):
    """GPG written from the paper's formulas with explicit loops."""
    adv = np.zeros_like(rewards)
    invalid = 0
    for g in np.unique(group_ids):
        idx = np.flatnonzero(group_ids == g)
        r = rewards[idx]
        if r.max() - r.min() <= 1e-5:
            invalid += len(idx)
            continue
        adv[idx] = (r - r.mean()) / ((r.std(ddof=1) + 1e-4) if std else 1.0)
    alpha = len(rewards) / max(len(rewards) - invalid, 1) if alpha_on else 1.0
    per_token = -alpha * adv[:, None] * logps * mask
    if agg == "token":
        return per_token.sum() / mask.sum(), alpha
    rows = [per_token[i].sum() / mask[i].sum() if mask[i].sum() else 0.0 for i in range(len(adv))]
    return float(np.mean(rows)), alpha


@pytest.mark.parametrize(
    ("params", "ref_kwargs"),
    [
        ({}, {}),
        ({"alpha_scaling": False}, {"alpha_on": False}),
        ({"scale_rewards": "group"}, {"std": True}),
        ({"aggregation": "grpo"}, {"agg": "row"}),
        ({"aggregation": "bnpo"}, {}),
    ],
)
def test_value_matches_numpy_reference(params, ref_kwargs):
    want, alpha = gpg_ref(LOGPS, MASK, REWARDS, GROUP_IDS, **ref_kwargs)
    out = gpg(make_batch(), **params)
    assert out.loss.dtype == F64
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert out.metrics["alpha"] == pytest.approx(alpha, rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Hand-computed: group 0 rewards (1, 0) → Â = ±0.5; group 1 rewards (0.5, 0.5) → Â = 0.
#   B = 4, M = 2 → α = 2. Tokens: (−0.5, −1.0), (−2.0), (−0.3), (−0.7, −0.2): 6 in all.
#   Σ −α·Â·lp = −2·0.5·(−1.5) − 2·(−0.5)·(−2.0) = 1.5 − 2.0 = −0.5.

HAND_LOGPS = np.array([[-0.5, -1.0], [-2.0, 0.0], [-0.3, 0.0], [-0.7, -0.2]])
HAND_MASK = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])


def hand_batch(**fields) -> GroupBatch:
    return make_batch(
        HAND_LOGPS,
        mask=HAND_MASK,
        rewards=np.array([1.0, 0.0, 0.5, 0.5]),
        group_ids=np.array([0, 0, 1, 1]),
        **fields,
    )


@pytest.mark.parametrize(
    ("params", "want"),
    [
        ({}, -0.5 / 6),
        ({"alpha_scaling": False}, -0.25 / 6),
        ({"aggregation": "grpo"}, (1.5 / 2 - 2.0) / 4),
        ({"aggregation": "dr_grpo"}, -0.5 / (4 * 2)),
        # Â = ±a, a = 0.5/(√0.5 + 1e-4): Σ = 3a − 4a = −a.
        ({"scale_rewards": "group"}, -(0.5 / (math.sqrt(0.5) + 1e-4)) / 6),
    ],
)
def test_hand_values(params, want):
    assert gpg(hand_batch(), **params).loss.item() == pytest.approx(want, rel=1e-12)


def test_hand_gradient_and_metrics():
    batch = hand_batch()
    out = gpg(batch)
    out.loss.backward()
    # ∂L/∂lp_t = −α·Â/6 on real tokens.
    want = torch.tensor([[-1 / 6, -1 / 6], [1 / 6, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(batch.logps.grad, want, rtol=1e-12, atol=1e-15)
    assert out.metrics == pytest.approx({"alpha": 2.0, "advantage_abs_mean": 0.25})


def test_num_items_in_batch_is_the_token_mean_denominator():
    out = gpg(hand_batch(num_items_in_batch=20.0))
    assert out.loss.item() == pytest.approx(-0.5 / 20, rel=1e-12)


def test_given_advantages_are_scaled_by_alpha():
    adv = torch.tensor([0.3, -1.0, 2.0, 0.7], dtype=F64)
    out = gpg(hand_batch(advantages=adv))
    # α still 2 (from the rewards): −2·Σ_i A_i·Σ_t lp / 6.
    want = -2 * (0.3 * -1.5 + -1.0 * -2.0 + 2.0 * -0.3 + 0.7 * -0.9) / 6
    assert out.loss.item() == pytest.approx(want, rel=1e-12)


def test_gradient_equals_bnpo_on_policy_with_alpha_advantages():
    """On policy, ∇(−Â·log π) = ∇(−Â·ρ) at ρ = 1: GPG's gradient is bnpo's with α·Â."""
    _, alpha = gpg_ref(LOGPS, MASK, REWARDS, GROUP_IDS)
    batch = make_batch()
    gpg(batch).loss.backward()
    adv = group_advantages(torch.tensor(REWARDS), torch.tensor(GROUP_IDS), scale_rewards="none")
    base = make_batch(advantages=alpha * adv)
    bnpo(base).loss.backward()
    torch.testing.assert_close(batch.logps.grad, base.logps.grad, rtol=1e-12, atol=1e-15)


def test_old_logps_are_ignored():
    assert gpg(make_batch(old=OLD)).loss.item() == gpg(make_batch()).loss.item()


@pytest.mark.parametrize("params", [{}, {"scale_rewards": "group", "aggregation": "grpo"}])
def test_gradcheck(params):
    def loss(logps: torch.Tensor) -> torch.Tensor:
        return gpg(make_batch(logps), **params).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Degenerate inputs


def test_group_of_one_and_equal_rewards_give_zero_loss_and_gradient():
    batch = make_batch(
        LOGPS[:3], mask=MASK[:3], rewards=np.array([0.4, 1.0, 1.0]), group_ids=np.array([0, 1, 1])
    )
    out = gpg(batch)
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert out.metrics["alpha"] == 3.0  # B / max(B − M, 1) with M = B
    assert torch.all(batch.logps.grad == 0)


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, float("-inf"))],
)
def test_empty_completion_and_padding(dtype, fill):
    logps = torch.full((4, 3), -0.4, dtype=F64)
    mask = torch.ones(4, 3, dtype=F64)
    mask[1] = 0  # empty completion
    mask[2, 1:] = 0
    logps[mask == 0] = fill
    batch = GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=mask.to(dtype),
        rewards=torch.tensor([1.0, 0.0, 0.2, 0.7]).to(dtype),
        group_ids=torch.tensor([0, 0, 0, 3]),
    )
    out = gpg(batch)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert batch.logps.grad.dtype == dtype
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.logps.grad).all()
    assert torch.all(batch.logps.grad[mask == 0] == 0)
    assert all(math.isfinite(v) for v in out.metrics.values())


def test_bf16_matches_float32():
    lp32 = torch.tensor(LOGPS, dtype=torch.float32)
    out32 = gpg(make_batch(lp32.clone().requires_grad_(), dtype=torch.float32))
    outbf = gpg(make_batch(lp32.to(torch.bfloat16).requires_grad_(), dtype=torch.bfloat16))
    assert outbf.loss.dtype == torch.float32
    assert outbf.loss.item() == pytest.approx(out32.loss.item(), rel=2e-2, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Registry and errors


def test_registered_with_defaults():
    spec = objectives.get("gpg")
    assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary
    assert spec.params == {
        "scale_rewards": "none",
        "adv_eps": 1e-4,
        "alpha_scaling": True,
        "aggregation": "dapo",
    }
    assert spec(make_batch()).loss.item() == gpg(make_batch()).loss.item()


@pytest.mark.parametrize(
    ("params", "message"),
    [({"aggregation": "mean"}, "aggregation"), ({"scale_rewards": "std"}, "scale_rewards")],
)
def test_bad_parameters(params, message):
    with pytest.raises(DmpoError, match=message):
        gpg(make_batch(), **params)
