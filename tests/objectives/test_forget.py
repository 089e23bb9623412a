"""Forget objectives: hand-computed values, gradients, degenerate inputs, NPO → GA as β → 0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo.errors import DmpoError
from dmpo.objectives import ForgetBatch, get, names

FORGET_NAMES = ["ga", "npo", "npo_gd", "npo_kl"]

FORGET = [[-1.0, -2.0, -0.5], [-0.3, -1.2]]
REF_FORGET = [[-1.5, -1.5, -1.0], [-0.5, -2.0]]
RETAIN = [[-0.2, -0.9], [-1.1, -0.4, -0.6]]
REF_RETAIN = [[-0.4, -0.7], [-1.0, -0.8, -0.3]]
PAD = 7.0


def _pad(rows: list[list[float]], width: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.full((len(rows), width), PAD, dtype=torch.float64)
    mask = torch.zeros(len(rows), width, dtype=torch.float64)
    for i, row in enumerate(rows):
        values[i, : len(row)] = torch.tensor(row, dtype=torch.float64)
        mask[i, : len(row)] = 1
    return values, mask


def hand_batch() -> ForgetBatch:
    forget, forget_mask = _pad(FORGET)
    retain, retain_mask = _pad(RETAIN)
    return ForgetBatch(
        forget_logps=forget,
        forget_mask=forget_mask,
        ref_forget_logps=_pad(REF_FORGET)[0],
        retain_logps=retain,
        retain_mask=retain_mask,
        ref_retain_logps=_pad(REF_RETAIN)[0],
    )


def logsig(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


def np_npo(beta):
    ratio = np.array([sum(a) - sum(b) for a, b in zip(FORGET, REF_FORGET)])
    return np.mean(-(2 / beta) * logsig(-beta * ratio))


RETAIN_TOKENS = [x for row in RETAIN for x in row]
RETAIN_RATIOS = [x - r for a, b in zip(RETAIN, REF_RETAIN) for x, r in zip(a, b)]

EXPECTED = {
    ("ga", ()): np.mean([sum(r) for r in FORGET]),
    ("ga", (("nll_form", "token_mean"),)): np.mean([x for r in FORGET for x in r]),
    ("npo", ()): np_npo(0.1),
    ("npo", (("beta", 0.5),)): np_npo(0.5),
    ("npo_gd", ()): np_npo(0.1) - np.mean(RETAIN_TOKENS),
    ("npo_gd", (("beta", 0.5), ("retain_weight", 0.25))): np_npo(0.5)
    - 0.25 * np.mean(RETAIN_TOKENS),
    ("npo_kl", ()): np_npo(0.1) + np.mean([math.exp(d) - d - 1 for d in RETAIN_RATIOS]),
    ("npo_kl", (("retain_weight", 2.0),)): np_npo(0.1)
    + 2.0 * np.mean([math.exp(d) - d - 1 for d in RETAIN_RATIOS]),
}


@pytest.mark.parametrize(("name", "params"), list(EXPECTED), ids=str)
def test_value_on_hand_example(name, params):
    out = get(name)(hand_batch(), **dict(params))
    assert out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(EXPECTED[(name, params)], rel=1e-12)
    assert all(isinstance(v, float) for v in out.metrics.values())


def test_npo_kl_retain_term_is_zero_when_policy_equals_reference():
    batch = hand_batch()
    batch.ref_retain_logps = batch.retain_logps.clone()
    out = get("npo_kl")(batch)
    assert out.metrics["retain/kl"] == 0.0
    assert out.loss.item() == pytest.approx(np_npo(0.1), rel=1e-12)


@pytest.mark.parametrize("name", FORGET_NAMES)
def test_gradient_matches_finite_differences(name):
    base = hand_batch()

    def loss(forget, retain):
        batch = ForgetBatch(
            forget,
            base.forget_mask,
            base.ref_forget_logps,
            retain,
            base.retain_mask,
            base.ref_retain_logps,
        )
        return get(name)(batch, beta=0.5).loss if name != "ga" else get(name)(batch).loss

    inputs = (
        base.forget_logps.clone().requires_grad_(),
        base.retain_logps.clone().requires_grad_(),
    )
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_npo_tends_to_gradient_ascent_as_beta_goes_to_zero():
    def grad(name, **params):
        batch = hand_batch()
        batch.forget_logps.requires_grad_()
        out = get(name)(batch, **params)
        out.loss.backward()
        return out.loss.item(), batch.forget_logps.grad

    _, ga_grad = grad("ga")
    ratio = np.mean([sum(a) - sum(b) for a, b in zip(FORGET, REF_FORGET)])
    for beta, tol in ((1e-2, 1e-2), (1e-4, 1e-4)):
        loss, npo_grad = grad("npo", beta=beta)
        torch.testing.assert_close(npo_grad, ga_grad, rtol=tol, atol=tol)
        # −(2/β)·log σ(−βx) = 2·log 2/β + x + O(β x²)
        assert loss - 2 * math.log(2) / beta == pytest.approx(ratio, abs=10 * tol)


def _degenerate(kind: str) -> ForgetBatch:
    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)

    def logps(n, t):
        return -torch.rand(n, t, generator=gen).to(dtype) * 3

    forget, retain = logps(3, 4), logps(2, 5)
    forget_mask, retain_mask = torch.ones(3, 4, dtype=dtype), torch.ones(2, 5, dtype=dtype)
    if kind == "one_token":
        forget_mask[:, 1:] = 0
        retain_mask[:, 1:] = 0
    if kind == "empty":
        forget_mask[0] = 0
        retain_mask[:] = 0
    if kind == "very_negative":
        forget[0] = -1e4
        retain[1] = -1e4
    return ForgetBatch(
        forget.requires_grad_(),
        forget_mask,
        logps(3, 4),
        retain.requires_grad_(),
        retain_mask,
        logps(2, 5),
    )


@pytest.mark.parametrize("kind", ["one_token", "empty", "very_negative", "bf16"])
@pytest.mark.parametrize("name", FORGET_NAMES)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, kind):
    batch = _degenerate(kind)
    out = get(name)(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.forget_logps.grad).all()
    if batch.retain_logps.grad is not None:
        assert torch.isfinite(batch.retain_logps.grad).all()
    assert all(math.isfinite(v) for v in out.metrics.values())


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("npo", "ref_forget_logps"),
        ("npo_gd", "retain_logps"),
        ("npo_kl", "retain_logps"),
        ("npo_kl", "ref_retain_logps"),
    ],
)
def test_missing_input_names_the_field(name, field):
    batch = hand_batch()
    setattr(batch, field, None)
    with pytest.raises(DmpoError, match=field):
        get(name)(batch)


@pytest.mark.parametrize("name", FORGET_NAMES)
def test_unknown_parameter_raises(name):
    with pytest.raises(DmpoError, match="no parameter"):
        get(name)(hand_batch(), not_a_parameter=1.0)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [("ga", {"nll_form": "mean"}, "nll_form"), ("npo", {"beta": 0.0}, "beta")],
)
def test_bad_parameter_values_raise(name, params, match):
    with pytest.raises(DmpoError, match=match):
        get(name)(hand_batch(), **params)


def test_every_forget_objective_is_registered():
    assert names(kind="forget") == FORGET_NAMES
    for name in FORGET_NAMES:
        spec = get(name)
        assert spec.kind == "forget" and spec.paper and spec.oracle and spec.summary
    assert get("npo").params == {"beta": 0.1}
    assert get("npo_kl").params == {"beta": 0.1, "retain_weight": 1.0}
