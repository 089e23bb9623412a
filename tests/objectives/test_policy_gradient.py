"""GRPO family (grpo, bnpo, dapo, dr_grpo, gspo): hand values, numpy references, gradients, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.policy_gradient import bnpo, dapo, dr_grpo, grpo, gspo

F64 = torch.float64
GROUP_OBJECTIVES = {"grpo": grpo, "bnpo": bnpo, "dapo": dapo, "dr_grpo": dr_grpo, "gspo": gspo}

# Two groups of unequal size (3 and 2) and a group whose rewards are all equal; padded rows.
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
# Perturbations of ±0.05…0.4 so that some tokens are clipped at 0.2 and some at 0.28.
OLD_SHIFT = np.array(
    [
        [0.25, -0.02, 0.03, -0.3],
        [0.01, 0.4, -0.05, 0.0],
        [-0.22, 0.0, 0.0, 0.0],
        [0.02, -0.35, -0.01, 0.1],
        [0.06, -0.04, 0.0, 0.0],
        [0.3, 0.03, -0.27, 0.0],
        [-0.01, 0.05, 0.2, -0.15],
    ]
)
OLD = LOGPS + OLD_SHIFT
REF = LOGPS - 0.5 * OLD_SHIFT[::-1] - 0.1
REWARDS = np.array([1.0, 0.0, 0.5, 0.2, 0.9, 0.7, 0.7])
GROUP_IDS = np.array([4, 4, 4, 1, 1, 9, 9])


def make_batch(
    logps: np.ndarray | torch.Tensor = LOGPS,
    *,
    mask: np.ndarray = MASK,
    rewards: np.ndarray = REWARDS,
    group_ids: np.ndarray = GROUP_IDS,
    old: np.ndarray | None = OLD,
    ref: np.ndarray | None = None,
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
        ref_logps=None if ref is None else torch.as_tensor(ref, dtype=dtype),
        **fields,
    )


# ---------------------------------------------------------------------------------------------
# numpy reference, written from the formulas in the module docstrings with explicit loops


def advantages_ref(
    rewards: np.ndarray, group_ids: np.ndarray, scale: str = "group", eps: float = 1e-4
):
    adv = np.zeros_like(rewards)
    for g in np.unique(group_ids):
        idx = np.flatnonzero(group_ids == g)
        r = rewards[idx]
        centred = r - r.mean()
        if scale == "group":
            std = r.std(ddof=1) if len(r) > 1 else 0.0
            adv[idx] = centred / (std + eps)
        elif scale == "batch":
            adv[idx] = centred / (rewards.std(ddof=1) + eps)
        else:
            adv[idx] = centred
    return adv


def surrogate_ref(
    logps,
    mask,
    old,
    adv,
    *,
    aggregation,
    eps_low,
    eps_high,
    sequence=False,
    ref=None,
    beta=0.0,
    max_len=None,
    num_items=None,
):
    per_completion, total, tokens = [], 0.0, 0.0
    for i in range(len(logps)):
        real = np.flatnonzero(mask[i])
        if sequence:
            s = math.exp(np.mean(logps[i, real] - old[i, real])) if len(real) else 1.0
            rho = np.full(len(real), s)
        else:
            rho = np.exp(logps[i, real] - old[i, real])
        loss_t = -np.minimum(rho * adv[i], np.clip(rho, 1 - eps_low, 1 + eps_high) * adv[i])
        if beta:
            d = ref[i, real] - logps[i, real]
            loss_t = loss_t + beta * (np.exp(d) - d - 1)
        per_completion.append(loss_t.mean() if len(real) else 0.0)
        total += loss_t.sum()
        tokens += len(real)
    if aggregation == "grpo":
        return float(np.mean(per_completion))
    if aggregation == "bnpo":
        return total / tokens
    if aggregation == "dapo":
        return total / (tokens if num_items is None else num_items)
    return total / (len(logps) * (logps.shape[1] if max_len is None else max_len))


REF_CASES = {
    "grpo": ({}, {"aggregation": "grpo", "eps_low": 0.2, "eps_high": 0.2}),
    "bnpo": ({}, {"aggregation": "bnpo", "eps_low": 0.2, "eps_high": 0.2}),
    "dapo": ({}, {"aggregation": "dapo", "eps_low": 0.2, "eps_high": 0.28}),
    "dr_grpo": ({"scale": "none"}, {"aggregation": "dr_grpo", "eps_low": 0.2, "eps_high": 0.2}),
    "gspo": ({}, {"aggregation": "grpo", "eps_low": 3e-4, "eps_high": 4e-4, "sequence": True}),
}


@pytest.mark.parametrize("name", list(GROUP_OBJECTIVES))
def test_default_value_matches_numpy_reference(name):
    adv_kwargs, kwargs = REF_CASES[name]
    adv = advantages_ref(REWARDS, GROUP_IDS, **adv_kwargs)
    want = surrogate_ref(LOGPS, MASK, OLD, adv, **kwargs)
    out = GROUP_OBJECTIVES[name](make_batch())
    assert out.loss.dtype == F64
    assert out.loss.item() == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert out.metrics["advantage_abs_mean"] == pytest.approx(np.abs(adv).mean(), rel=1e-12)


@pytest.mark.parametrize("name", list(GROUP_OBJECTIVES))
def test_kl_term_matches_numpy_reference(name):
    adv_kwargs, kwargs = REF_CASES[name]
    adv = advantages_ref(REWARDS, GROUP_IDS, **adv_kwargs)
    want = surrogate_ref(LOGPS, MASK, OLD, adv, ref=REF, beta=0.07, **kwargs)
    out = GROUP_OBJECTIVES[name](make_batch(ref=REF), beta_kl=0.07)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    d = REF - LOGPS
    k3 = (np.exp(d) - d - 1) * MASK
    assert out.metrics["kl"] == pytest.approx(k3.sum() / MASK.sum(), rel=1e-12)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_scale_rewards_and_adv_eps(scale):
    adv = advantages_ref(REWARDS, GROUP_IDS, scale, eps=1e-6)
    want = surrogate_ref(LOGPS, MASK, OLD, adv, aggregation="grpo", eps_low=0.2, eps_high=0.2)
    out = grpo(make_batch(), scale_rewards=scale, adv_eps=1e-6)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)


def test_given_advantages_are_used_as_is():
    adv = np.array([0.3, -1.0, 2.0, 0.0, 0.5, -0.2, 1.1])
    want = surrogate_ref(LOGPS, MASK, OLD, adv, aggregation="bnpo", eps_low=0.2, eps_high=0.2)
    out = bnpo(make_batch(advantages=torch.tensor(adv)))
    assert out.loss.item() == pytest.approx(want, rel=1e-12)


def test_dapo_and_dr_grpo_normalisers():
    adv = advantages_ref(REWARDS, GROUP_IDS)
    want = surrogate_ref(
        LOGPS, MASK, OLD, adv, aggregation="dapo", eps_low=0.2, eps_high=0.28, num_items=57.0
    )
    assert dapo(make_batch(num_items_in_batch=57.0)).loss.item() == pytest.approx(want, rel=1e-12)
    as_tensor = dapo(make_batch(num_items_in_batch=torch.tensor(57.0))).loss.item()
    assert as_tensor == pytest.approx(want, rel=1e-12)

    adv = advantages_ref(REWARDS, GROUP_IDS, "none")
    want = surrogate_ref(
        LOGPS, MASK, OLD, adv, aggregation="dr_grpo", eps_low=0.2, eps_high=0.2, max_len=16
    )
    assert dr_grpo(make_batch(), max_completion_length=16).loss.item() == pytest.approx(
        want, rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# A fully hand-computed example: one group of two, rewards (1, 0).
#   A = ±a, a = 0.5 / (std + 1e-4), std = sqrt(0.5) (unbiased).
#   completion 0: two tokens, ρ = (1.5, 1)   completion 1: one token, ρ = 0.5, then padding
#   whose lp − old = +1e4 (it must never reach exp).
#   ℓ (ε = 0.2): (−1.2a, −a) and (+0.8a); with ε_high = 0.28: (−1.28a, −a) and (+0.8a).

A_HAND = 0.5 / (math.sqrt(0.5) + 1e-4)
HAND_LOGPS = np.array([[-0.5, -1.0], [-2.0, 0.0]])
HAND_OLD = np.array([[-0.5 - math.log(1.5), -1.0], [-2.0 - math.log(0.5), -1e4]])
HAND_MASK = np.array([[1.0, 1.0], [1.0, 0.0]])


def hand_batch(**fields) -> GroupBatch:
    return make_batch(
        HAND_LOGPS,
        mask=HAND_MASK,
        rewards=np.array([1.0, 0.0]),
        group_ids=np.array([0, 0]),
        old=HAND_OLD,
        **fields,
    )


@pytest.mark.parametrize(
    ("name", "params", "want"),
    [
        ("grpo", {}, (-2.2 / 2 + 0.8) / 2 * A_HAND),
        ("bnpo", {}, -1.4 / 3 * A_HAND),
        ("dapo", {}, -1.48 / 3 * A_HAND),
        ("dr_grpo", {}, (-1.2 - 1.0 + 0.8) * 0.5 / (2 * 2)),  # unscaled A = ±0.5, L_max = T = 2
        ("dr_grpo", {"max_completion_length": 4}, (-1.2 - 1.0 + 0.8) * 0.5 / (2 * 4)),
        # s_0 = sqrt(1.5) → 1.0004, s_1 = 0.5 → 0.9997 (A < 0, so the clipped value is the min).
        ("gspo", {}, (-1.0004 + 0.9997) / 2 * A_HAND),
    ],
)
def test_hand_values(name, params, want):
    assert GROUP_OBJECTIVES[name](hand_batch(), **params).loss.item() == pytest.approx(
        want, rel=1e-12
    )


def test_hand_dapo_num_items():
    out = dapo(hand_batch(num_items_in_batch=10))
    assert out.loss.item() == pytest.approx(-1.48 / 10 * A_HAND, rel=1e-12)


def test_hand_gradient_and_clip_metrics():
    batch = hand_batch()
    out = grpo(batch)
    out.loss.backward()
    # Clipped tokens carry no gradient; the unclipped token (ρ = 1, A = a) gets −a·ρ/(|y|·N).
    want = torch.tensor([[0.0, -A_HAND / 4], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(batch.logps.grad, want, rtol=1e-12, atol=1e-15)
    assert out.metrics["clip_ratio/low_mean"] == pytest.approx(1 / 3)
    assert out.metrics["clip_ratio/high_mean"] == pytest.approx(1 / 3)
    assert out.metrics["clip_ratio/region_mean"] == pytest.approx(2 / 3)
    seq = gspo(hand_batch()).metrics
    assert (
        seq["clip_ratio/low_mean"],
        seq["clip_ratio/high_mean"],
        seq["clip_ratio/region_mean"],
    ) == (
        0.5,
        0.5,
        1.0,
    )


def test_hand_kl_and_bias_correction():
    ref = HAND_LOGPS.copy()
    ref[0, 0] += math.log(2.0)  # k3 = 2 − ln 2 − 1 on that token, 0 elsewhere
    k3 = 1.0 - math.log(2.0)
    out = grpo(hand_batch(ref=ref), beta_kl=0.1)
    assert out.loss.item() == pytest.approx(-0.15 * A_HAND + 0.1 * k3 / 2 / 2, rel=1e-12)
    assert out.metrics["kl"] == pytest.approx(k3 / 3, rel=1e-12)
    corrected = grpo(hand_batch(ref=ref), beta_kl=0.1, kl_bias_correction=True)
    assert corrected.loss.item() == pytest.approx(
        -0.15 * A_HAND + 0.1 * 1.5 * k3 / 2 / 2, rel=1e-12
    )


def test_on_policy_ratio_is_one_with_gradient():
    batch = make_batch(old=None)
    out = grpo(batch)
    adv = advantages_ref(REWARDS, GROUP_IDS)
    # ρ = 1: loss = mean_i(−A_i) over completions that have tokens; gradient −A_i/(|y_i|·N).
    assert out.loss.item() == pytest.approx(-adv.mean(), rel=1e-12, abs=1e-15)
    out.loss.backward()
    want = -adv[:, None] * MASK / MASK.sum(1, keepdims=True) / len(adv)
    np.testing.assert_allclose(batch.logps.grad.numpy(), want, rtol=1e-12, atol=1e-15)
    assert out.metrics["clip_ratio/region_mean"] == 0.0


# ---------------------------------------------------------------------------------------------
# DAPO flags


def test_dapo_dynamic_sampling_drops_equal_reward_groups():
    keep = GROUP_IDS != 9  # group 9 has rewards (0.7, 0.7)
    adv = advantages_ref(REWARDS, GROUP_IDS)
    want = surrogate_ref(
        LOGPS[keep],
        MASK[keep],
        OLD[keep],
        adv[keep],
        aggregation="dapo",
        eps_low=0.2,
        eps_high=0.28,
    )
    assert dapo(make_batch(), dynamic_sampling=True).loss.item() == pytest.approx(want, rel=1e-12)
    assert dapo(make_batch()).loss.item() != pytest.approx(want, rel=1e-6)


def test_dapo_mask_truncated():
    truncated = np.array([False, True, False, False, False, False, True])
    keep = ~truncated
    adv = advantages_ref(REWARDS, GROUP_IDS)  # advantages still use every reward
    want = surrogate_ref(
        LOGPS[keep],
        MASK[keep],
        OLD[keep],
        adv[keep],
        aggregation="dapo",
        eps_low=0.2,
        eps_high=0.28,
    )
    batch = make_batch(truncated=torch.tensor(truncated))
    out = dapo(batch, mask_truncated=True)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    out.loss.backward()
    assert torch.all(batch.logps.grad[torch.tensor(truncated)] == 0)
    with pytest.raises(DmpoError, match=r"batch\.truncated"):
        dapo(make_batch(), mask_truncated=True)


# ---------------------------------------------------------------------------------------------
# Gradients against central finite differences (float64)


@pytest.mark.parametrize("name", list(GROUP_OBJECTIVES))
@pytest.mark.parametrize("with_kl", [False, True])
def test_gradcheck(name, with_kl):
    def loss(logps: torch.Tensor) -> torch.Tensor:
        batch = make_batch(logps, ref=REF if with_kl else None)
        params = {"beta_kl": 0.1, "kl_bias_correction": True} if with_kl else {}
        if name == "gspo":  # wide enough that sequence ratios sit on both sides of the clip
            params.update(epsilon_low=0.05, epsilon_high=0.08)
        return GROUP_OBJECTIVES[name](batch, **params).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Degenerate inputs


def degenerate_batch(dtype: torch.dtype, fill: float) -> GroupBatch:
    """A group of one, a group of equal rewards, an empty and a 1-token completion, filler tokens."""
    logps = torch.full((6, 5), fill, dtype=torch.float64)
    logps[:, 0] = fill - 0.3
    logps[2, 1] = fill - 2.0
    mask = torch.ones(6, 5)
    mask[1] = 0  # empty completion
    mask[3, 1:] = 0  # 1-token completion
    logps[1] = -1e4  # padding filler
    old = logps + 0.1
    old[1] = 0.0  # padding filler that would give exp(+1e4) if it reached the ratio
    return GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=mask.to(dtype),
        rewards=torch.tensor([1.0, 0.0, 0.3, 0.5, 0.5, 2.0]).to(dtype),
        group_ids=torch.tensor([0, 0, 0, 1, 1, 2]),
        old_logps=old.to(dtype),
        ref_logps=(logps + 0.05).to(dtype),
    )


@pytest.mark.parametrize("name", list(GROUP_OBJECTIVES))
@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, -1e4)],
)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, dtype, fill):
    batch = degenerate_batch(dtype, fill)
    out = GROUP_OBJECTIVES[name](batch, beta_kl=0.01)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert batch.logps.grad.dtype == dtype
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.logps.grad).all()
    assert torch.all(batch.logps.grad[1] == 0)  # empty completion
    assert all(math.isfinite(v) for v in out.metrics.values())


def test_group_of_one_and_equal_rewards_have_zero_advantage_and_gradient():
    batch = make_batch(
        LOGPS[:3],
        mask=MASK[:3],
        rewards=np.array([0.4, 1.0, 1.0]),
        group_ids=np.array([0, 1, 1]),
        old=None,
    )
    out = grpo(batch)
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert out.metrics["advantage_abs_mean"] == 0.0
    assert torch.all(batch.logps.grad == 0)


def test_bf16_matches_float32():
    lp32 = torch.tensor(LOGPS, dtype=torch.float32)
    out32 = dapo(make_batch(lp32.clone().requires_grad_(), dtype=torch.float32))
    outbf = dapo(make_batch(lp32.to(torch.bfloat16).requires_grad_(), dtype=torch.bfloat16))
    assert outbf.loss.dtype == torch.float32
    assert outbf.loss.item() == pytest.approx(out32.loss.item(), rel=2e-2, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Registry and errors


def test_registered_with_defaults():
    assert {"grpo", "bnpo", "dapo", "dr_grpo", "gspo"} <= set(objectives.names("group"))
    assert objectives.get("dapo").params["epsilon_high"] == 0.28
    assert objectives.get("dr_grpo").params["scale_rewards"] == "none"
    gspo_params = objectives.get("gspo").params
    assert (gspo_params["epsilon_low"], gspo_params["epsilon_high"]) == (3e-4, 4e-4)
    for name in GROUP_OBJECTIVES:
        spec = objectives.get(name)
        assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary


def test_registry_call_equals_function():
    for name, fn in GROUP_OBJECTIVES.items():
        assert objectives.get(name)(make_batch()).loss.item() == fn(make_batch()).loss.item()


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(DmpoError, match=r"no parameter\(s\) \['epsilon'\].*epsilon_high"):
        objectives.get("grpo")(make_batch(), epsilon=0.1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: grpo(make_batch(), scale_rewards="std"), "scale_rewards"),
        (lambda: grpo(make_batch(), beta_kl=0.1), "ref_logps"),
        (lambda: dr_grpo(make_batch(), max_completion_length=0), "max_completion_length"),
    ],
)
def test_user_errors(call, message):
    with pytest.raises(DmpoError, match=message):
        call()
