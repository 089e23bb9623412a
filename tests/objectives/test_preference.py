"""Pair objectives: hand-computed values, gradients, degenerate inputs, neutral settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo.errors import DmpoError
from dmpo.objectives import PairBatch, get, names

PAIR_NAMES = [
    "asft",
    "dpo",
    "flex_dpo",
    "focal_dpo",
    "hinge",
    "ipo",
    "ld_dpo",
    "madpo",
    "rpo",
    "simpo",
    "tgdpo",
    "weighted_dpo",
]

# Two pairs; the real tokens of each completion (padding is added by ``_pad``).
CHOSEN = [[-1.0, -2.0, -0.5], [-0.3, -1.2]]
REJECTED = [[-2.0, -1.0], [-0.7, -0.4, -2.5]]
REF_CHOSEN = [[-1.5, -1.5, -1.0], [-0.5, -1.0]]
REF_REJECTED = [[-1.0, -1.5], [-0.6, -0.9, -2.0]]
GUIDE_CHOSEN = [[-1.0, -1.0, -1.5], [-0.2, -1.1]]
GUIDE_REJECTED = [[-1.4, -1.2], [-0.9, -0.6, -1.5]]
WEIGHT = [0.5, 2.0]
REWARD_MARGIN = [0.5, 3.0]
PAD = 7.0  # a value that must never reach a loss


def _pad(rows: list[list[float]], width: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.full((len(rows), width), PAD, dtype=torch.float64)
    mask = torch.zeros(len(rows), width, dtype=torch.float64)
    for i, row in enumerate(rows):
        values[i, : len(row)] = torch.tensor(row, dtype=torch.float64)
        mask[i, : len(row)] = 1
    return values, mask


def hand_batch(requires_grad: bool = False) -> PairBatch:
    chosen, chosen_mask = _pad(CHOSEN)
    rejected, rejected_mask = _pad(REJECTED)
    return PairBatch(
        chosen_logps=chosen.requires_grad_(requires_grad),
        chosen_mask=chosen_mask,
        rejected_logps=rejected.requires_grad_(requires_grad),
        rejected_mask=rejected_mask,
        ref_chosen_logps=_pad(REF_CHOSEN)[0],
        ref_rejected_logps=_pad(REF_REJECTED)[0],
        weight=torch.tensor(WEIGHT, dtype=torch.float64),
        reward_margin=torch.tensor(REWARD_MARGIN, dtype=torch.float64),
        guide_chosen_logps=_pad(GUIDE_CHOSEN)[0],
        guide_rejected_logps=_pad(GUIDE_REJECTED)[0],
    )


# numpy references, written from the formulas in the module docstrings on the unpadded token lists.
def logsig(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


def sums(rows):
    return np.array([sum(r) for r in rows])


def avgs(rows):
    return np.array([sum(r) / len(r) for r in rows])


DELTA_W = sums(CHOSEN) - sums(REF_CHOSEN)
DELTA_L = sums(REJECTED) - sums(REF_REJECTED)


def np_dpo(beta, eps=0.0):
    h = beta * (DELTA_W - DELTA_L)
    return np.mean(-(1 - eps) * logsig(h) - eps * logsig(-h))


def np_ld_dpo(beta, alpha):
    def weighted(rows, other):
        out = []
        for row, o in zip(rows, other):
            m = min(len(row), len(o))
            out.append(sum(row[:m]) + alpha * sum(row[m:]))
        return np.array(out)

    dw = weighted(CHOSEN, REJECTED) - weighted(REF_CHOSEN, REJECTED)
    dl = weighted(REJECTED, CHOSEN) - weighted(REF_REJECTED, CHOSEN)
    return np.mean(-logsig(beta * (dw - dl)))


def np_tgdpo(beta, alpha):
    def side(lp, ref, guide, sign):
        return np.array(
            [
                sum(
                    beta * (1 + sign * alpha * beta * (g - r)) * (x - r) for x, r, g in zip(a, b, c)
                )
                for a, b, c in zip(lp, ref, guide)
            ]
        )

    chosen = side(CHOSEN, REF_CHOSEN, GUIDE_CHOSEN, +1)
    rejected = side(REJECTED, REF_REJECTED, GUIDE_REJECTED, -1)
    return np.mean(-logsig(chosen - rejected))


def np_madpo_weight(margin, c_max=2.0, c_min=0.5, lam=1.0, tau=2.0):
    margin = np.asarray(margin, dtype=np.float64)
    c = c_min + (c_max - c_min) / (
        1 + (c_max - 1) / (1 - c_min) * np.exp(lam * (np.abs(margin) - tau))
    )
    w = np.exp(logsig(c * margin)) / np.exp(logsig(margin))
    return np.where(margin <= -tau, 1.0, w)


EXPECTED = {
    ("dpo", ()): np_dpo(0.5),
    ("dpo", (("label_smoothing", 0.2),)): np_dpo(0.5, 0.2),
    ("ipo", ()): np.mean(
        (avgs(CHOSEN) - avgs(REF_CHOSEN) - (avgs(REJECTED) - avgs(REF_REJECTED)) - 1 / (2 * 0.5))
        ** 2
    ),
    ("hinge", ()): np.mean(np.maximum(0.0, 1 - 0.5 * (DELTA_W - DELTA_L))),
    ("simpo", ()): np.mean(-logsig(2.0 * (avgs(CHOSEN) - avgs(REJECTED)) - 0.5)),
    ("rpo", (("eta", 0.3),)): np_dpo(0.5) + 0.3 * -(sum(sums(CHOSEN)) / 5),
    ("rpo", (("eta", 0.3), ("nll_form", "sum_beta"))): np_dpo(0.5)
    + 0.3 * 0.5 * -np.mean(sums(CHOSEN)),
    ("ld_dpo", ()): np_ld_dpo(0.5, 0.5),
    ("ld_dpo", (("alpha", 0.0),)): np_ld_dpo(0.5, 0.0),
    ("asft", ()): np.mean(-2 * avgs(CHOSEN) - np.log(1 - np.exp(avgs(REJECTED)))),
    ("asft", (("lam", 0.5),)): np.mean(
        -1.5 * avgs(CHOSEN) - 0.5 * np.log(1 - np.exp(avgs(REJECTED)))
    ),
    ("madpo", ()): np.mean(np_madpo_weight(REWARD_MARGIN) * -logsig(0.5 * (DELTA_W - DELTA_L))),
    ("tgdpo", ()): np_tgdpo(0.5, 0.5),
    ("focal_dpo", ()): np.mean(
        -((1 - np.exp(logsig(0.5 * (DELTA_W - DELTA_L)))) ** 2) * logsig(0.5 * (DELTA_W - DELTA_L))
    ),
    ("weighted_dpo", ()): np.mean(np.array(WEIGHT) * -logsig(0.5 * (DELTA_W - DELTA_L))),
    ("flex_dpo", (("beta_chosen", 0.3), ("beta_rejected", 0.8))): np.mean(
        -logsig(0.3 * DELTA_W - 0.8 * DELTA_L)
    ),
}


@pytest.mark.parametrize(("name", "params"), list(EXPECTED), ids=str)
def test_value_on_hand_example(name, params):
    kwargs = dict(params)
    if name not in ("simpo", "asft"):
        kwargs["beta"] = 0.5
    out = get(name)(hand_batch(), **kwargs)
    assert out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(EXPECTED[(name, params)], rel=1e-12)


def test_dpo_metrics_match_trl_definitions():
    out = get("dpo")(hand_batch(), beta=0.5)
    chosen, rejected = 0.5 * DELTA_W, 0.5 * DELTA_L
    assert out.metrics["rewards/chosen"] == pytest.approx(chosen.mean())
    assert out.metrics["rewards/rejected"] == pytest.approx(rejected.mean())
    assert out.metrics["rewards/accuracies"] == pytest.approx(np.mean(chosen > rejected))
    assert out.metrics["rewards/margins"] == pytest.approx(np.mean(chosen - rejected))
    assert all(isinstance(v, float) for v in out.metrics.values())


def test_madpo_weight_shape_of_curve():
    from dmpo.objectives.preference import madpo_weight

    margins = torch.tensor([-3.0, -2.0, -0.5, 0.5, 2.0, 6.0], dtype=torch.float64)
    weight = madpo_weight(margins, c_max=2.0, c_min=0.5, lam=1.0, tau=2.0)
    np.testing.assert_allclose(weight.numpy(), np_madpo_weight(margins.numpy()), rtol=1e-12)
    assert weight[0] == 1.0 and weight[1] == 1.0  # Δr ≤ −τ
    assert weight[4].item() == pytest.approx(1.0)  # c(τ) = 1
    assert weight[3] > 1.0  # hard pair (small margin): amplified
    assert weight[5] < 1.0  # easy pair (large margin): damped


def _grad_inputs(name: str):
    params = {} if name in ("simpo", "asft") else {"beta": 0.5}
    base = hand_batch()

    def loss(chosen, rejected):
        batch = PairBatch(
            chosen,
            base.chosen_mask,
            rejected,
            base.rejected_mask,
            base.ref_chosen_logps,
            base.ref_rejected_logps,
            base.weight,
            base.reward_margin,
            base.guide_chosen_logps,
            base.guide_rejected_logps,
        )
        return get(name)(batch, **params).loss

    inputs = (
        base.chosen_logps.clone().requires_grad_(),
        base.rejected_logps.clone().requires_grad_(),
    )
    return loss, inputs


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_gradient_matches_finite_differences(name):
    loss, inputs = _grad_inputs(name)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_padding_gets_no_gradient(name):
    loss, (chosen, rejected) = _grad_inputs(name)
    loss(chosen, rejected).backward()
    assert torch.all(chosen.grad[1, 2] == 0) and torch.all(rejected.grad[0, 2] == 0)


def _degenerate(kind: str) -> PairBatch:
    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    n, t = 3, 4
    gen = torch.Generator().manual_seed(0)

    def logps():
        return -torch.rand(n, t, generator=gen).to(dtype) * 3

    mask_w = torch.ones(n, t, dtype=dtype)
    mask_l = torch.ones(n, t, dtype=dtype)
    chosen, rejected = logps(), logps()
    if kind == "one_token":
        mask_w[:, 1:] = 0
        mask_l[:, 1:] = 0
    if kind == "empty":
        mask_w[0] = 0
        mask_l[1] = 0
        mask_w[2] = 0
        mask_l[2] = 0
    if kind == "very_negative":
        chosen = torch.full((n, t), -1e4, dtype=dtype)
        rejected[1] = -1e4
    return PairBatch(
        chosen.requires_grad_(),
        mask_w,
        rejected.requires_grad_(),
        mask_l,
        logps(),
        logps(),
        weight=torch.ones(n, dtype=dtype),
        reward_margin=torch.tensor([0.1, 1.0, -5.0], dtype=dtype),
        guide_chosen_logps=logps(),
        guide_rejected_logps=logps(),
    )


@pytest.mark.parametrize("kind", ["one_token", "empty", "very_negative", "bf16"])
@pytest.mark.parametrize("name", PAIR_NAMES)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, kind):
    batch = _degenerate(kind)
    out = get(name)(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss).all()
    assert torch.isfinite(batch.chosen_logps.grad).all()
    assert torch.isfinite(batch.rejected_logps.grad).all()
    assert all(math.isfinite(v) for v in out.metrics.values())


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_batch_without_pairs_gives_zero_loss_with_graph(name):
    empty = torch.zeros(0, 3, dtype=torch.float64)
    batch = PairBatch(
        empty.clone().requires_grad_(),
        empty,
        empty.clone().requires_grad_(),
        empty,
        empty,
        empty,
        torch.zeros(0, dtype=torch.float64),
        torch.zeros(0, dtype=torch.float64),
        empty,
        empty,
    )
    out = get(name)(batch)
    assert out.loss.item() == 0.0
    out.loss.backward()


NEUTRAL = {
    "weighted_dpo": {},  # the hand batch's weights are replaced by ones below
    "focal_dpo": {"gamma": 0.0},
    "ld_dpo": {"alpha": 1.0},
    "tgdpo": {"alpha": 0.0},
    "flex_dpo": {"beta_chosen": 0.5, "beta_rejected": 0.5},
    "madpo": {"c_max": 1.0},
    "rpo": {"eta": 0.0},
}


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_neutral_setting_equals_dpo(name):
    def run(objective, **params):
        batch = hand_batch(requires_grad=True)
        batch.weight = torch.ones(2, dtype=torch.float64)
        out = get(objective)(batch, beta=0.5, **params)
        out.loss.backward()
        return out.loss, batch.chosen_logps.grad, batch.rejected_logps.grad

    expected = run("dpo")
    actual = run(name, **NEUTRAL[name])
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-14)


def test_madpo_margin_below_minus_tau_equals_dpo():
    batch = hand_batch()
    batch.reward_margin = torch.tensor([-2.0, -7.5], dtype=torch.float64)
    assert get("madpo")(batch, beta=0.5).loss.item() == pytest.approx(np_dpo(0.5), rel=1e-12)


def test_asft_equals_its_odds_form():
    chosen, rejected = avgs(CHOSEN), avgs(REJECTED)

    def odds(a):
        return a - np.log(1 - np.exp(a))

    lam = 0.7
    odds_form = -chosen - lam * (logsig(odds(chosen)) + logsig(-odds(rejected)))
    assert get("asft")(hand_batch(), lam=lam).loss.item() == pytest.approx(
        np.mean(odds_form), rel=1e-12
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_asft_gradient_is_finite_for_rejected_completions_near_probability_one(dtype):
    rejected = torch.tensor([[-1e-3, -1e-3], [-1e-7, 0.0], [-0.5, -0.9]], dtype=dtype)
    rejected.requires_grad_()
    chosen = torch.full((3, 2), -0.5, dtype=dtype, requires_grad=True)
    mask = torch.ones(3, 2, dtype=dtype)
    out = get("asft")(PairBatch(chosen, mask, rejected, mask))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(rejected.grad).all()


def test_simpo_ignores_the_reference():
    batch = hand_batch()
    batch.ref_chosen_logps = batch.ref_rejected_logps = None
    assert get("simpo")(batch).loss.item() == pytest.approx(EXPECTED[("simpo", ())], rel=1e-12)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("dpo", "ref_chosen_logps"),
        ("ipo", "ref_rejected_logps"),
        ("rpo", "ref_chosen_logps"),
        ("tgdpo", "guide_chosen_logps"),
        ("tgdpo", "guide_rejected_logps"),
        ("madpo", "reward_margin"),
        ("weighted_dpo", "weight"),
    ],
)
def test_missing_input_names_the_field(name, field):
    batch = hand_batch()
    setattr(batch, field, None)
    with pytest.raises(DmpoError, match=field):
        get(name)(batch)


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_unknown_parameter_raises(name):
    with pytest.raises(DmpoError, match="no parameter"):
        get(name)(hand_batch(), not_a_parameter=1.0)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("rpo", {"nll_form": "mean"}, "nll_form"),
        ("dpo", {"label_smoothing": 1.0}, "label_smoothing"),
        ("madpo", {"c_min": 1.0}, "c_min"),
        ("madpo", {"c_max": 0.9}, "c_max"),
    ],
)
def test_bad_parameter_values_raise(name, params, match):
    with pytest.raises(DmpoError, match=match):
        get(name)(hand_batch(), **params)


def test_every_pair_objective_is_registered_with_paper_and_oracle():
    assert names(kind="pair") == PAIR_NAMES
    for name in PAIR_NAMES:
        spec = get(name)
        assert spec.kind == "pair" and spec.paper and spec.oracle and spec.summary
    assert get("simpo").params["beta"] == 2.0
    assert get("simpo").params["gamma_beta_ratio"] == 0.25
    assert get("ld_dpo").params["alpha"] == 0.5
    assert get("focal_dpo").params["gamma"] == 2.0
    assert get("madpo").params == {"beta": 0.1, "c_max": 2.0, "c_min": 0.5, "lam": 1.0, "tau": 2.0}
