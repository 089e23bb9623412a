"""Clip-Cov and KL-Cov: hand values, numpy references, reduction to the base, gradients, edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.covariance import clip_cov, kl_cov, token_covariance
from dmpo.objectives.policy_gradient import bnpo, dapo, grpo

F64 = torch.float64

# Eight completions in three groups, lengths 6 4 1 5 6 3 6 2 (33 real tokens). The log-probs
# spread widely enough that five tokens have 1 < Cov < 5 and are not clipped by PPO, and one,
# (4, 2), has Cov in range but is clipped (ρ = 1.39, A > 0).
_rng = np.random.RandomState(0)
LOGPS = -np.round(_rng.exponential(1.5, (8, 6)), 3)
MASK = (np.arange(6)[None, :] < np.array([6, 4, 1, 5, 6, 3, 6, 2])[:, None]).astype(float)
OLD = LOGPS + np.round(_rng.normal(0, 0.2, (8, 6)), 3)
REWARDS = np.array([1.0, 0.0, 0.0, 0.2, 0.9, 0.5, 1.0, 0.0])
GROUP_IDS = np.array([3, 3, 3, 7, 7, 7, 1, 1])
CANDIDATES = {(1, 1), (1, 2), (3, 1), (3, 2), (4, 0)}


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
        **fields,
    )


# ---------------------------------------------------------------------------------------------
# numpy references (explicit loops over tokens, verl's counting)


def advantages_ref(rewards, group_ids, eps=1e-4):
    adv = np.zeros_like(rewards)
    for g in np.unique(group_ids):
        idx = np.flatnonzero(group_ids == g)
        r = rewards[idx]
        std = r.std(ddof=1) if len(r) > 1 else 0.0
        adv[idx] = (r - r.mean()) / (std + eps)
    return adv


def real_tokens(mask):
    return [(i, t) for i in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[i, t]]


def covariance_ref(adv, logps, mask):
    tokens = real_tokens(mask)
    mean_a = np.mean([adv[i] for i, _ in tokens])
    mean_lp = np.mean([logps[i, t] for i, t in tokens])
    return {(i, t): (adv[i] - mean_a) * (logps[i, t] - mean_lp) for i, t in tokens}


def clip_cov_ref(logps, mask, old, adv, *, lb=1.0, ub=5.0, eps=0.2, dropped=None):
    """Token-mean loss; ``dropped`` = the selected tokens (default: every candidate)."""
    cov = covariance_ref(adv, logps, mask)
    total, candidates = 0.0, set()
    for i, t in real_tokens(mask):
        rho = math.exp(logps[i, t] - old[i, t])
        unclipped, clipped = -adv[i] * rho, -adv[i] * min(max(rho, 1 - eps), 1 + eps)
        if not clipped > unclipped and lb < cov[(i, t)] < ub:
            candidates.add((i, t))
        total += max(unclipped, clipped)
    dropped = candidates if dropped is None else dropped
    for i, t in dropped:
        rho = math.exp(logps[i, t] - old[i, t])
        total -= max(-adv[i] * rho, -adv[i] * min(max(rho, 1 - eps), 1 + eps))
    return total / mask.sum(), candidates


def kl_cov_ref(logps, mask, old, adv, *, ratio, coef=1.0):
    cov = covariance_ref(adv, logps, mask)
    tokens = real_tokens(mask)
    k = max(1, int(ratio * len(tokens))) if ratio > 0 else 0
    order = np.argsort([-cov[tok] for tok in tokens], kind="stable")
    selected = {tokens[j] for j in order[:k]}
    total = 0.0
    for i, t in tokens:
        log_ratio = logps[i, t] - old[i, t]
        total += -adv[i] * math.exp(log_ratio) + (
            coef * abs(log_ratio) if (i, t) in selected else 0
        )
    return total / len(tokens), selected


ADV = advantages_ref(REWARDS, GROUP_IDS)


def test_fixture_has_the_intended_candidates():
    _, candidates = clip_cov_ref(LOGPS, MASK, OLD, ADV)
    assert candidates == CANDIDATES
    cov = covariance_ref(ADV, LOGPS, MASK)
    assert 1 < cov[(4, 2)] < 5  # in range, but PPO-clipped: not a candidate


def test_token_covariance_matches_reference():
    real = torch.tensor(MASK).bool()
    got = token_covariance(
        torch.tensor(ADV), torch.where(real, torch.tensor(LOGPS), 0.0), torch.tensor(MASK)
    )
    for (i, t), value in covariance_ref(ADV, LOGPS, MASK).items():
        assert got[i, t].item() == pytest.approx(value, rel=1e-12, abs=1e-14)


# ---------------------------------------------------------------------------------------------
# Clip-Cov


def test_clip_cov_ratio_zero_is_exactly_the_clipped_surrogate():
    for params, base in [
        ({}, lambda b: dapo(b, epsilon_high=0.2)),
        ({"aggregation": "bnpo"}, bnpo),
        ({"aggregation": "grpo"}, grpo),
        ({"aggregation": "grpo", "epsilon_high": 0.28}, lambda b: grpo(b, epsilon_high=0.28)),
    ]:
        batch, base_batch = make_batch(), make_batch()
        out = clip_cov(batch, clip_cov_ratio=0.0, **params)
        want = base(base_batch)
        out.loss.backward()
        want.loss.backward()
        assert out.loss.item() == want.loss.item()
        assert torch.equal(batch.logps.grad, base_batch.logps.grad)
        assert out.metrics["clip_cov/fraction"] == 0.0
    assert objectives.get("clip_cov")(make_batch(), clip_cov_ratio=0.0).loss.item() == (
        objectives.get("bnpo")(make_batch()).loss.item()
    )


def test_clip_cov_drops_every_candidate_when_the_ratio_allows():
    want, candidates = clip_cov_ref(LOGPS, MASK, OLD, ADV)
    batch = make_batch()
    out = clip_cov(batch, clip_cov_ratio=1.0)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert out.metrics["clip_cov/fraction"] == pytest.approx(len(candidates) / 33)
    assert out.metrics["clip_cov/candidate_fraction"] == pytest.approx(5 / 33)
    out.loss.backward()
    for i, t in candidates:
        assert batch.logps.grad[i, t] == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_clip_cov_random_subset_is_reproducible_and_matches_reference(seed):
    # 0.1 · 33 real tokens → 3 of the 5 candidates.
    first, second = make_batch(), make_batch()
    out = clip_cov(first, clip_cov_ratio=0.1, seed=seed)
    again = clip_cov(second, clip_cov_ratio=0.1, seed=seed)
    out.loss.backward()
    again.loss.backward()
    assert out.loss.item() == again.loss.item()
    assert torch.equal(first.logps.grad, second.logps.grad)
    # The dropped tokens are the candidates whose gradient is now exactly 0.
    dropped = {tok for tok in CANDIDATES if first.logps.grad[tok] == 0}
    assert len(dropped) == 3
    want, _ = clip_cov_ref(LOGPS, MASK, OLD, ADV, dropped=dropped)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert out.metrics["clip_cov/fraction"] == pytest.approx(3 / 33)


def test_clip_cov_seeds_choose_different_subsets():
    losses = {clip_cov(make_batch(), clip_cov_ratio=0.1, seed=s).loss.item() for s in range(12)}
    assert len(losses) > 1
    torch.manual_seed(123)
    a = clip_cov(make_batch(), clip_cov_ratio=0.1, seed=None).loss.item()
    torch.manual_seed(123)
    assert clip_cov(make_batch(), clip_cov_ratio=0.1, seed=None).loss.item() == a


# Hand-computed: one group, rewards (1, 0), unscaled advantages A = ±0.5, two tokens each.
#   lp = (−0.1, −5.0 | −0.2, −6.7), mean −3; Ā = 0.
#   Cov = (0.5·2.9, 0.5·−2, −0.5·2.8, −0.5·−3.7) = (1.45, −1, −1.4, 1.85): candidates (0,0), (1,1).
#   On-policy ℓ = (−0.5, −0.5 | 0.5, 0.5); four tokens; n = max(⌊ratio·4⌋, 1).
HAND_LOGPS = np.array([[-0.1, -5.0], [-0.2, -6.7]])


def hand_batch(old=None, **fields) -> GroupBatch:
    return make_batch(
        HAND_LOGPS,
        mask=np.ones((2, 2)),
        rewards=np.array([1.0, 0.0]),
        group_ids=np.array([0, 0]),
        old=old,
        **fields,
    )


def test_clip_cov_hand_values():
    params = {"scale_rewards": "none"}
    # One of the two candidates, at random: dropping (0,0) leaves 0.5/4, dropping (1,1) −0.5/4.
    seen = set()
    for seed in range(16):
        batch = hand_batch()
        out = clip_cov(batch, clip_cov_ratio=0.25, seed=seed, **params)
        out.loss.backward()
        dropped = (0, 0) if out.loss.item() > 0 else (1, 1)
        assert abs(out.loss.item()) == pytest.approx(0.125, rel=1e-12)
        assert batch.logps.grad[dropped] == 0
        assert out.metrics["clip_cov/fraction"] == 0.25
        seen.add(dropped)
    assert seen == {(0, 0), (1, 1)}
    # Both candidates dropped: −0.5 + 0.5 over 4 tokens.
    assert clip_cov(hand_batch(), clip_cov_ratio=0.5, **params).loss.item() == 0.0
    # An upper bound of 1.5 leaves only (0,0): dropped whatever the seed.
    assert clip_cov(
        hand_batch(), clip_cov_ratio=0.25, clip_cov_ub=1.5, **params
    ).loss.item() == pytest.approx(0.125, rel=1e-12)
    # Any ratio > 0 drops at least one token (verl's max(⌊·⌋, 1)).
    assert abs(clip_cov(hand_batch(), clip_cov_ratio=1e-9, **params).loss.item()) == 0.125


def test_clip_cov_skips_tokens_that_ppo_already_clips():
    # ρ = 1.5 on (0,0) with A > 0: the clip is active there, so (1,1) is the only candidate.
    old = HAND_LOGPS.copy()
    old[0, 0] -= math.log(1.5)
    batch = hand_batch(old=old)
    out = clip_cov(batch, clip_cov_ratio=0.25, scale_rewards="none")
    # ℓ = (−0.5·1.2, −0.5 | 0.5, dropped) over 4 tokens.
    assert out.loss.item() == pytest.approx((-0.6 - 0.5 + 0.5) / 4, rel=1e-12)
    assert out.metrics["clip_ratio/high_mean"] == 0.25
    out.loss.backward()
    want = torch.tensor([[0.0, -0.5 / 4], [0.5 / 4, 0.0]], dtype=F64)
    torch.testing.assert_close(batch.logps.grad, want, rtol=1e-12, atol=1e-15)


def test_clip_cov_gradcheck():
    def loss(logps: torch.Tensor) -> torch.Tensor:
        return clip_cov(make_batch(logps), clip_cov_ratio=0.1, seed=3).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# KL-Cov


def test_kl_cov_ratio_zero_is_the_unclipped_surrogate():
    batch, base_batch = make_batch(), make_batch()
    out = kl_cov(batch, kl_cov_ratio=0.0)
    want = bnpo(base_batch, epsilon_low=1.0, epsilon_high=math.inf)  # clip(ρ, 0, ∞) = ρ
    out.loss.backward()
    want.loss.backward()
    assert out.loss.item() == want.loss.item()
    assert torch.equal(batch.logps.grad, base_batch.logps.grad)
    # On-policy ρ = 1 stays inside any clip range: exactly the GRPO family.
    for params, base in [
        ({}, lambda b: dapo(b, epsilon_high=0.2)),
        ({"aggregation": "grpo"}, grpo),
    ]:
        batch, base_batch = make_batch(old=None), make_batch(old=None)
        out, want = kl_cov(batch, kl_cov_ratio=0.0, **params), base(base_batch)
        out.loss.backward()
        want.loss.backward()
        assert out.loss.item() == want.loss.item()
        assert torch.equal(batch.logps.grad, base_batch.logps.grad)


@pytest.mark.parametrize(("ratio", "coef"), [(0.1, 1.0), (2e-4, 1.0), (0.5, 0.3), (1.0, 2.0)])
def test_kl_cov_matches_numpy_reference(ratio, coef):
    want, selected = kl_cov_ref(LOGPS, MASK, OLD, ADV, ratio=ratio, coef=coef)
    out = kl_cov(make_batch(), kl_cov_ratio=ratio, ppo_kl_coef=coef)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert out.metrics["kl_cov/fraction"] == pytest.approx(len(selected) / 33)
    abs_kl = np.abs(LOGPS - OLD)[MASK.astype(bool)].mean()
    assert out.metrics["ppo_kl_abs"] == pytest.approx(abs_kl, rel=1e-12)
    if ratio == 0.1:
        assert selected == {(3, 2), (1, 2), (3, 1)}


def test_kl_cov_hand_values_and_gradient():
    # Cov ranks (1,1) 1.85 > (0,0) 1.45 > (0,1) −1 > (1,0) −1.4.
    log_ratio = np.array([[0.1, -0.2], [-0.05, -0.3]])
    batch = hand_batch(old=HAND_LOGPS - log_ratio)
    out = kl_cov(batch, kl_cov_ratio=0.25, scale_rewards="none")  # k = 1: (1,1)
    surrogate = -0.5 * (math.exp(0.1) + math.exp(-0.2)) + 0.5 * (math.exp(-0.05) + math.exp(-0.3))
    assert out.loss.item() == pytest.approx((surrogate + 0.3) / 4, rel=1e-12)
    out.loss.backward()
    want = torch.tensor(
        [
            [-0.5 * math.exp(0.1), -0.5 * math.exp(-0.2)],
            [0.5 * math.exp(-0.05), 0.5 * math.exp(-0.3) - 1.0],  # + β·sign(−0.3)
        ],
        dtype=F64,
    )
    torch.testing.assert_close(batch.logps.grad, want / 4, rtol=1e-12, atol=1e-15)
    two = kl_cov(hand_batch(old=HAND_LOGPS - log_ratio), kl_cov_ratio=0.5, scale_rewards="none")
    assert two.loss.item() == pytest.approx((surrogate + 0.3 + 0.1) / 4, rel=1e-12)


def test_kl_cov_breaks_ties_by_position():
    # A = (2/3, −1/3, −1/3) unscaled, Ā = 0, mean lp = −0.7: Cov = 0.4 on both tokens of
    # completion 0 (an exact tie), 0.1 elsewhere. k = ⌊0.2·6⌋ → 1: the first, (0, 0).
    lp = np.array([[-0.1, -0.1], [-1.0, -1.0], [-1.0, -1.0]])

    def grad(ratio: float) -> torch.Tensor:
        batch = make_batch(
            lp,
            mask=np.ones((3, 2)),
            rewards=np.array([1.0, 0, 0]),
            group_ids=np.zeros(3),
            old=lp - 0.1,
        )
        kl_cov(batch, kl_cov_ratio=ratio, scale_rewards="none").loss.backward()
        return batch.logps.grad

    extra = grad(0.2) - grad(0.0)  # β·sign(0.1)/|T| on the selected token only
    want = torch.zeros(3, 2, dtype=F64)
    want[0, 0] = 1 / 6
    torch.testing.assert_close(extra, want, rtol=1e-12, atol=1e-15)


def test_kl_cov_gradcheck():
    def loss(logps: torch.Tensor) -> torch.Tensor:
        return kl_cov(make_batch(logps), kl_cov_ratio=0.1, ppo_kl_coef=0.7).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Both: degenerate inputs, registry, errors

COV_OBJECTIVES = {"clip_cov": clip_cov, "kl_cov": kl_cov}


def degenerate_batch(dtype: torch.dtype, fill: float) -> GroupBatch:
    """A group of one, a group of equal rewards, an empty and a 1-token completion, filler."""
    logps = torch.full((6, 5), -0.5, dtype=F64)
    logps[:, 0] = -3.0
    logps[2, 1] = -6.0
    mask = torch.ones(6, 5)
    mask[1] = 0  # empty completion
    mask[3, 1:] = 0  # 1-token completion
    logps[mask == 0] = fill
    old = logps + 0.1
    old[1] = 0.0  # filler that would give exp(±1e4) if it reached a ratio
    return GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=mask.to(dtype),
        rewards=torch.tensor([1.0, 0.0, 0.3, 0.5, 0.5, 2.0]).to(dtype),
        group_ids=torch.tensor([0, 0, 0, 1, 1, 2]),
        old_logps=old.to(dtype),
    )


@pytest.mark.parametrize("name", list(COV_OBJECTIVES))
@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, -1e4)],
)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, dtype, fill):
    batch = degenerate_batch(dtype, fill)
    out = COV_OBJECTIVES[name](batch, **{f"{name}_ratio": 0.2})
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert batch.logps.grad.dtype == dtype
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.logps.grad).all()
    assert torch.all(batch.logps.grad[1] == 0)  # empty completion
    assert all(math.isfinite(v) for v in out.metrics.values())


@pytest.mark.parametrize("name", list(COV_OBJECTIVES))
def test_group_of_one_and_equal_rewards_have_zero_gradient(name):
    batch = make_batch(
        LOGPS[:3],
        mask=MASK[:3],
        rewards=np.array([0.4, 1.0, 1.0]),
        group_ids=np.array([0, 1, 1]),
        old=OLD[:3],
    )
    out = COV_OBJECTIVES[name](batch, **{f"{name}_ratio": 0.0})
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert torch.all(batch.logps.grad == 0)


@pytest.mark.parametrize("name", list(COV_OBJECTIVES))
def test_no_real_tokens(name):
    batch = make_batch(mask=np.zeros_like(MASK))
    out = COV_OBJECTIVES[name](batch, **{f"{name}_ratio": 0.5})
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert torch.all(batch.logps.grad == 0)


def test_bf16_matches_float32():
    for fn in COV_OBJECTIVES.values():
        lp32 = torch.tensor(LOGPS, dtype=torch.float32)
        out32 = fn(make_batch(lp32.clone().requires_grad_(), dtype=torch.float32))
        outbf = fn(make_batch(lp32.to(torch.bfloat16).requires_grad_(), dtype=torch.bfloat16))
        assert outbf.loss.dtype == torch.float32
        assert outbf.loss.item() == pytest.approx(out32.loss.item(), rel=5e-2, abs=1e-2)


def test_registered_with_defaults():
    clip = objectives.get("clip_cov").params
    assert (clip["clip_cov_ratio"], clip["clip_cov_lb"], clip["clip_cov_ub"]) == (2e-4, 1.0, 5.0)
    assert (clip["epsilon_low"], clip["epsilon_high"], clip["aggregation"]) == (0.2, 0.2, "dapo")
    kl = objectives.get("kl_cov").params
    assert (kl["kl_cov_ratio"], kl["ppo_kl_coef"], kl["aggregation"]) == (2e-4, 1.0, "dapo")
    for name, fn in COV_OBJECTIVES.items():
        spec = objectives.get(name)
        assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary
        assert spec(make_batch()).loss.item() == fn(make_batch()).loss.item()


@pytest.mark.parametrize(
    ("fn", "params", "message"),
    [
        (clip_cov, {"clip_cov_ratio": -0.1}, "clip_cov_ratio"),
        (clip_cov, {"clip_cov_ratio": 1.5}, "clip_cov_ratio"),
        (clip_cov, {"clip_cov_lb": 5.0, "clip_cov_ub": 1.0}, "clip_cov_lb"),
        (clip_cov, {"aggregation": "token-mean"}, "aggregation"),
        (kl_cov, {"kl_cov_ratio": -1e-4}, "kl_cov_ratio"),
        (kl_cov, {"kl_cov_ratio": 2.0}, "kl_cov_ratio"),
        (kl_cov, {"ppo_kl_coef": -1.0}, "ppo_kl_coef"),
        (kl_cov, {"scale_rewards": "std"}, "scale_rewards"),
    ],
)
def test_bad_parameters(fn, params, message):
    with pytest.raises(DmpoError, match=message):
        fn(make_batch(), **params)
