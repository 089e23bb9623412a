"""DMPO on verl is exact under verl's own batching (issue 13, the point of the verl engine).

One update runs through verl 0.9.1's own code: ``compute_advantage`` with the ``dmpo`` estimator
on the driver's whole batch, ``RayPPOTrainer._balance_batch`` (reorders rows across ranks by
length), the equal split over data-parallel ranks, ``left_right_2_no_padding`` and
``prepare_micro_batches`` with dynamic batch sizing (repacks each rank's rows by tokens), and
``ppo_loss`` with the vanilla PPO-clip policy loss per micro-batch; gradients are summed over a
rank's micro-batches and averaged over ranks (as FSDP does). The parameters after one SGD step
must equal those after one whole-batch step on ``dmpo.objectives``' ``dmpo`` loss. A DM term
computed per micro-batch, as the public verl recipe does, must not.
"""

from __future__ import annotations

import copy
import types

import pytest

verl = pytest.importorskip("verl")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo.ray_trainer import RayPPOTrainer, compute_advantage  # noqa: E402
from verl.utils import tensordict_utils as tu  # noqa: E402
from verl.workers.config import ActorConfig  # noqa: E402
from verl.workers.engine.utils import prepare_micro_batches  # noqa: E402
from verl.workers.utils.losses import ppo_loss  # noqa: E402
from verl.workers.utils.padding import left_right_2_no_padding  # noqa: E402

from dmpo import objectives  # noqa: E402
from dmpo.objectives.common import masked_mean, sequence_logps  # noqa: E402
from dmpo.objectives.dm_term import dm_term  # noqa: E402
from tests.engines.verl.helpers import BigramPolicy, make_batch  # noqa: E402

LAM, ALPHA, LR, GROUP = 2.0, 1 / 15, 0.5, 4
# verl's loss_agg_mode and the dmpo base with the same average of the token losses.
BASES = {"seq-mean-token-mean": "grpo", "token-mean": "bnpo"}


def advantages(batch, estimator: str, loss_agg_mode: str):
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True,
                               "dmpo": {"lam": LAM, "alpha": ALPHA, "loss_agg_mode": loss_agg_mode}})
    return compute_advantage(batch, adv_estimator=estimator, num_repeat=GROUP, config=config)


def balance(batch, ranks: int) -> None:
    """verl's own ``_balance_batch`` (the trainer method) with ``ranks`` data-parallel ranks."""
    trainer = types.SimpleNamespace(_get_dp_size=lambda group, role: ranks, actor_rollout_wg=None,
                                    config=None)
    RayPPOTrainer._balance_batch(trainer, batch, metrics={})


def verl_step(policy, batch, *, loss_agg_mode, ranks, max_tokens=None, micro_batch_size=None,
              naive_dm=False):
    """One optimiser step through verl's update path (module docstring); returns the new policy
    and the number of micro-batches per rank."""
    policy = copy.deepcopy(policy)
    dynamic = micro_batch_size is None
    config = ActorConfig(strategy="fsdp", rollout_n=GROUP, use_dynamic_bsz=dynamic,
                         ppo_micro_batch_size_per_gpu=micro_batch_size,
                         loss_agg_mode=loss_agg_mode, clip_ratio=0.2)
    total_tokens = int(batch.batch["response_mask"].sum())
    grads = [torch.zeros_like(p) for p in policy.parameters()]
    counts = []
    for chunk in batch.chunk(ranks):
        data = left_right_2_no_padding(chunk.to_tensordict())
        tu.assign_non_tensor(data, use_dynamic_bsz=dynamic, dp_size=ranks,
                             batch_num_tokens=total_tokens, global_batch_size=len(batch))
        if dynamic:
            tu.assign_non_tensor(data, max_token_len_per_gpu=max_tokens)
        else:
            tu.assign_non_tensor(data, micro_batch_size_per_gpu=micro_batch_size)
        micro_batches, _ = prepare_micro_batches(data)
        counts.append(len(micro_batches))
        policy.zero_grad()
        for mb in micro_batches:
            loss, _ = ppo_loss(config, {"log_probs": policy.flat_logps(mb["input_ids"])}, mb)
            if naive_dm:
                loss = loss + LAM * naive_micro_batch_dm(policy, mb)
            loss.backward()
        for total, p in zip(grads, policy.parameters()):
            total += p.grad
    with torch.no_grad():
        for total, p in zip(grads, policy.parameters()):
            p -= LR * total / ranks
    return policy, counts


def naive_micro_batch_dm(policy, mb):
    """The recipe's form: L_DM over the groups as they appear in this micro-batch, its mean."""
    from verl.workers.utils.padding import no_padding_2_padding

    logps = no_padding_2_padding(policy.flat_logps(mb["input_ids"]), mb)
    mask = mb["response_mask"].to_padded_tensor(0).to(logps.dtype) if mb["response_mask"].is_nested \
        else mb["response_mask"].to(logps.dtype)
    phi = sequence_logps(logps * mask, mask, average=True)
    dm = dm_term(phi.detach(), mb["score"], mb["gid"], alpha=ALPHA)
    return (dm.coefficients * phi).sum()


def reference_step(policy, batch, grpo_batch, *, loss_agg_mode):
    """One whole-batch step on dmpo.objectives' ``dmpo`` (base with the same token average)."""
    policy = copy.deepcopy(policy)
    mask = batch.batch["response_mask"].to(torch.float64)
    group = objectives.GroupBatch(
        logps=policy.response_logps(batch.batch["input_ids"]), mask=mask,
        rewards=batch.batch["score"], group_ids=batch.batch["gid"],
        old_logps=batch.batch["old_log_probs"],
        advantages=masked_mean(grpo_batch.batch["advantages"], mask),
    )
    out = objectives.get("dmpo")(group, lam=LAM, alpha=ALPHA, base=BASES[loss_agg_mode])
    policy.zero_grad()
    out.loss.backward()
    with torch.no_grad():
        for p in policy.parameters():
            p -= LR * p.grad
    return policy


def distance(a, b) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


@pytest.fixture(scope="module")
def setup():
    policy = BigramPolicy(seed=1)
    return policy, make_batch(policy, groups=4, group_size=GROUP, seed=3)


@pytest.mark.parametrize("loss_agg_mode", sorted(BASES))
def test_balanced_dynamic_micro_batches_give_the_whole_batch_dmpo_step(setup, loss_agg_mode):
    policy, raw = setup
    reference = reference_step(policy, raw, advantages(copy.deepcopy(raw), "grpo", loss_agg_mode),
                               loss_agg_mode=loss_agg_mode)
    moved = distance(reference, policy)
    assert moved > 1e-3

    whole, counts = verl_step(policy, advantages(copy.deepcopy(raw), "dmpo", loss_agg_mode),
                              loss_agg_mode=loss_agg_mode, ranks=1, max_tokens=10_000)
    assert counts == [1]
    assert distance(whole, reference) < 1e-12 * max(1.0, moved) + 1e-12

    batch = advantages(copy.deepcopy(raw), "dmpo", loss_agg_mode)
    balance(batch, ranks=2)
    order = batch.batch["gid"].tolist()
    assert order != sorted(order)  # the balancer reordered the rows across ranks
    split, counts = verl_step(policy, batch, loss_agg_mode=loss_agg_mode, ranks=2, max_tokens=16)
    assert min(counts) >= 3  # several micro-batches per rank, groups split among them
    assert distance(split, reference) < 1e-12
    fixed, counts = verl_step(policy, batch, loss_agg_mode=loss_agg_mode, ranks=4,
                              micro_batch_size=2)
    assert counts == [2, 2, 2, 2]  # 4 ranks × 2 micro-batches of 2 rows
    assert distance(fixed, reference) < 1e-12


def test_the_v1_trainer_advantage_path_gives_the_same_advantages(setup):
    """verl's default trainer (V1) computes advantages through
    ``compute_advantage_for_multi_trajectories``: the estimator must find its batch there too."""
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    _, raw = setup
    mode = "seq-mean-token-mean"
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True,
                               "dmpo": {"lam": LAM, "alpha": ALPHA, "loss_agg_mode": mode}})
    keys = [f"{uid}_0_{i}" for i, uid in enumerate(raw.non_tensor_batch["uid"])]
    v1 = compute_advantage_for_multi_trajectories(copy.deepcopy(raw), batch_keys=keys,
                                                  adv_estimator="dmpo", num_repeat=GROUP,
                                                  config=config)
    v0 = advantages(copy.deepcopy(raw), "dmpo", mode)
    torch.testing.assert_close(v1.batch["advantages"], v0.batch["advantages"], atol=0, rtol=0)
    grpo = advantages(copy.deepcopy(raw), "grpo", mode)
    assert float((v0.batch["advantages"] - grpo.batch["advantages"]).abs().max()) > 1e-3


def test_a_per_micro_batch_dm_term_is_not_the_whole_batch_step(setup):
    policy, raw = setup
    mode = "seq-mean-token-mean"
    reference = reference_step(policy, raw, advantages(copy.deepcopy(raw), "grpo", mode),
                               loss_agg_mode=mode)
    batch = advantages(copy.deepcopy(raw), "grpo", mode)
    balance(batch, ranks=2)
    naive, _ = verl_step(policy, batch, loss_agg_mode=mode, ranks=2, max_tokens=16, naive_dm=True)
    assert distance(naive, reference) > 1e-3 * distance(reference, policy)
