"""Bad numbers never poison an objective: non-finite inputs are clear errors, padding never
contributes whatever it holds, and non-finite parameters are refused."""

from __future__ import annotations

import math

import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import ForgetBatch, GroupBatch, PairBatch

GROUP = [name for name in objectives.names("group") if name not in ("dgpo", "flowrl")]


def group_batch(**overrides) -> GroupBatch:
    torch.manual_seed(0)
    mask = torch.ones(6, 5)
    mask[:, 3:] = 0  # padding in the last two positions
    values = {
        "logps": (-torch.rand(6, 5, dtype=torch.float64)).requires_grad_(True),
        "mask": mask.double(),
        "rewards": torch.tensor([1.0, 0.0, 0.5, 0.2, 0.9, 0.1], dtype=torch.float64),
        "group_ids": torch.tensor([0, 0, 0, 1, 1, 1]),
    }
    values.update(overrides)
    return GroupBatch(**values)


def params_for(name: str) -> dict:
    if name == "passk":
        return {"k": 2}
    if name == "dmpo-coef":
        return {"coefficients": torch.linspace(-0.1, 0.1, 6, dtype=torch.float64)}
    return {}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("field", ["rewards", "advantages"])
def test_non_finite_rewards_or_advantages_are_a_clear_error(field, bad):
    values = torch.tensor([1.0, 0.0, bad, 0.2, 0.9, 0.1], dtype=torch.float64)
    with pytest.raises(DmpoError, match=f"{field} holds NaN or ±inf"):
        group_batch(**{field: values})


def test_an_empty_batch_is_a_clear_error():
    with pytest.raises(DmpoError, match="no completions"):
        GroupBatch(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("name", GROUP)
@pytest.mark.parametrize("pad", [-float("inf"), float("nan"), -1e4])
def test_padding_never_contributes(name, pad):
    clean = group_batch()
    dirty_logps = clean.logps.detach().clone()
    dirty_logps[:, 3:] = pad
    dirty_logps.requires_grad_(True)
    dirty = group_batch(logps=dirty_logps, old_logps=clean.logps.detach(), ref_logps=clean.logps.detach())
    clean = group_batch(logps=clean.logps, old_logps=clean.logps.detach(), ref_logps=clean.logps.detach())
    out_clean = objectives.get(name)(clean, **params_for(name))
    out_dirty = objectives.get(name)(dirty, **params_for(name))
    assert math.isfinite(out_dirty.loss.item())
    assert out_dirty.loss.item() == pytest.approx(out_clean.loss.item(), rel=1e-12, abs=1e-12)
    (grad_dirty,) = torch.autograd.grad(out_dirty.loss, dirty_logps, allow_unused=True)
    (grad_clean,) = torch.autograd.grad(out_clean.loss, clean.logps, allow_unused=True)
    if grad_clean is not None:
        assert torch.isfinite(grad_dirty).all()
        torch.testing.assert_close(grad_dirty, grad_clean)


@pytest.mark.parametrize("name", ["dmpo", "grpo", "dmpo-ce", "gpg"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters_are_refused(name, bad):
    param = "lam" if name.startswith("dmpo") else ("epsilon_low" if name == "grpo" else "alpha")
    spec = objectives.get(name)
    if param not in spec.params:
        param = next(k for k, v in spec.params.items() if isinstance(v, float))
    with pytest.raises(DmpoError, match=f"parameter {param} must be finite"):
        spec(group_batch(), **{param: bad})


def test_dm_alpha_nan_is_refused_inside_the_dm_term():
    phi = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(DmpoError, match="alpha must be positive"):
        objectives.dm_term(phi, torch.ones(4), torch.tensor([0, 0, 1, 1]), alpha=float("nan"))


@pytest.mark.parametrize("field", ["weight", "reward_margin"])
def test_non_finite_pair_weights_are_a_clear_error(field):
    lp = -torch.rand(2, 3)
    with pytest.raises(DmpoError, match=f"{field} holds NaN"):
        PairBatch(lp, torch.ones(2, 3), lp, torch.ones(2, 3), **{field: torch.tensor([1.0, float("nan")])})


def test_non_finite_forget_logps_at_real_tokens_are_a_clear_error_but_padding_is_not():
    lp = -torch.rand(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    padded = lp.clone()
    padded[0, 2] = float("nan")
    ForgetBatch(padded, mask, ref_forget_logps=lp)  # NaN in padding: fine
    real = lp.clone()
    real[1, 2] = float("nan")
    with pytest.raises(DmpoError, match="forget_logps holds NaN or ±inf at real tokens"):
        ForgetBatch(real, mask, ref_forget_logps=lp)
