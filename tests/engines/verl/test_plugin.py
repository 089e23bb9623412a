"""The plugin: registration on ``import verl``, the registered losses and estimator against
``dmpo.objectives`` on the same tensors, and verl's built-in losses/estimators as oracles of ours."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

verl = pytest.importorskip("verl")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo import core_algos  # noqa: E402
from verl.workers.config import ActorConfig, PolicyLossConfig  # noqa: E402

from dmpo import objectives  # noqa: E402
from dmpo.engines.verl import plugin  # noqa: E402
from dmpo.engines.verl.fold import dm_advantage_shift, token_weights  # noqa: E402
from dmpo.errors import DmpoError  # noqa: E402
from dmpo.objectives.common import group_advantages, sequence_logps  # noqa: E402
from dmpo.objectives.dm_term import dm_term  # noqa: E402

TOL = dict(atol=1e-6, rtol=1e-6)
LENGTHS = [5, 3, 1, 4, 2, 5]
GROUP_IDS = torch.tensor([0, 0, 0, 1, 1, 1])
REWARDS = torch.tensor([1.0, 0.1, 0.5, 0.1, 1.0, 0.3], dtype=torch.float64)
UIDS = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)


def tensors(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.arange(5)[None] < torch.tensor(LENGTHS)[:, None]).to(torch.float64)
    logps = (-torch.rand(6, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    old = (logps.detach() + 0.3 * torch.randn(6, 5, generator=gen, dtype=torch.float64)).clamp(max=0)
    advantages = group_advantages(REWARDS, GROUP_IDS, scale_rewards="group", eps=1e-6)
    return logps, old, mask, advantages


def actor(**kwargs) -> ActorConfig:
    return ActorConfig(strategy="fsdp", rollout_n=3, ppo_micro_batch_size_per_gpu=6, **kwargs)


def verl_loss(name, logps, old, mask, advantages, loss_agg_mode, config):
    fn = core_algos.get_policy_loss_fn(name)
    token_adv = advantages.unsqueeze(-1) * mask
    loss, _ = fn(old_log_prob=old, log_prob=logps, advantages=token_adv, response_mask=mask.bool(),
                 loss_agg_mode=loss_agg_mode, config=config)
    return loss


def ours(name, logps, old, mask, advantages, **params):
    batch = objectives.GroupBatch(logps=logps, mask=mask, rewards=REWARDS, group_ids=GROUP_IDS,
                                  old_logps=old, advantages=advantages)
    return objectives.get(name)(batch, **params).loss


def assert_same(a_loss, b_loss, logps):
    (ga,) = torch.autograd.grad(a_loss, logps)
    (gb,) = torch.autograd.grad(b_loss, logps)
    torch.testing.assert_close(a_loss.detach().to(torch.float64), b_loss.detach().to(torch.float64), **TOL)
    torch.testing.assert_close(ga, gb, **TOL)
    assert float(ga.abs().max()) > 1e-3  # a gradient to compare


def test_import_verl_registers_dmpo_without_importing_it_or_trl():
    code = ("import sys, verl\n"
            "from verl.trainer.ppo import core_algos as c\n"
            "print('dmpo' in c.ADV_ESTIMATOR_REGISTRY, 'dmpo_vespo' in c.POLICY_LOSS_REGISTRY,"
            " 'dmpo.engines.verl.plugin' in sys.modules, 'trl' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "True", "True", "False"], out.stderr[-2000:]


def test_the_core_imports_without_trl():
    code = ("import sys, dmpo.objectives, dmpo.npbench, dmpo.engines.verl.fold\n"
            "print(sorted(m for m in ('trl', 'verl', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_dmpo_vespo_equals_the_core_vespo():
    logps, old, mask, adv = tensors()
    # verl's token-mean over one batch is the core's dapo sum / the batch's tokens.
    assert_same(verl_loss("dmpo_vespo", logps, old, mask, adv, "token-mean", actor()),
                ours("vespo", logps, old, mask, adv), logps)


@pytest.mark.parametrize(("verl_name", "mode", "config", "name", "params"), [
    ("vanilla", "seq-mean-token-mean", {}, "grpo", {}),
    ("vanilla", "token-mean", {"clip_ratio_high": 0.28}, "bnpo", {"epsilon_high": 0.28}),
    ("gspo", "seq-mean-token-mean", {"clip_ratio_low": 3e-4, "clip_ratio_high": 4e-4}, "gspo", {}),
    ("gspo", "seq-mean-token-sum", {"clip_ratio_low": 3e-4, "clip_ratio_high": 4e-4}, "luspo", {}),
    ("cispo", "token-mean", {"clip_ratio_low": 1.0, "clip_ratio_high": 4.0}, "cispo",
     {"epsilon_high": 5.0}),
    ("gpg", "token-mean", {}, "gpg", {"alpha_scaling": False}),
])
def test_verl_builtin_losses_equal_ours(verl_name, mode, config, name, params):
    logps, old, mask, adv = tensors(seed=1)
    if verl_name == "gpg":
        old = logps.detach()
    assert_same(verl_loss(verl_name, logps, old, mask, adv, mode, actor(**config)),
                ours(name, logps, old, mask, adv, **params), logps)


def test_verl_grpo_and_gpg_advantages_equal_ours():
    mask = torch.ones(6, 3)
    token_rewards = torch.zeros(6, 3, dtype=torch.float64)
    token_rewards[:, -1] = REWARDS
    grpo, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, UIDS, epsilon=1e-6)
    torch.testing.assert_close(grpo[:, 0], group_advantages(REWARDS, GROUP_IDS, scale_rewards="group",
                                                            eps=1e-6), **TOL)
    # verl's GPG: α·(r − mean_g r) with α = B / (rewards ≠ 0); no reward is 0 and no group is
    # degenerate here, so α = 1 as in ours (B / (B − M), M = completions of degenerate groups).
    gpg, _ = core_algos.compute_gpg_outcome_advantage(token_rewards, mask, UIDS)
    torch.testing.assert_close(gpg[:, 0], group_advantages(REWARDS, GROUP_IDS, scale_rewards="none",
                                                           eps=1e-6), **TOL)


def test_verl_gpg_alpha_counts_non_zero_rewards_ours_counts_degenerate_groups():
    rewards = torch.tensor([0.0, 1.0, 0.5, 0.2, 0.2, 0.2], dtype=torch.float64)  # group b: equal
    token_rewards = torch.zeros(6, 2, dtype=torch.float64)
    token_rewards[:, -1] = rewards
    gpg, _ = core_algos.compute_gpg_outcome_advantage(token_rewards, torch.ones(6, 2), UIDS)
    centred = group_advantages(rewards, GROUP_IDS, scale_rewards="none", eps=1e-6)
    torch.testing.assert_close(gpg[:, 0], centred * 6 / 5, **TOL)  # verl: B / (rewards ≠ 0)
    from dmpo.objectives.gpg import valid_sample_scale
    batch = objectives.GroupBatch(logps=torch.zeros(6, 2), mask=torch.ones(6, 2), rewards=rewards,
                                  group_ids=GROUP_IDS)
    assert float(valid_sample_scale(batch, torch.float64)) == 2.0  # ours: B / (B − 3)


def test_token_weights_are_the_weights_of_verl_agg_loss():
    _, _, mask, _ = tensors()
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "token-sum"):
        losses = torch.zeros(6, 5, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(core_algos.agg_loss(losses, mask, mode), losses)
        torch.testing.assert_close(grad[:, 0], token_weights(mask, mode), **TOL)


def test_the_fold_gives_the_dm_gradient_to_verl_vanilla_loss_at_ratio_one():
    # vanilla PPO-clip at ratio 1 with A + δ has the gradient of grpo + λ·L_DM (here by hand:
    # the DM part alone, base advantages 0, is λ·Σ_k c_k·∂φ_k).
    logps, _, mask, _ = tensors(seed=2)
    old = logps.detach()
    shift, dm = dm_advantage_shift(old, mask, REWARDS, GROUP_IDS, lam=2.0,
                                   loss_agg_mode="seq-mean-token-mean")
    phi = sequence_logps(logps, mask, average=True)
    wanted = 2.0 * (dm.coefficients * phi).sum()
    got = verl_loss("vanilla", logps, old, mask, shift, "seq-mean-token-mean", actor())
    (g_want,) = torch.autograd.grad(wanted, logps)
    (g_got,) = torch.autograd.grad(got, logps)
    torch.testing.assert_close(g_got, g_want, **TOL)
    expected = dm_term(phi.detach(), REWARDS, GROUP_IDS).coefficients
    torch.testing.assert_close(dm.coefficients, expected, **TOL)


def test_the_estimator_needs_the_batch_log_probs_and_checks_its_parameters():
    mask = torch.ones(6, 3)
    token_rewards = torch.zeros(6, 3)
    with pytest.raises(DmpoError, match="old_log_probs"):
        plugin.compute_dmpo_advantage(token_rewards, mask, index=UIDS, config=None)
    with pytest.raises(DmpoError, match="no parameter"):
        plugin.dmpo_params(OmegaConf.create({"dmpo": {"lamda": 2.0}}))
    with pytest.raises(DmpoError, match="base"):
        plugin.dmpo_params(OmegaConf.create({"dmpo": {"base": "ppo"}}))
    assert plugin.dmpo_params(OmegaConf.create({"dmpo": {"lam": 0.5}}))["lam"] == 0.5


def test_base_none_is_the_dm_shift_alone_and_lam_zero_is_verl_grpo():
    _, old, mask, _ = tensors()
    token_rewards = torch.zeros(6, 5, dtype=torch.float64)
    token_rewards[torch.arange(6), torch.tensor(LENGTHS) - 1] = REWARDS
    pure, _ = plugin.dmpo_advantages(token_rewards, mask, UIDS, old, base="none")
    shift, _ = dm_advantage_shift(old, mask, REWARDS, GROUP_IDS, lam=2.0,
                                  loss_agg_mode="seq-mean-token-mean")
    torch.testing.assert_close(pure, shift.unsqueeze(-1) * mask, **TOL)
    grpo_only, _ = plugin.dmpo_advantages(token_rewards, mask, UIDS, old, lam=0.0)
    grpo, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, UIDS)
    torch.testing.assert_close(grpo_only, grpo, **TOL)


def test_verl_clip_cov_and_kl_cov_equal_ours():
    logps, old, mask, adv = tensors(seed=4)
    adv = adv * 3  # covariances of order 1: several tokens in (lb, ub)
    policy = {"clip_cov_ratio": 0.3, "clip_cov_lb": 0.05, "clip_cov_ub": 5.0}
    config = actor(policy_loss=PolicyLossConfig(loss_mode="clip_cov", **policy))
    torch.manual_seed(7)  # both draw the candidates' permutation from torch's global generator
    theirs = verl_loss("clip_cov", logps, old, mask, adv, "token-mean", config)
    torch.manual_seed(7)
    mine = ours("clip_cov", logps, old, mask, adv, seed=None, **policy)
    assert_same(theirs, mine, logps)
    plain = ours("bnpo", logps, old, mask, adv)
    assert abs(float(plain) - float(mine)) > 1e-4  # tokens were selected

    policy = {"kl_cov_ratio": 0.2, "ppo_kl_coef": 0.5}
    config = actor(policy_loss=PolicyLossConfig(loss_mode="kl_cov", **policy))
    assert_same(verl_loss("kl_cov", logps, old, mask, adv, "token-mean", config),
                ours("kl_cov", logps, old, mask, adv, **policy), logps)
