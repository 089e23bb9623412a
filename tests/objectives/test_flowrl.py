"""FlowRL: hand values, a numpy reference, gradients to log-probs and log Z, errors, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.flowrl import flowrl

F64 = torch.float64

# Two groups of three, one of two; completion 2 has one token, completion 7 none.
LOGPS = np.array(
    [
        [-0.5, -1.2, -0.3, -0.8],
        [-2.0, -0.1, -0.4, 0.0],
        [-0.7, 0.0, 0.0, 0.0],
        [-1.5, -0.4, -0.9, -0.2],
        [-0.2, -0.6, 0.0, 0.0],
        [-1.1, -0.8, -0.3, 0.0],
        [-0.9, -0.2, -0.6, -0.1],
        [0.0, 0.0, 0.0, 0.0],
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
        [0, 0, 0, 0],
    ],
    dtype=float,
)
# Sequence log-ratios between −0.43 and +0.5: some weights clipped at 0.8 or 1.2, some not.
OLD_SHIFT = np.array(
    [
        [0.05, -0.02, 0.03, -0.1],
        [0.01, 0.1, 0.05, 0.0],
        [-0.3, 0.0, 0.0, 0.0],
        [0.02, -0.05, -0.01, 0.1],
        [0.2, 0.3, 0.0, 0.0],
        [0.0, 0.03, 0.02, 0.0],
        [-0.01, 0.05, -0.1, -0.15],
        [0.0, 0.0, 0.0, 0.0],
    ]
)
OLD = LOGPS + OLD_SHIFT
REF = LOGPS - 0.2 * OLD_SHIFT[::-1] - 0.05
REWARDS = np.array([1.0, 0.0, 0.5, 0.2, 0.9, 0.7, 0.1, 0.4])
GROUP_IDS = np.array([4, 4, 4, 1, 1, 1, 9, 9])
LOG_Z = np.array([0.3, 0.3, 0.3, -0.2, -0.2, -0.2, 1.1, 1.1])


def make_batch(
    logps: np.ndarray | torch.Tensor = LOGPS,
    log_z: np.ndarray | torch.Tensor | None = LOG_Z,
    *,
    mask: np.ndarray = MASK,
    rewards: np.ndarray = REWARDS,
    group_ids: np.ndarray = GROUP_IDS,
    old: np.ndarray | None = OLD,
    ref: np.ndarray | None = REF,
    dtype: torch.dtype = F64,
    **fields,
) -> GroupBatch:
    if not isinstance(logps, torch.Tensor):
        logps = torch.tensor(logps, dtype=dtype, requires_grad=True)
    if log_z is not None and not isinstance(log_z, torch.Tensor):
        log_z = torch.tensor(log_z, dtype=dtype, requires_grad=True)
    return GroupBatch(
        logps=logps,
        mask=torch.as_tensor(mask, dtype=dtype),
        rewards=torch.as_tensor(rewards, dtype=dtype),
        group_ids=torch.as_tensor(group_ids),
        old_logps=None if old is None else torch.as_tensor(old, dtype=dtype),
        ref_logps=None if ref is None else torch.as_tensor(ref, dtype=dtype),
        log_z=log_z,
        **fields,
    )


def flowrl_ref(logps, mask, rewards, group_ids, old, ref, log_z, *, beta=15.0, eps=(0.2, 0.2)):
    """The FlowRL loss from the paper's formula, one completion at a time."""
    r_hat = np.zeros_like(rewards)
    for g in np.unique(group_ids):
        idx = np.flatnonzero(group_ids == g)
        r = rewards[idx]
        r_hat[idx] = (r - r.mean()) / (r.std(ddof=1) + 1e-4)
    total = 0.0
    for i in range(len(rewards)):
        real = np.flatnonzero(mask[i])
        if len(real) == 0:
            continue
        delta = log_z[i] + logps[i, real].mean() - beta * r_hat[i]
        if ref is not None:
            delta -= ref[i, real].mean()
        w = math.exp((logps[i, real] - old[i, real]).sum()) if old is not None else 1.0
        total += min(max(w, 1 - eps[0]), 1 + eps[1]) * delta**2
    return total / len(rewards)


@pytest.mark.parametrize(
    ("params", "ref_kwargs", "old", "ref"),
    [
        ({}, {}, OLD, REF),
        ({"beta": 2.0, "epsilon_high": 0.28}, {"beta": 2.0, "eps": (0.2, 0.28)}, OLD, REF),
        ({}, {}, None, REF),
        ({"use_ref": False}, {}, OLD, None),
    ],
)
def test_value_matches_numpy_reference(params, ref_kwargs, old, ref):
    want = flowrl_ref(LOGPS, MASK, REWARDS, GROUP_IDS, old, ref, LOG_Z, **ref_kwargs)
    out = flowrl(make_batch(old=old, ref=ref), **params)
    assert out.loss.dtype == F64
    assert out.loss.item() == pytest.approx(want, rel=1e-12)


def test_weights_in_the_fixture_are_clipped_on_both_sides():
    log_w = (OLD_SHIFT * MASK).sum(1) * -1
    w = np.exp(log_w[MASK.sum(1) > 0])
    assert (w < 0.8).any() and (w > 1.2).any() and ((w > 0.8) & (w < 1.2)).any()
    out = flowrl(make_batch())
    clipped = ((w < 0.8) | (w > 1.2)).mean()
    assert out.metrics["importance_weight_clip_fraction"] == pytest.approx(clipped)


# ---------------------------------------------------------------------------------------------
# Hand-computed, unscaled rewards (scale_rewards="none"): group (1, 0) → r̂ = ±0.5, β = 15.
#   completion 0: lp (−0.5, −1.5) avg −1.0, ref (−0.7, −1.1) avg −0.9, log Z 0.3
#       δ0 = 0.3 − 1.0 − 7.5 + 0.9 = −7.3
#   completion 1: lp (−2.0) avg −2.0, ref (−1.6), log Z 0.3
#       δ1 = 0.3 − 2.0 + 7.5 + 1.6 = 7.4
#   On-policy w = 1: L = (7.3² + 7.4²)/2 = 54.025.

HAND_LOGPS = np.array([[-0.5, -1.5], [-2.0, 0.0]])
HAND_REF = np.array([[-0.7, -1.1], [-1.6, float("-inf")]])
HAND_MASK = np.array([[1.0, 1.0], [1.0, 0.0]])


def hand_batch(old=None, ref=HAND_REF, **fields) -> GroupBatch:
    return make_batch(
        HAND_LOGPS,
        np.array([0.3, 0.3]),
        mask=HAND_MASK,
        rewards=np.array([1.0, 0.0]),
        group_ids=np.array([0, 0]),
        old=old,
        ref=ref,
        **fields,
    )


def test_hand_value_and_gradients():
    batch = hand_batch()
    out = flowrl(batch, scale_rewards="none")
    assert out.loss.item() == pytest.approx(54.025, rel=1e-12)
    out.loss.backward()
    # ∂L/∂δ_i = 2·w·δ_i/N; ∂δ_i/∂lp_t = 1/|y_i|; ∂δ_i/∂log Z_i = 1.
    torch.testing.assert_close(
        batch.logps.grad, torch.tensor([[-3.65, -3.65], [7.4, 0.0]], dtype=F64), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        batch.log_z.grad, torch.tensor([-7.3, 7.4], dtype=F64), rtol=1e-12, atol=0
    )
    assert out.metrics["residual_abs_mean"] == pytest.approx(7.35, rel=1e-12)
    assert out.metrics["log_z_mean"] == pytest.approx(0.3)
    assert out.metrics["importance_weight_mean"] == 1.0


def test_hand_importance_weights_and_no_reference():
    # Sequence ratios 1.5 (clipped to 1.2) and 0.9 (kept); the padding's old value is ignored.
    old = HAND_LOGPS - np.array([[math.log(1.5) - 0.25, 0.25], [math.log(0.9), 1e4]])
    out = flowrl(hand_batch(old=old), scale_rewards="none")
    assert out.loss.item() == pytest.approx((1.2 * 7.3**2 + 0.9 * 7.4**2) / 2, rel=1e-12)
    assert out.metrics["importance_weight_mean"] == pytest.approx(1.05, rel=1e-12)
    assert out.metrics["importance_weight_clip_fraction"] == 0.5
    # Without the reference term: δ = (0.3 − 1.0 − 7.5, 0.3 − 2.0 + 7.5) = (−8.2, 5.8).
    no_ref = flowrl(hand_batch(ref=None), scale_rewards="none", use_ref=False)
    assert no_ref.loss.item() == pytest.approx((8.2**2 + 5.8**2) / 2, rel=1e-12)
    # With the group std: r̂ = ±0.5/(√0.5 + 1e-4).
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    scaled = flowrl(hand_batch())
    assert scaled.loss.item() == pytest.approx(
        ((0.3 - 1.0 - 15 * a + 0.9) ** 2 + (0.3 - 2.0 + 15 * a + 1.6) ** 2) / 2, rel=1e-12
    )


def test_given_advantages_are_the_normalised_reward():
    out = flowrl(hand_batch(advantages=torch.tensor([0.5, -0.5], dtype=F64)), beta=15.0)
    assert out.loss.item() == pytest.approx(54.025, rel=1e-12)


@pytest.mark.parametrize("old", [None, "saturated"])
def test_gradcheck_logps_and_log_z(old):
    # The weight is detached, so finite differences agree only where it cannot move: on-policy
    # (old follows logps, w = 1) or with every sequence ratio far outside the clip range.
    old_values = (
        None if old is None else LOGPS + np.where(np.arange(8) % 2 == 0, 2.0, -2.0)[:, None]
    )

    def loss(logps: torch.Tensor, log_z: torch.Tensor) -> torch.Tensor:
        return flowrl(make_batch(logps, log_z, old=old_values), beta=3.0).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    log_z = torch.tensor(LOG_Z, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps, log_z), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Degenerate inputs


def test_empty_completion_contributes_nothing_but_counts():
    batch = make_batch()
    out = flowrl(batch)
    out.loss.backward()
    assert batch.log_z.grad[7] == 0  # completion 7 has no tokens
    assert torch.all(batch.logps.grad[7] == 0)
    keep = MASK.sum(1) > 0
    want = flowrl_ref(LOGPS, MASK, REWARDS, GROUP_IDS, OLD, REF, LOG_Z)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)  # divides by N = 8, not 7
    assert keep.sum() == 7


def test_group_of_one_and_equal_rewards_have_zero_reward_term():
    # r̂ = 0: the residual is log Z + avg lp − avg ref.
    batch = make_batch(
        LOGPS[:3],
        LOG_Z[:3],
        mask=MASK[:3],
        rewards=np.array([0.4, 1.0, 1.0]),
        group_ids=np.array([0, 1, 1]),
        old=None,
        ref=REF[:3],
    )
    out = flowrl(batch)
    delta = [LOG_Z[i] + LOGPS[i][MASK[i] > 0].mean() - REF[i][MASK[i] > 0].mean() for i in range(3)]
    assert out.loss.item() == pytest.approx(np.mean(np.square(delta)), rel=1e-12)


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, float("-inf"))],
)
def test_padding_and_low_precision(dtype, fill):
    logps = torch.tensor(LOGPS)
    logps[MASK == 0] = fill
    ref = torch.tensor(REF)
    ref[MASK == 0] = fill
    old = torch.tensor(OLD)
    old[MASK == 0] = -fill if math.isfinite(fill) else 0.0
    batch = GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=torch.tensor(MASK).to(dtype),
        rewards=torch.tensor(REWARDS).to(dtype),
        group_ids=torch.tensor(GROUP_IDS),
        old_logps=old.to(dtype),
        ref_logps=ref.to(dtype),
        log_z=torch.tensor(LOG_Z).to(dtype).requires_grad_(),
    )
    out = flowrl(batch)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert batch.logps.grad.dtype == dtype and batch.log_z.grad.dtype == dtype
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.logps.grad).all() and torch.isfinite(batch.log_z.grad).all()
    assert torch.all(batch.logps.grad[torch.tensor(MASK) == 0] == 0)
    assert all(math.isfinite(v) for v in out.metrics.values())
    if dtype != F64:
        want = flowrl_ref(LOGPS, MASK, REWARDS, GROUP_IDS, OLD, REF, LOG_Z)
        assert out.loss.item() == pytest.approx(want, rel=3e-2)


# ---------------------------------------------------------------------------------------------
# Registry and errors


def test_registered_with_defaults():
    spec = objectives.get("flowrl")
    assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary
    params = spec.params
    assert (params["beta"], params["epsilon_low"], params["epsilon_high"]) == (15.0, 0.2, 0.2)
    assert params["use_ref"] is True and params["scale_rewards"] == "group"
    assert spec(make_batch()).loss.item() == flowrl(make_batch()).loss.item()


def test_missing_log_z():
    with pytest.raises(DmpoError, match=r"batch\.log_z"):
        flowrl(make_batch(log_z=None))


def test_missing_reference_names_use_ref():
    with pytest.raises(DmpoError, match=r"ref_logps.*use_ref=False"):
        flowrl(make_batch(ref=None))
    assert math.isfinite(flowrl(make_batch(ref=None), use_ref=False).loss.item())


def test_log_z_shape_is_checked():
    with pytest.raises(DmpoError, match="log_z"):
        make_batch(log_z=np.zeros(3))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon_low": 1.0}, "epsilon_low"),
        ({"epsilon_high": -0.1}, "epsilon_high"),
        ({"beta": -1.0}, "beta"),
        ({"beta": math.inf}, "beta"),
        ({"scale_rewards": "std"}, "scale_rewards"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(DmpoError, match=message):
        flowrl(make_batch(), **params)
