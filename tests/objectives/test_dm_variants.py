"""Issue 14: the mechanism behind DMPO's weak mse term, its diagnostics, and the variants.

Hand-computed values (the numbers are worked out in the comments), finite-difference
gradients, and the identities each variant rests on.
"""

from __future__ import annotations

import math

import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives.dm_term import (
    DM_GRADIENT_DIAGNOSTICS,
    RATIO_CAP,
    dm_term,
    gradient_diagnostics,
)
from dmpo.objectives.dmpo import base_phi_gradient, dmpo
from dmpo.objectives.policy_gradient import grpo
from tests.objectives.test_policy_gradient import LOGPS, make_batch

F64 = torch.float64
E = math.e


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ---------------------------------------------------------------------------------------------
# The mechanism: at q uniform, mse = (2/G²)·ce


def test_mse_gradient_times_g_squared_over_two_is_the_ce_gradient_at_uniform_q():
    # One group of G = 4, equal φ (q = 1/4 each), rewards (1, 0, 0, 0), α = 1:
    # p = (e, 1, 1, 1)/(e + 3) = (0.475367, 0.174878 ×3).
    # ce: c = q − p = (−0.225367, 0.075122 ×3).
    # mse: c = (2/G)·q·[(q − p) − Σ q (q − p)] = (2/16)(q − p) since Σ (q − p) = 0:
    #      (−0.0281709, 0.0093903 ×3).
    phi, rewards, groups = t(-1.0, -1.0, -1.0, -1.0), t(1.0, 0.0, 0.0, 0.0), torch.zeros(4, dtype=torch.long)
    ce = dm_term(phi, rewards, groups, alpha=1.0, divergence="ce").coefficients
    mse = dm_term(phi, rewards, groups, alpha=1.0, divergence="mse").coefficients
    p_top, p_rest = E / (E + 3), 1 / (E + 3)
    torch.testing.assert_close(ce, t(0.25 - p_top, *(3 * [0.25 - p_rest])))
    torch.testing.assert_close(mse, t(0.125 * (0.25 - p_top), *(3 * [0.125 * (0.25 - p_rest)])))
    torch.testing.assert_close(mse * 4**2 / 2, ce)
    assert ce[0].item() == pytest.approx(-0.225367, abs=1e-6)
    assert mse[0].item() == pytest.approx(-0.0281709, abs=1e-7)


@pytest.mark.parametrize("group_size", [4, 8, 16])
def test_near_uniform_q_mse_is_ce_direction_shrunk_by_two_over_g_squared(group_size):
    # φ within ±0.02 (q within ~2% of 1/G): the mse coefficients point where the ce ones do
    # (cosine > 0.999) and are 2/G² as large (±3%): at G = 8, 1/32 of the ce term.
    gen = torch.Generator().manual_seed(group_size)
    phi = -1.0 + 0.02 * (2 * torch.rand(group_size, generator=gen, dtype=F64) - 1)
    rewards = torch.rand(group_size, generator=gen, dtype=F64)
    groups = torch.zeros(group_size, dtype=torch.long)
    ce = dm_term(phi, rewards, groups, divergence="ce").coefficients
    mse = dm_term(phi, rewards, groups, divergence="mse").coefficients
    assert torch.nn.functional.cosine_similarity(mse, ce, dim=0).item() > 0.999
    assert (mse.norm() / ce.norm()).item() == pytest.approx(2 / group_size**2, rel=0.03)


def test_far_from_uniform_the_scaled_mse_is_not_ce():
    # q = (0.7, 0.1, 0.1, 0.1): the identity needs q uniform; here mse·G²/2 differs from ce.
    phi = torch.log(t(0.7, 0.1, 0.1, 0.1))
    rewards, groups = t(0.0, 1.0, 0.0, 0.0), torch.zeros(4, dtype=torch.long)
    ce = dm_term(phi, rewards, groups, alpha=1.0, divergence="ce").coefficients
    mse = dm_term(phi, rewards, groups, alpha=1.0, divergence="mse").coefficients
    assert (mse * 8 - ce).abs().max().item() > 0.05


# ---------------------------------------------------------------------------------------------
# Diagnostics


def test_term_diagnostics_hand_values():
    # Group A: φ = (0, log 3) → q = (1/4, 3/4); rewards (1, 0), α = 1 → p = (e, 1)/(e + 1).
    # Group B: φ = (−1, −1, −1) → q uniform; rewards equal → p uniform, zero signal.
    phi = t(0.0, math.log(3), -1.0, -1.0, -1.0)
    rewards = t(1.0, 0.0, 0.5, 0.5, 0.5)
    groups = torch.tensor([0, 0, 1, 1, 1])
    d = dm_term(phi, rewards, groups, alpha=1.0).diagnostics
    pa = torch.tensor([E / (E + 1), 1 / (E + 1)], dtype=F64)
    h_qa = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.562335
    h_pa = -(pa * pa.log()).sum().item()  # 0.582203
    assert d["entropy_q"].item() == pytest.approx((h_qa + math.log(3)) / 2)
    assert d["entropy_p"].item() == pytest.approx((h_pa + math.log(3)) / 2)
    assert d["phi_std"].item() == pytest.approx((math.log(3) / 2 + 0.0) / 2)  # population std
    assert d["max_q"].item() == pytest.approx((0.75 + 1 / 3) / 2)
    assert d["zero_signal_frac"].item() == pytest.approx(0.5)


def test_gradient_diagnostics_hand_values():
    g = gradient_diagnostics(t(3.0, 4.0), t(0.0, 5.0), 2.0)
    assert {k: round(v.item(), 12) for k, v in g.items()} == {
        "dm_grad_norm": 5.0, "base_grad_norm": 5.0, "dm_grad_ratio": 1.0, "dm_grad_share": 0.5,
        "dm_base_cos": 0.8, "dm_lambda": 2.0}
    silent = gradient_diagnostics(t(3.0, 4.0), t(0.0, 0.0), 1.0)  # the base has no signal
    assert silent["dm_grad_ratio"].item() == RATIO_CAP and silent["dm_grad_share"].item() == 1.0
    assert silent["dm_base_cos"].item() == 0.0
    nothing = gradient_diagnostics(t(0.0, 0.0), t(0.0, 0.0), 1.0)
    assert all(math.isfinite(v.item()) for v in nothing.values()) and nothing["dm_grad_ratio"].item() == 0.0


def test_base_phi_gradient_of_grpo_on_policy_is_minus_advantage_over_n():
    # Two groups of two one-token completions, on policy: GRPO's token gradient is −A_k/N per
    # completion (sequence mean, then mean over N = 4). Rewards (1, 0) and (0, 1):
    # A = ±0.5/(0.707107 + 1e-4) = ±0.707007.
    logps = torch.full((4, 1), -1.0, dtype=F64, requires_grad=True)
    batch = make_batch(logps, mask=[[1]] * 4, rewards=[1.0, 0.0, 0.0, 1.0], group_ids=[0, 0, 1, 1], old=None)
    g = base_phi_gradient(grpo(batch).loss, logps, batch.mask)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(g, t(-a, a, a, -a) / 4)


def test_gradient_diagnostics_arrive_with_the_backward_pass():
    batch = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    out = dmpo(batch)
    assert not set(DM_GRADIENT_DIAGNOSTICS) & set(out.metrics)
    out.loss.backward()
    assert set(DM_GRADIENT_DIAGNOSTICS) <= set(out.metrics) and out.metrics["dm_lambda"] == 2.0
    # Without a base, or with dm_share, they are there at once.
    assert set(DM_GRADIENT_DIAGNOSTICS) <= set(dmpo(make_batch(), base="none").metrics)
    assert set(DM_GRADIENT_DIAGNOSTICS) <= set(dmpo(make_batch(), dm_share=1.0).metrics)
    # An engine scaling the loss (1/4 for accumulation) sees the same diagnostics.
    scaled = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    quarter = dmpo(scaled)
    (quarter.loss / 4).backward()
    for key in DM_GRADIENT_DIAGNOSTICS:
        assert quarter.metrics[key] == pytest.approx(out.metrics[key], rel=1e-12), key


def test_dmpo_gradient_diagnostics_match_autograd():
    # ‖λ·c‖ and ‖g_base‖ from the objective equal those from differentiating the loss with and
    # without the DM term and projecting the token gradients on φ (row sums: φ is a mean).
    a = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    out = dmpo(a)
    out.loss.backward()
    b = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    grpo(b).loss.backward()
    base_phi = (b.logps.grad * b.mask).sum(-1)
    dm_phi = ((a.logps.grad - b.logps.grad) * a.mask).sum(-1)
    assert out.metrics["base_grad_norm"] == pytest.approx(base_phi.norm().item(), rel=1e-10)
    assert out.metrics["dm_grad_norm"] == pytest.approx(dm_phi.norm().item(), rel=1e-10)
    cos = (dm_phi @ base_phi / (dm_phi.norm() * base_phi.norm())).item()
    assert out.metrics["dm_base_cos"] == pytest.approx(cos, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Variants


def test_temperature_hand_value():
    # G = 2, φ = (0, 0.1), τ = 0.1 → q = softmax(0, 1) = (0.268941, 0.731059); rewards (1, 0),
    # α = 1 → p = (0.731059, 0.268941). ce: c = (q − p)/τ = (−4.621172, 4.621172).
    term = dm_term(t(0.0, 0.1), t(1.0, 0.0), torch.zeros(2, dtype=torch.long), alpha=1.0,
                   divergence="ce", q_temperature=0.1)
    torch.testing.assert_close(term.coefficients, t(-4.621172, 4.621172), atol=1e-6, rtol=0)
    assert term.diagnostics["max_q"].item() == pytest.approx(E / (E + 1))
    assert term.diagnostics["phi_std"].item() == pytest.approx(0.05)  # of φ itself, not φ/τ


@pytest.mark.parametrize("divergence", ["mse", "ce", "js"])
def test_temperature_is_the_chain_rule_of_scaling_phi(divergence):
    # L(φ; τ) = L(φ/τ; 1), so c(φ; τ) = c(φ/τ; 1)/τ.
    phi, rewards = torch.tensor(LOGPS, dtype=F64).mean(1), t(1.0, 0.0, 0.5, 0.2, 0.9, 0.7, 0.3)
    groups = torch.tensor([4, 4, 4, 1, 1, 9, 9])
    hot = dm_term(phi, rewards, groups, divergence=divergence, q_temperature=0.25)
    plain = dm_term(phi / 0.25, rewards, groups, divergence=divergence)
    torch.testing.assert_close(hot.loss, plain.loss)
    torch.testing.assert_close(hot.coefficients, plain.coefficients / 0.25)


def test_zero_signal_only_hand_value():
    # Group 0 (signal): rewards (1, 0) → no DM. Group 1 (silent): rewards (0.5, 0.5) → p = (½, ½),
    # φ = (0, log 3) → q = (¼, ¾); ce: c = q − p = (−¼, ¼), weight 1 (one contributing group).
    phi = t(-1.0, -2.0, 0.0, math.log(3))
    rewards, groups = t(1.0, 0.0, 0.5, 0.5), torch.tensor([0, 0, 1, 1])
    term = dm_term(phi, rewards, groups, divergence="ce", zero_signal_only=True)
    torch.testing.assert_close(term.coefficients, t(0.0, 0.0, -0.25, 0.25))
    assert term.loss.item() == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)))
    # The complement of skip_zero_signal_groups: together they make the whole term.
    skip = dm_term(phi, rewards, groups, divergence="ce", skip_zero_signal_groups=True, normalize="sample")
    only = dm_term(phi, rewards, groups, divergence="ce", zero_signal_only=True, normalize="sample")
    every = dm_term(phi, rewards, groups, divergence="ce", normalize="sample")
    torch.testing.assert_close(skip.coefficients + only.coefficients, 2 * every.coefficients)


def test_dm_share_sets_the_dm_gradient_to_a_share_of_the_base():
    # ‖λ_eff·c‖ = ρ·‖g_base‖, and the gradient is that of plain dmpo at λ = λ_eff.
    a = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    out = dmpo(a, dm_share=0.5)
    assert out.metrics["dm_grad_norm"] == pytest.approx(0.5 * out.metrics["base_grad_norm"], rel=1e-10)
    assert out.metrics["dm_grad_ratio"] == pytest.approx(0.5, rel=1e-10)
    out.loss.backward()
    b = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    fixed = dmpo(b, lam=out.metrics["dm_lambda"])
    fixed.loss.backward()
    assert out.loss.item() == pytest.approx(fixed.loss.item(), rel=1e-12)
    torch.testing.assert_close(a.logps.grad, b.logps.grad, rtol=1e-12, atol=1e-14)
    # The DM part of the token gradient, projected on φ, is half the base part.
    c = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True))
    grpo(c).loss.backward()
    dm_phi = ((a.logps.grad - c.logps.grad) * a.mask).sum(-1)
    base_phi = (c.logps.grad * c.mask).sum(-1)
    assert dm_phi.norm().item() == pytest.approx(0.5 * base_phi.norm().item(), rel=1e-10)


def test_dm_share_without_gradient_and_without_signal():
    with torch.no_grad():  # evaluation: no base gradient, so no DM part (λ_eff = 0)
        out = dmpo(make_batch(), dm_share=0.5)
    assert out.metrics["dm_lambda"] == 0.0 and out.metrics["dm_grad_norm"] == 0.0
    silent = make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True), rewards=[0.3] * 7)
    out = dmpo(silent, dm_share=0.5)  # GRPO silent → λ_eff = 0, no NaN
    out.loss.backward()
    assert out.metrics["dm_lambda"] == 0.0 and torch.isfinite(silent.logps.grad).all()


@pytest.mark.parametrize("params", [
    {"q_temperature": 0.1}, {"q_temperature": 0.3, "divergence": "js"}, {"length_normalize": False},
    {"zero_signal_only": True, "divergence": "ce"}, {"zero_signal_only": True, "base": "none"},
    {"q_temperature": 0.2, "zero_signal_only": True, "divergence": "mse", "normalize": "sample"},
])
def test_gradcheck_variants(params):
    rewards = [1.0, 0.0, 0.5, 0.4, 0.4, 0.7, 0.7]  # groups 1 and 9 silent, group 4 not

    def loss(logps: torch.Tensor) -> torch.Tensor:
        return dmpo(make_batch(logps, rewards=rewards), **params).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("name", ["dmpo-tau", "dmpo-sum", "dmpo-silent"])
def test_presets_gradcheck(name):
    rewards = [1.0, 0.0, 0.5, 0.4, 0.4, 0.7, 0.7]

    def loss(logps: torch.Tensor) -> torch.Tensor:
        return objectives.get(name)(make_batch(logps, rewards=rewards)).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_variants_move_q_off_uniform():
    # The reason for dmpo-tau and dmpo-sum: on the same batch their q is further from uniform
    # (lower entropy) than the paper's, so their DM gradient is larger.
    outs = [objectives.get(n)(make_batch(torch.tensor(LOGPS, dtype=F64, requires_grad=True)))
            for n in ("dmpo", "dmpo-tau", "dmpo-sum")]
    for out in outs:
        out.loss.backward()  # the gradient diagnostics come with the backward pass
    paper, tau, total = (out.metrics for out in outs)
    assert tau["entropy_q"] < paper["entropy_q"] and total["entropy_q"] < paper["entropy_q"]
    assert tau["dm_grad_norm"] > paper["dm_grad_norm"]


@pytest.mark.parametrize(("params", "message"), [
    ({"q_temperature": 0.0}, "q_temperature must be positive"),
    ({"skip_zero_signal_groups": True, "zero_signal_only": True}, "exclude each other"),
    ({"dm_share": -1.0}, "dm_share must be"),
    ({"dm_share": 0.5, "base": "none"}, "needs a base"),
])
def test_variant_errors(params, message):
    with pytest.raises(DmpoError, match=message):
        dmpo(make_batch(), **params)
