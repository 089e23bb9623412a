"""Which group objectives may see part of a group (``ObjectiveSpec.needs_whole_groups``).

The marks are checked against the objectives themselves: an objective marked as computable on
part of a group gives the same loss and gradient when each group of the batch is cut in two
(the halves get their own group ids, as the rows of one micro-batch of a split group look to it),
given the batch's advantages and, for the DMPO family, its coefficients; an objective that needs
whole groups gives another gradient.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dmpo import objectives
from dmpo.objectives import GroupBatch, dm_coefficients

F64 = torch.float64
SPLITTABLE = {
    "grpo", "bnpo", "dapo", "dr_grpo", "gspo", "luspo", "cispo", "sapo", "vespo",
    "clip_cov", "kl_cov", "flowrl", "dgpo", "dmpo-coef",
}  # fmt: skip
DM_OBJECTIVES = {"dmpo", "dmpo-recipe", "dmpo-ce", "dmpo-pure", "dmpo-coef"}
EXTRA = {"passk": {"k": 2}, "dgpo": {"vocab_size": 50}, "clip_cov": {"clip_cov_ratio": 0.2, "clip_cov_lb": -1e9,
         "clip_cov_ub": 1e9}, "kl_cov": {"kl_cov_ratio": 0.2}}  # fmt: skip


def batch() -> GroupBatch:
    gen = torch.Generator().manual_seed(0)
    n, t = 8, 5
    logps = -torch.rand(n, t, generator=gen, dtype=F64) * 3
    mask = torch.ones(n, t, dtype=F64)
    mask[1, 3:] = 0
    mask[6, 2:] = 0
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=F64)
    group_ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    advantages = torch.randn(n, generator=gen, dtype=F64)
    return GroupBatch(
        logps=logps, mask=mask, rewards=rewards, group_ids=group_ids,
        old_logps=logps + 0.1 * torch.randn(n, t, generator=gen, dtype=F64),
        ref_logps=logps + 0.2 * torch.randn(n, t, generator=gen, dtype=F64), advantages=advantages,
        entropies=torch.rand(n, t, generator=gen, dtype=F64),
        hellinger=torch.rand(n, t, generator=gen, dtype=F64) * 0.1,
        log_z=torch.full((n,), 0.3, dtype=F64), num_items_in_batch=30.0,
    )  # fmt: skip


def loss_and_gradient(name: str, data: GroupBatch, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    logps = data.logps.clone().requires_grad_(True)
    out = objectives.get(name)(dataclasses.replace(data, logps=logps), **params)
    (grad,) = torch.autograd.grad(out.loss, logps)
    return out.loss.detach(), grad


@pytest.mark.parametrize("name", objectives.names("group"))
def test_every_group_objective_says_whether_it_needs_whole_groups(name):
    spec = objectives.get(name)
    assert hasattr(spec.fn, "whole_groups"), f"{name}: no whole_groups mark (an explicit decision)"
    params = {"dm_form": "coefficient"} if name in DM_OBJECTIVES else {}
    reason = spec.needs_whole_groups(**params)
    assert (reason is None) == (name in SPLITTABLE | DM_OBJECTIVES), reason
    if name in DM_OBJECTIVES - {"dmpo-coef"}:
        assert "softmax over each whole group" in spec.needs_whole_groups()


@pytest.mark.parametrize("name", objectives.names("group"))
def test_the_marks_agree_with_the_objectives_on_groups_cut_in_two(name):
    data = batch()
    params = dict(EXTRA.get(name, {}))
    if name in DM_OBJECTIVES:
        # Coefficients over the whole groups, as an engine computes them where groups are whole.
        spec = objectives.get(name).params
        keys = ("alpha", "target_from", "divergence", "skip_zero_signal_groups", "normalize")
        params |= {"dm_form": "coefficient", "coefficients": dm_coefficients(
            data.logps, data.mask, data.rewards, data.group_ids, advantages=data.advantages,
            length_normalize=spec["length_normalize"], **{k: spec[k] for k in keys})}  # fmt: skip
    halves = dataclasses.replace(data, group_ids=torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    whole_loss, whole_grad = loss_and_gradient(name, data, params)
    cut_loss, cut_grad = loss_and_gradient(name, halves, params)
    same = torch.allclose(whole_grad, cut_grad, rtol=1e-12, atol=1e-12)
    reason = objectives.get(name).needs_whole_groups(**params)
    assert same == (reason is None), reason
    if reason is None and name not in DM_OBJECTIVES:  # DMPO's value holds L_DM of the batch's groups
        torch.testing.assert_close(cut_loss, whole_loss, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("dapo", {"dynamic_sampling": True}, "dynamic_sampling"),
        ("gpg", {}, "alpha_scaling=False"),
        ("dmpo", {"dm_form": "coefficient", "base": "dapo", "dynamic_sampling": True}, "its base 'dapo'"),
    ],
)
def test_parameters_decide_for_some_objectives(name, params, match):
    spec = objectives.get(name)
    assert match in spec.needs_whole_groups(**params)
    relaxed = {**params, "dynamic_sampling": False} if "dynamic_sampling" in params else {"alpha_scaling": False}
    assert spec.needs_whole_groups(**relaxed) is None
