"""Pass@k advantages against brute-force enumeration and the 0/1 closed form; the loss on top."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.passk import passk, passk_advantages
from dmpo.objectives.policy_gradient import bnpo, grpo

F64 = torch.float64


def brute_force(rewards: np.ndarray, group_ids: np.ndarray, k: int, eps: float = 0.0) -> np.ndarray:
    """Enumerate every k-subset of every group: the definition, nothing clever."""
    adv = np.zeros(len(rewards))
    for g in np.unique(group_ids):
        idx = np.flatnonzero(group_ids == g)
        subsets = list(itertools.combinations(idx, k))
        best = {s: max(rewards[j] for j in s) for s in subsets}
        mean = np.mean(list(best.values()))
        std = math.sqrt(np.mean([(v - mean) ** 2 for v in best.values()]))
        for i in idx:
            holding = np.mean([v for s, v in best.items() if i in s])
            adv[i] = 0.0 if std == 0 else (holding - mean) / (std + eps)
    return adv


def closed_form(n: int, c: int, k: int, eps: float = 1e-6) -> tuple[float, float]:
    """The paper's (A_pos, A_neg) for c correct of n, as the authors' passk_adv.py."""
    rho = 1 - math.comb(n - c, k) / math.comb(n, k)
    sigma = math.sqrt(rho * (1 - rho))
    a_pos = (1 - rho) / (sigma + eps)
    without = math.comb(n - c - 1, k - 1) if c < n else 0  # scipy's comb(−1, ·) = 0, as the authors
    a_neg = (1 - rho - without / math.comb(n - 1, k - 1)) / (sigma + eps)
    return a_pos, a_neg


def advantages(rewards, group_ids, k, **kwargs) -> np.ndarray:
    return passk_advantages(torch.tensor(rewards), torch.tensor(group_ids), k, **kwargs).numpy()


# ---------------------------------------------------------------------------------------------
# The advantage


def test_hand_values():
    # (1, 0, 0, 0), k = 2: ρ = 1 − 3/6 = 1/2, σ = 1/2, A_pos = 1, A_neg = (1/2 − 2/3)/(1/2).
    got = advantages(np.array([1.0, 0, 0, 0]), np.zeros(4, dtype=int), 2, eps=0.0)
    np.testing.assert_allclose(got, [1.0, -1 / 3, -1 / 3, -1 / 3], rtol=1e-14)
    # Graded (0.2, 0.5, 0.9), k = 2: subset maxima 0.5, 0.9, 0.9; μ = 23/30, σ = (2/15)·√2;
    # holding 0.2 or 0.5: mean 0.7; holding 0.9: 0.9.
    got = advantages(np.array([0.2, 0.5, 0.9]), np.zeros(3, dtype=int), 2, eps=0.0)
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(got, [-s / 2, -s / 2, s], rtol=1e-13)


@pytest.mark.parametrize("seed", range(12))
def test_graded_rewards_match_brute_force(seed):
    rng = np.random.RandomState(seed)
    sizes = rng.randint(1, 9, size=4)
    k = int(rng.randint(1, sizes.min() + 1))
    group_ids = np.repeat(rng.permutation(100)[:4], sizes)
    order = rng.permutation(len(group_ids))  # groups interleaved, as a batch may hold them
    group_ids = group_ids[order]
    if seed % 3 == 0:  # ties
        rewards = rng.randint(0, 3, size=len(group_ids)) / 2.0
    else:
        rewards = rng.rand(len(group_ids))
    want = brute_force(rewards, group_ids, k)
    np.testing.assert_allclose(
        advantages(rewards, group_ids, k, eps=0.0), want, rtol=1e-10, atol=1e-12
    )
    with_eps = brute_force(rewards, group_ids, k, eps=1e-6)
    np.testing.assert_allclose(advantages(rewards, group_ids, k), with_eps, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [2, 5, 8, 16])
def test_binary_rewards_match_the_closed_form(n):
    for c in range(n + 1):
        rewards = np.array([1.0] * c + [0.0] * (n - c))
        for k in range(1, n + 1):
            got = advantages(rewards, np.zeros(n, dtype=int), k)
            a_pos, a_neg = closed_form(n, c, k)
            want = np.array([a_pos] * c + [a_neg] * (n - c))
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9, err_msg=f"c={c}, k={k}")


def test_large_groups_are_stable():
    # Log-binomials of C(512, 64) ≈ 1e83: the ratios still agree with exact integer arithmetic.
    for n, k, c in [(64, 16, 3), (512, 64, 5), (512, 8, 500), (256, 255, 1)]:
        rewards = np.array([1.0] * c + [0.0] * (n - c))
        got = advantages(rewards, np.zeros(n, dtype=int), k)
        a_pos, a_neg = closed_form(n, c, k)
        np.testing.assert_allclose(got[[0, -1]], [a_pos, a_neg], rtol=1e-9, atol=1e-9)


def test_k_one_is_the_population_normalised_reward():
    rewards = np.array([0.3, 0.9, 0.1, 0.5, 0.5, 1.0, 0.0])
    group_ids = np.array([0, 0, 0, 0, 1, 1, 1])
    want = np.zeros_like(rewards)
    for g in (0, 1):
        r = rewards[group_ids == g]
        want[group_ids == g] = (r - r.mean()) / r.std()
    np.testing.assert_allclose(advantages(rewards, group_ids, 1, eps=0.0), want, rtol=1e-12)


def test_degenerate_groups_get_exactly_zero():
    # Equal rewards; k = group size (one subset); a group of one with k = 1; the top
    # n − k + 1 rewards equal (every k-subset has the same maximum).
    cases = [
        (np.array([0.7, 0.7, 0.7]), 2),
        (np.array([0.1, 0.9, 0.4]), 3),
        (np.array([0.3]), 1),
        (np.array([0.9, 0.9, 0.9, 0.2]), 2),
        (np.array([0.3, 0.1, 0.3, 0.3]), 3),
    ]
    for rewards, k in cases:
        got = advantages(rewards, np.zeros(len(rewards), dtype=int), k)
        assert np.all(got == 0.0), (rewards, k, got)


# ---------------------------------------------------------------------------------------------
# The loss: grpo's clipped surrogate with these advantages

LOGPS = np.array(
    [
        [-0.5, -1.2, -0.3, -0.8],
        [-2.0, -0.1, -0.4, 0.0],
        [-0.7, 0.0, 0.0, 0.0],
        [-1.5, -0.4, -0.9, -0.2],
        [-0.2, -0.6, 0.0, 0.0],
        [-1.1, -0.8, -0.3, 0.0],
        [-0.9, -0.2, -0.6, -0.1],
        [-0.4, -0.3, 0.0, 0.0],
    ]
)
MASK = np.array(
    [[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]] + [[1, 1, 0, 0], [1, 1, 1, 0]] * 2,
    dtype=float,
)
OLD = LOGPS + 0.25 * np.sin(np.arange(32.0)).reshape(8, 4)
REF = LOGPS - 0.1
REWARDS = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.8, 0.8, 0.1])
GROUP_IDS = np.array([2, 2, 2, 2, 6, 6, 6, 6])


def make_batch(
    logps: np.ndarray | torch.Tensor = LOGPS,
    *,
    mask: np.ndarray = MASK,
    rewards: np.ndarray = REWARDS,
    group_ids: np.ndarray = GROUP_IDS,
    old: np.ndarray | None = OLD,
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
        ref_logps=torch.as_tensor(REF, dtype=dtype) if logps.shape == LOGPS.shape else None,
        **fields,
    )


@pytest.mark.parametrize(
    ("params", "base", "base_params"),
    [
        ({}, grpo, {}),
        ({"k": 2, "epsilon_high": 0.28}, grpo, {"epsilon_high": 0.28}),
        ({"k": 3, "aggregation": "bnpo"}, bnpo, {}),
        (
            {"beta_kl": 0.05, "kl_bias_correction": True},
            grpo,
            {"beta_kl": 0.05, "kl_bias_correction": True},
        ),
    ],
)
def test_loss_is_grpo_with_passk_advantages(params, base, base_params):
    k = params.get("k", 4)
    adv = torch.tensor(brute_force(REWARDS, GROUP_IDS, k, eps=1e-6))
    batch, base_batch = make_batch(), make_batch(advantages=adv)
    out, want = passk(batch, **params), base(base_batch, **base_params)
    assert out.loss.item() == pytest.approx(want.loss.item(), rel=1e-12)
    out.loss.backward()
    want.loss.backward()
    torch.testing.assert_close(batch.logps.grad, base_batch.logps.grad, rtol=1e-11, atol=1e-14)
    assert out.metrics["clip_ratio/region_mean"] == want.metrics["clip_ratio/region_mean"]
    assert out.metrics["advantage_abs_mean"] == pytest.approx(adv.abs().mean().item(), rel=1e-12)


def test_hand_loss_on_policy():
    # One group (1, 0, 0, 0), k = 2: A = (1, −1/3, −1/3, −1/3) up to eps; ρ = 1:
    # L = mean_i(−A_i) = −(1 − 1)/4 = 0, gradient −A_i/(|y_i|·4).
    batch = make_batch(
        LOGPS[:4], mask=MASK[:4], rewards=np.array([1.0, 0, 0, 0]), group_ids=np.zeros(4), old=None
    )
    out = passk(batch, k=2, adv_eps=0.0)
    assert out.loss.item() == pytest.approx(0.0, abs=1e-15)
    assert out.metrics["pass_at_k_mean"] == pytest.approx(0.5)
    out.loss.backward()
    adv = np.array([1.0, -1 / 3, -1 / 3, -1 / 3])
    want = -adv[:, None] * MASK[:4] / MASK[:4].sum(1, keepdims=True) / 4
    np.testing.assert_allclose(batch.logps.grad.numpy(), want, rtol=1e-13, atol=1e-16)


def test_batch_advantages_are_ignored():
    given = make_batch(advantages=torch.full((8,), 5.0, dtype=F64))
    assert passk(given).loss.item() == passk(make_batch()).loss.item()


def test_pass_at_k_metric():
    # Group 2: 2 of 4 correct, pass@4 = 1. Group 6: the best of all 4 is always 0.8.
    assert passk(make_batch()).metrics["pass_at_k_mean"] == pytest.approx((1.0 + 0.8) / 2)
    # k = 2: group 2 → 1 − C(2,2)/C(4,2) = 5/6; group 6: maxima over 6 pairs.
    pairs = [max(a, b) for a, b in itertools.combinations([0.3, 0.8, 0.8, 0.1], 2)]
    want = (5 / 6 + np.mean(pairs)) / 2
    assert passk(make_batch(), k=2).metrics["pass_at_k_mean"] == pytest.approx(want, rel=1e-12)


def test_gradcheck():
    def loss(logps: torch.Tensor) -> torch.Tensor:
        return passk(make_batch(logps), k=2, beta_kl=0.1).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, -1e4)],
)
def test_empty_completions_and_padding(dtype, fill):
    logps = torch.tensor(LOGPS)
    mask = torch.tensor(MASK)
    mask[1] = 0  # empty completion
    logps[mask == 0] = fill
    old = torch.tensor(OLD)
    old[mask == 0] = 0.0
    batch = GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=mask.to(dtype),
        rewards=torch.tensor(REWARDS).to(dtype),
        group_ids=torch.tensor(GROUP_IDS),
        old_logps=old.to(dtype),
    )
    out = passk(batch, k=3)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert batch.logps.grad.dtype == dtype
    assert torch.isfinite(out.loss) and torch.isfinite(batch.logps.grad).all()
    assert torch.all(batch.logps.grad[mask == 0] == 0)
    assert all(math.isfinite(v) for v in out.metrics.values())


def test_bf16_matches_float32():
    lp32 = torch.tensor(LOGPS, dtype=torch.float32)
    out32 = passk(make_batch(lp32.clone().requires_grad_(), dtype=torch.float32))
    outbf = passk(make_batch(lp32.to(torch.bfloat16).requires_grad_(), dtype=torch.bfloat16))
    assert outbf.loss.item() == pytest.approx(out32.loss.item(), rel=2e-2, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Registry and errors


def test_registered_with_defaults():
    spec = objectives.get("passk")
    assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary
    assert (spec.params["k"], spec.params["adv_eps"], spec.params["aggregation"]) == (
        4,
        1e-6,
        "grpo",
    )
    assert spec(make_batch()).loss.item() == passk(make_batch()).loss.item()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 5}, r"k=5 .*smallest group in this batch has 4"),
        ({"k": 0}, r"k must be >= 1"),
        ({"k": -2}, r"k must be >= 1"),
        ({"k": 2.5}, r"k must be an integer"),
        ({"k": True}, r"k must be an integer"),
        ({"aggregation": "mean"}, "aggregation"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(DmpoError, match=message):
        passk(make_batch(), **params)


def test_group_smaller_than_k_raises_even_if_others_are_large():
    rewards, group_ids = np.array([1.0, 0, 0, 1, 0]), np.array([0, 0, 0, 1, 1])
    with pytest.raises(DmpoError, match=r"k=3"):
        passk_advantages(torch.tensor(rewards), torch.tensor(group_ids), 3)
