"""DMPO: values against numpy, closed-form gradients, the coefficient form, presets, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.dmpo import dm_coefficients, dmpo
from dmpo.objectives.policy_gradient import BASES, grpo
from tests.objectives.test_policy_gradient import GROUP_IDS, LOGPS, MASK, OLD, REWARDS, make_batch

F64 = torch.float64
ALPHA = 1 / 15
DM_METRICS = {"dm_loss", "max_p", "max_q", "entropy_q", "entropy_p", "phi_std", "zero_signal_frac",
              "dm_grad_norm", "base_grad_norm", "dm_grad_ratio", "dm_grad_share", "dm_base_cos", "dm_lambda"}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def groups_of(group_ids: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(group_ids == g) for g in np.unique(group_ids)]


def phi_ref(logps: np.ndarray, mask: np.ndarray, length_normalize: bool = True) -> np.ndarray:
    total = (logps * mask).sum(1)
    return total / np.maximum(mask.sum(1), 1) if length_normalize else total


def zscore_ref(rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    adv = np.zeros_like(rewards)
    for idx in groups_of(group_ids):
        r = rewards[idx]
        adv[idx] = (r - r.mean()) / ((r.std(ddof=1) if len(r) > 1 else 0.0) + 1e-4)
    return adv


def dm_ref(phi, z, group_ids, *, alpha=ALPHA, divergence="mse", skip=False, normalize="group"):
    """L_DM from the formulas in dmpo/objectives/dm_term.py, one group at a time."""
    values, weights = [], []
    for idx in groups_of(group_ids):
        p, q = softmax(z[idx] / alpha), softmax(phi[idx])
        if divergence == "mse":
            value = np.mean((p - q) ** 2)
        elif divergence == "ce":
            value = -np.sum(p * np.log(q))
        else:
            pc, qc, mc = (np.maximum(v, 1e-10) for v in (p, q, (p + q) / 2))
            value = 0.5 * np.sum(p * np.log(pc / mc)) + 0.5 * np.sum(q * np.log(qc / mc))
        if skip and z[idx].max() - z[idx].min() <= 1e-5:
            continue
        values.append(value)
        weights.append(1.0 if normalize == "group" else len(idx))
    if not values:
        return 0.0
    return float(np.dot(values, weights) / np.sum(weights))


def grpo_loss(batch: GroupBatch) -> float:
    return grpo(batch).loss.item()


# ---------------------------------------------------------------------------------------------
# Values


def test_hand_value_one_group():
    # One group of three 1-token completions: φ = lp = (−1, −2, −3), rewards (1, 0, 0).
    batch = make_batch(
        np.array([[-1.0], [-2.0], [-3.0]]),
        mask=np.ones((3, 1)),
        rewards=np.array([1.0, 0.0, 0.0]),
        group_ids=np.zeros(3),
        old=None,
    )
    q = np.exp([-1.0, -2.0, -3.0]) / np.exp([-1.0, -2.0, -3.0]).sum()  # 0.6652, 0.2447, 0.0900
    p = np.array([math.exp(15), 1.0, 1.0]) / (math.exp(15) + 2)  # 1 − 6e-7, 3e-7, 3e-7
    mse = ((p - q) ** 2).sum() / 3
    out = dmpo(batch)
    # On-policy GRPO over one full group: ρ = 1, loss = −mean(A) = 0.
    assert out.loss.item() == pytest.approx(2.0 * mse, rel=1e-12)
    assert out.metrics["dm_loss"] == pytest.approx(mse, rel=1e-12)
    assert out.metrics["max_p"] == pytest.approx(p[0], rel=1e-12)
    assert out.metrics["max_q"] == pytest.approx(q[0], rel=1e-12)
    assert out.metrics["entropy_q"] == pytest.approx(-(q * np.log(q)).sum(), rel=1e-12)
    assert out.metrics["zero_signal_frac"] == 0.0
    ce = dmpo(batch, divergence="ce", lam=1.0).metrics["dm_loss"]
    assert ce == pytest.approx(-(p * np.log(q)).sum(), rel=1e-12)


@pytest.mark.parametrize("divergence", ["mse", "ce", "js"])
@pytest.mark.parametrize("normalize", ["group", "sample"])
@pytest.mark.parametrize("target_from", ["reward", "advantage"])
@pytest.mark.parametrize("skip", [False, True])
def test_dm_loss_matches_numpy(divergence, normalize, target_from, skip):
    phi = phi_ref(LOGPS, MASK)
    z = REWARDS if target_from == "reward" else zscore_ref(REWARDS, GROUP_IDS)
    want = dm_ref(phi, z, GROUP_IDS, divergence=divergence, skip=skip, normalize=normalize)
    params = {
        "divergence": divergence,
        "normalize": normalize,
        "target_from": target_from,
        "skip_zero_signal_groups": skip,
    }
    out = dmpo(make_batch(), base="none", lam=3.0, **params)
    assert out.metrics["dm_loss"] == pytest.approx(want, rel=1e-12)
    assert out.loss.item() == pytest.approx(3.0 * want, rel=1e-12)
    assert out.metrics["zero_signal_frac"] == pytest.approx(1 / 3)  # group 9: rewards (0.7, 0.7)
    with_base = dmpo(make_batch(), lam=3.0, **params)
    assert with_base.loss.item() == pytest.approx(grpo_loss(make_batch()) + 3.0 * want, rel=1e-12)


def test_sum_of_log_likelihoods_and_group_vs_sample_normalisation():
    phi = phi_ref(LOGPS, MASK, length_normalize=False)
    out = dmpo(make_batch(), base="none", length_normalize=False)
    assert out.metrics["dm_loss"] == pytest.approx(dm_ref(phi, REWARDS, GROUP_IDS), rel=1e-12)
    # Unequal group sizes (3, 2, 2): the two normalisations differ; equal sizes: they agree.
    group = dmpo(make_batch(), base="none").metrics["dm_loss"]
    sample = dmpo(make_batch(), base="none", normalize="sample").metrics["dm_loss"]
    assert group != pytest.approx(sample, rel=1e-6)
    full = {"rewards": REWARDS[:6], "group_ids": np.array([0, 0, 1, 1, 2, 2]), "old": None}
    batch = make_batch(LOGPS[:6], mask=MASK[:6], **full)
    group = dmpo(batch, base="none").metrics["dm_loss"]
    sample = dmpo(make_batch(LOGPS[:6], mask=MASK[:6], **full), base="none", normalize="sample")
    assert group == pytest.approx(sample.metrics["dm_loss"], rel=1e-12)


def test_advantage_target_uses_batch_advantages():
    adv = np.array([2.0, -1.0, 0.0, 0.3, -0.3, 1.0, -1.0])
    phi = phi_ref(LOGPS, MASK)
    out = dmpo(make_batch(advantages=torch.tensor(adv)), base="none", target_from="advantage")
    assert out.metrics["dm_loss"] == pytest.approx(dm_ref(phi, adv, GROUP_IDS), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Gradients


def one_token_batch(phi: np.ndarray, rewards: np.ndarray, group_ids: np.ndarray) -> GroupBatch:
    """1-token completions, so φ_k = lp_k and ∂L/∂lp = ∂L/∂φ."""
    return make_batch(
        phi[:, None], mask=np.ones((len(phi), 1)), rewards=rewards, group_ids=group_ids, old=None
    )


PHI = np.array([-0.3, -1.1, -0.6, -2.0, -0.4, -0.9, -1.3])


def test_mse_gradient_closed_form():
    batch = one_token_batch(PHI, REWARDS, GROUP_IDS)
    dmpo(batch, base="none", lam=1.0).loss.backward()
    want = np.zeros_like(PHI)
    groups = groups_of(GROUP_IDS)
    for idx in groups:
        p, q = softmax(REWARDS[idx] / ALPHA), softmax(PHI[idx])
        g = len(idx)
        want[idx] = (2 / g) * q * ((q - p) - np.sum(q * (q - p))) / len(groups)
    np.testing.assert_allclose(batch.logps.grad[:, 0].numpy(), want, rtol=1e-10, atol=1e-15)
    coefficients = dm_coefficients(batch.logps, batch.mask, batch.rewards, batch.group_ids)
    np.testing.assert_allclose(coefficients.numpy(), want, rtol=1e-10, atol=1e-15)


def test_ce_gradient_is_q_minus_p():
    idx = GROUP_IDS == 4
    batch = one_token_batch(PHI[idx], REWARDS[idx], GROUP_IDS[idx])
    dmpo(batch, base="none", lam=1.0, divergence="ce").loss.backward()
    want = softmax(PHI[idx]) - softmax(REWARDS[idx] / ALPHA)
    np.testing.assert_allclose(batch.logps.grad[:, 0].numpy(), want, rtol=1e-10, atol=1e-15)


def test_length_normalised_gradient_spreads_over_tokens():
    batch = make_batch(old=None)
    dmpo(batch, base="none", lam=1.0).loss.backward()
    c = dm_coefficients(batch.logps, batch.mask, batch.rewards, batch.group_ids).numpy()
    want = c[:, None] * MASK / MASK.sum(1, keepdims=True)
    np.testing.assert_allclose(batch.logps.grad.numpy(), want, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("divergence", ["mse", "ce", "js"])
@pytest.mark.parametrize("normalize", ["group", "sample"])
@pytest.mark.parametrize("base", ["grpo", "gspo", "none"])
def test_gradcheck(divergence, normalize, base):
    def loss(logps: torch.Tensor) -> torch.Tensor:
        params = {"epsilon_low": 0.05, "epsilon_high": 0.08} if base == "gspo" else {}
        out = dmpo(
            make_batch(logps), divergence=divergence, normalize=normalize, base=base, **params
        )
        return out.loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Properties


def test_q_invariant_to_shifting_phi_within_a_group():
    shifted = LOGPS.copy()
    shifted[GROUP_IDS == 4] += 1.7  # every token of every completion: φ shifts by 1.7
    a, b = make_batch(old=None), make_batch(shifted, old=None)
    out_a, out_b = dmpo(a, base="none"), dmpo(b, base="none")
    for key in DM_METRICS:
        assert out_a.metrics[key] == pytest.approx(out_b.metrics[key], rel=1e-12, abs=1e-15)
    out_a.loss.backward()
    out_b.loss.backward()
    torch.testing.assert_close(a.logps.grad, b.logps.grad, rtol=1e-10, atol=1e-14)


def test_p_invariant_to_shifting_rewards_within_a_group():
    shifted = REWARDS.copy()
    shifted[GROUP_IDS == 1] -= 5.0
    a, b = dmpo(make_batch(), base="none"), dmpo(make_batch(rewards=shifted), base="none")
    for key in DM_METRICS:
        assert a.metrics[key] == pytest.approx(b.metrics[key], rel=1e-12, abs=1e-15)


def test_equal_rewards_grpo_gradient_zero_dm_gradient_not():
    # One group, all rewards equal, policy log-likelihoods differ.
    batch = one_token_batch(np.array([-0.2, -1.0, -2.5, -0.7]), np.full(4, 0.5), np.zeros(4))
    grpo(batch).loss.backward()
    assert torch.all(batch.logps.grad == 0)
    batch.logps.grad = None
    dmpo(batch).loss.backward()
    grad = batch.logps.grad[:, 0].numpy()
    assert np.abs(grad).max() > 1e-3
    # Gradient descent pulls φ together: the most likely completion goes down, the least up.
    assert grad[0] > 0 and grad[2] < 0
    assert grad.sum() == pytest.approx(0.0, abs=1e-15)  # a shift of all φ changes nothing


def test_lambda_zero_equals_base():
    for name, fn in BASES.items():
        extra = {"max_completion_length": 9} if name == "dr_grpo" else {}
        a, b = make_batch(ref=LOGPS - 0.1), make_batch(ref=LOGPS - 0.1)
        ours = dmpo(a, lam=0.0, base=name, beta_kl=0.05, **extra)
        theirs = fn(b, beta_kl=0.05, **extra)
        assert ours.loss.item() == theirs.loss.item(), name
        ours.loss.backward()
        theirs.loss.backward()
        torch.testing.assert_close(a.logps.grad, b.logps.grad, rtol=0, atol=0)
        assert theirs.metrics.items() <= ours.metrics.items()


def test_base_defaults_follow_the_base():
    # ε_high is None in dmpo: dapo's own 0.28 applies, so the value differs from ε_high = 0.2.
    own = dmpo(make_batch(), lam=0.0, base="dapo").loss.item()
    assert own == BASES["dapo"](make_batch()).loss.item()
    assert own != dmpo(make_batch(), lam=0.0, base="dapo", epsilon_high=0.2).loss.item()


# ---------------------------------------------------------------------------------------------
# Coefficient form


COEF_FLAGS = [
    {},
    {"divergence": "ce"},
    {"divergence": "js", "normalize": "sample"},
    {"target_from": "advantage", "skip_zero_signal_groups": True, "normalize": "sample"},
    {"length_normalize": False},
]


def batch_coefficients(batch: GroupBatch, **flags) -> torch.Tensor:
    return dm_coefficients(batch.logps, batch.mask, batch.rewards, batch.group_ids, **flags)


@pytest.mark.parametrize("flags", COEF_FLAGS)
def test_coefficient_form_equals_group_form(flags):
    # Coefficients computed at the current policy: the same loss and gradient, on- or off-policy.
    a, b = make_batch(), make_batch()
    group = dmpo(a, **flags)
    coef = dmpo(b, dm_form="coefficient", coefficients=batch_coefficients(b, **flags), **flags)
    assert coef.loss.item() == pytest.approx(group.loss.item(), rel=1e-12)
    assert coef.metrics == pytest.approx(group.metrics, rel=1e-12)
    group.loss.backward()
    coef.loss.backward()
    torch.testing.assert_close(a.logps.grad, b.logps.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("flags", COEF_FLAGS)
@pytest.mark.parametrize("base", ["grpo", "none"])
def test_gradient_matches_autograd_through_the_softmax(flags, base):
    """The fused gradient equals differentiating L_base + λ·L_DM by autograd, token by token."""
    batch = make_batch()
    out = dmpo(batch, base=base, lam=1.7, **flags)
    out.loss.backward()

    logps = torch.tensor(LOGPS, requires_grad=True)
    mask = torch.tensor(MASK)
    phi = (logps * mask).sum(1)
    if flags.get("length_normalize", True):
        phi = phi / mask.sum(1).clamp(min=1)
    rewards = torch.tensor(REWARDS)
    z = torch.tensor(zscore_ref(REWARDS, GROUP_IDS)) if flags.get("target_from") else rewards
    values, weights = [], []
    for idx in groups_of(GROUP_IDS):
        idx_t = torch.tensor(idx)
        p, log_q = torch.softmax(z[idx_t] / ALPHA, 0), torch.log_softmax(phi[idx_t], 0)
        q = log_q.exp()
        divergence = flags.get("divergence", "mse")
        if divergence == "mse":
            value = ((p - q) ** 2).mean()
        elif divergence == "ce":
            value = -(p * log_q).sum()
        else:
            m = (p + q) / 2
            value = 0.5 * (p * (p.log() - m.log())).sum() + 0.5 * (q * (log_q - m.log())).sum()
        if flags.get("skip_zero_signal_groups") and float(z[idx_t].max() - z[idx_t].min()) <= 1e-5:
            continue
        values.append(value)
        weights.append(1.0 if flags.get("normalize", "group") == "group" else float(len(idx)))
    dm = sum(w * v for w, v in zip(weights, values)) / sum(weights)
    reference = 1.7 * dm
    if base == "grpo":
        reference = reference + grpo(make_batch(logps)).loss
    reference.backward()
    assert out.loss.item() == pytest.approx(reference.item(), rel=1e-12)
    torch.testing.assert_close(batch.logps.grad, logps.grad, rtol=1e-10, atol=1e-14)


def test_dm_gradient_follows_the_loss_scale():
    # Engines scale the loss (1/accumulation steps) or add other terms: the DM gradient must follow.
    a, b = make_batch(), make_batch()
    dmpo(a).loss.backward()
    (0.25 * dmpo(b).loss + b.logps.sum()).backward()
    torch.testing.assert_close(b.logps.grad, 0.25 * a.logps.grad + 1.0, rtol=1e-12, atol=1e-14)


def test_stale_coefficients_are_an_approximation_off_policy():
    # Coefficients from the sampling policy (old_logps) differ from those of the current one.
    batch = make_batch()
    stale = batch_coefficients(make_batch(OLD))
    fresh = batch_coefficients(batch)
    assert not torch.allclose(stale, fresh)


def test_coefficients_survive_groups_split_across_micro_batches():
    full = make_batch(old=None)
    dmpo(full, base="none").loss.backward()
    coefficients = dm_coefficients(full.logps, full.mask, full.rewards, full.group_ids)

    # Shuffle rows and split them into two micro-batches, scattering every group (as TRL does).
    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    for rows in (torch.tensor([5, 0, 3, 2]), torch.tensor([1, 6, 4])):
        micro = GroupBatch(
            logps=logps[rows],
            mask=torch.tensor(MASK)[rows],
            rewards=torch.tensor(REWARDS)[rows],
            group_ids=torch.tensor(GROUP_IDS)[rows],
        )
        out = objectives.get("dmpo-coef")(micro, base="none", coefficients=coefficients[rows])
        out.loss.backward()
    torch.testing.assert_close(logps.grad, full.logps.grad, rtol=1e-10, atol=1e-14)

    # Without the coefficients each micro-batch's softmax sees part of a group: a wrong gradient.
    wrong = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    for rows in (torch.tensor([5, 0, 3, 2]), torch.tensor([1, 6, 4])):
        micro = GroupBatch(
            logps=wrong[rows],
            mask=torch.tensor(MASK)[rows],
            rewards=torch.tensor(REWARDS)[rows],
            group_ids=torch.tensor(GROUP_IDS)[rows],
        )
        dmpo(micro, base="none").loss.backward()
    assert not torch.allclose(wrong.grad, full.logps.grad)


def test_dm_coefficients_is_detached_and_works_under_no_grad():
    batch = make_batch()
    with torch.no_grad():
        c = dm_coefficients(
            batch.logps, batch.mask, batch.rewards, batch.group_ids, divergence="js"
        )
    assert not c.requires_grad and c.shape == (7,)
    assert torch.all(c[torch.tensor(GROUP_IDS == 9)] != 0)  # equal rewards: φ still pulled together


# ---------------------------------------------------------------------------------------------
# Presets, registry, errors


PRESETS = {
    "dmpo": {},
    "dmpo-recipe": {
        "target_from": "advantage",
        "normalize": "sample",
        "skip_zero_signal_groups": True,
        "epsilon_low": 0.2,
        "epsilon_high": 0.28,
    },
    "dmpo-ce": {"divergence": "ce"},
    "dmpo-pure": {"base": "none"},
    "dmpo-coef": {"dm_form": "coefficient"},
    "dmpo-tau": {"q_temperature": 0.1},
    "dmpo-sum": {"length_normalize": False},
    "dmpo-share": {"dm_share": 0.5},
    "dmpo-silent": {"divergence": "ce", "zero_signal_only": True, "lam": 1.0},
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_equals_flag_combination(name):
    a, b = make_batch(), make_batch()
    extra = {"coefficients": batch_coefficients(a)} if name == "dmpo-coef" else {}
    preset = objectives.get(name)(a, **extra)
    flags = dmpo(b, **PRESETS[name], **extra)
    assert preset.loss.item() == flags.loss.item()
    assert preset.metrics == flags.metrics
    preset.loss.backward()
    flags.loss.backward()
    torch.testing.assert_close(a.logps.grad, b.logps.grad, rtol=0, atol=0)
    spec = objectives.get(name)
    assert spec.kind == "group" and "2605.19461" in spec.paper
    assert spec.params["lam"] == PRESETS[name].get("lam", 2.0) and spec.params["alpha"] == pytest.approx(1 / 15)


def test_recipe_clip_differs_from_paper_clip():
    # OLD has ratios in (1.2, 1.28]: the recipe's ε_high = 0.28 must matter.
    paper_clip = dmpo(make_batch(), **{**PRESETS["dmpo-recipe"], "epsilon_high": 0.2})
    assert objectives.get("dmpo-recipe")(make_batch()).loss.item() != paper_clip.loss.item()


def test_metric_names():
    out = dmpo(make_batch())
    out.loss.backward()  # the gradient diagnostics arrive with the backward pass
    assert DM_METRICS | {"clip_ratio/region_mean", "advantage_abs_mean"} <= set(out.metrics)
    assert set(objectives.get("dmpo-pure")(make_batch()).metrics) == DM_METRICS


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: objectives.get("dmpo")(make_batch(), lamda=1.0),
            r"no parameter\(s\) \['lamda'\].*'lam'",
        ),
        (lambda: dmpo(make_batch(), divergence="kl"), "divergence must be one of"),
        (lambda: dmpo(make_batch(), normalize="batch"), "normalize must be one of"),
        (lambda: dmpo(make_batch(), target_from="rank"), "target_from must be one of"),
        (lambda: dmpo(make_batch(), base="ppo"), "base must be one of"),
        (lambda: dmpo(make_batch(), dm_form="split"), "dm_form must be one of"),
        (lambda: dmpo(make_batch(), alpha=0.0), "alpha must be positive"),
        (lambda: dmpo(make_batch(), max_completion_length=8), r"base 'grpo' has no parameter\(s\)"),
        (lambda: dmpo(make_batch(), base="none", epsilon_high=0.3), "base='none'"),
        (lambda: dmpo(make_batch(), coefficients=torch.zeros(7)), "dm_form='coefficient'"),
        (lambda: objectives.get("dmpo-coef")(make_batch()), r"coefficients=dm_coefficients\("),
        (lambda: dmpo(make_batch(), dm_form="coefficient", coefficients=torch.zeros(3)), "shape"),
    ],
)
def test_user_errors(call, message):
    with pytest.raises(DmpoError, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# Degenerate inputs


def degenerate_batch(dtype: torch.dtype, fill: float) -> GroupBatch:
    """A group of one, a group of equal rewards, an empty and a 1-token completion."""
    logps = torch.full((6, 5), fill, dtype=F64)
    logps[:, 0] = fill - 0.3
    logps[2, 1:] = fill - 2.0
    logps[4] -= 0.7
    mask = torch.ones(6, 5)
    mask[1] = 0  # empty: φ = 0
    mask[3, 1:] = 0  # 1 token
    logps[1] = 0.0
    return GroupBatch(
        logps=logps.to(dtype).requires_grad_(),
        mask=mask.to(dtype),
        rewards=torch.tensor([1.0, 0.0, 0.3, 0.5, 0.5, 2.0]).to(dtype),
        group_ids=torch.tensor([0, 0, 0, 1, 1, 2]),
        old_logps=(logps + 0.1).to(dtype),
    )


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("divergence", ["mse", "ce", "js"])
@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, -1e4)],
)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, divergence, dtype, fill):
    batch = degenerate_batch(dtype, fill)
    extra = {}
    if name == "dmpo-coef":
        extra["coefficients"] = batch_coefficients(batch, divergence=divergence)
    out = objectives.get(name)(batch, divergence=divergence, **extra)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert torch.isfinite(out.loss)
    assert batch.logps.grad.dtype == dtype
    assert torch.isfinite(batch.logps.grad).all()
    assert torch.all(batch.logps.grad[1] == 0)  # empty completion: no tokens, no gradient
    assert all(math.isfinite(v) for v in out.metrics.values())
    assert out.metrics["zero_signal_frac"] == pytest.approx(2 / 3)  # group of one and equal group


def test_degenerate_dm_gradients_where_expected():
    batch = degenerate_batch(F64, -0.5)
    dmpo(batch, base="none").loss.backward()
    grad = batch.logps.grad
    assert torch.all(grad[5] == 0)  # group of one: q = p = 1
    assert torch.all(grad[3:5].abs().sum(1) > 0)  # equal rewards, different φ: pulled together
    all_skipped = degenerate_batch(F64, -0.5)
    out = dmpo(all_skipped, base="none", skip_zero_signal_groups=True, target_from="advantage")
    out.loss.backward()
    assert out.metrics["dm_loss"] > 0  # group 0 still has signal
    assert torch.all(all_skipped.logps.grad[3:] == 0)


def test_bf16_close_to_float32():
    lp = torch.tensor(LOGPS, dtype=torch.float32)
    out32 = dmpo(make_batch(lp.clone().requires_grad_(), dtype=torch.float32))
    outbf = dmpo(make_batch(lp.to(torch.bfloat16).requires_grad_(), dtype=torch.bfloat16))
    assert outbf.loss.dtype == torch.float32
    assert outbf.loss.item() == pytest.approx(out32.loss.item(), rel=2e-2, abs=1e-3)
