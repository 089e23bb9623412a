"""Real training steps of DMPOTrainer on the tiny model: every group objective, the λ=0 and TRL
oracles, group integrity, raw rewards, failing rewards, LoRA, resume, and clear errors."""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest

from dmpo.errors import DmpoError

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from dmpo.engines.trl import DMPOConfig, DMPOTrainer  # noqa: E402
from dmpo.objectives.dm_term import DM_DIAGNOSTICS  # noqa: E402

G = 4
GROUP_OBJECTIVES = [
    "grpo", "bnpo", "dapo", "dr_grpo", "gspo",
    "dmpo", "dmpo-recipe", "dmpo-ce", "dmpo-pure", "dmpo-coef", "dmpo-share", "dmpo-silent", "dmpo-tau", "disco", "brain",
    "gpg", "clip_cov", "kl_cov", "passk", "flowrl",
]  # fmt: skip


def digit_reward(completions, **kwargs):
    """1 for a completion with at least two digits: about a third of the tiny model's samples."""
    return [float(sum(ch.isdigit() for ch in text) >= 2) for text in completions]


def length_reward(completions, **kwargs):
    """Graded: every group has a spread (one generation batch may be a single group)."""
    return [len(text) / 7.0 for text in completions]


def config(tmp_path, **kwargs) -> DMPOConfig:
    base = {
        "output_dir": str(tmp_path / "run"),
        "num_generations": G,
        "per_device_train_batch_size": 2 * G,
        "max_completion_length": 12,
        "max_steps": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        "disable_tqdm": True,
    }
    return DMPOConfig.for_cpu(**{**base, **kwargs})


def trl_config(tmp_path, **kwargs) -> GRPOConfig:
    base = config(tmp_path).to_dict()
    keep = {k: base[k] for k in ("output_dir", "num_generations", "per_device_train_batch_size",
                                 "max_completion_length", "max_steps", "learning_rate", "logging_steps",
                                 "save_strategy", "seed", "disable_tqdm")}  # fmt: skip
    return GRPOConfig(use_cpu=True, bf16=False, report_to="none", **{**keep, **kwargs})


def parameters(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def train(model_path, dataset, args, *, trainer_cls=DMPOTrainer, reward=digit_reward, **kwargs):
    trainer = trainer_cls(str(model_path), reward_funcs=reward, args=args, train_dataset=dataset, **kwargs)
    before = parameters(trainer.model)
    trainer.train()
    return trainer, before, parameters(trainer.model)


def logged(trainer, key) -> list[float]:
    return [row[key] for row in trainer.state.log_history if key in row]


# ---- every objective trains -----------------------------------------------------------------
@pytest.mark.parametrize("objective", GROUP_OBJECTIVES)
def test_each_group_objective_trains(tiny_model_path, knapsack_dataset, tmp_path, objective):
    # passk with k = G scores every completion alike (each k-subset is the whole group): k = 2.
    extra = {"objective_kwargs": {"k": 2}} if objective == "passk" else {}
    trainer, before, after = train(tiny_model_path, knapsack_dataset, config(tmp_path, objective=objective, **extra))
    assert trainer.state.global_step == 2
    losses = logged(trainer, "loss")
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"
    assert all(torch.isfinite(p).all() for p in after.values())
    for key in ("reward", "entropy", "group/zero_std_frac", "frac_reward_zero_std"):
        assert len(logged(trainer, key)) == 2, key
    if objective.startswith("dmpo"):
        for key in DM_DIAGNOSTICS:
            values = logged(trainer, key)
            assert len(values) == 2 and all(math.isfinite(v) for v in values), key
        assert all(1 / G - 1e-6 <= v <= 1 + 1e-6 for v in logged(trainer, "max_q"))
        assert all(0 <= v <= 1 for v in logged(trainer, "dm_grad_share"))
        assert all(v >= 0 for v in logged(trainer, "phi_std") + logged(trainer, "base_grad_norm"))


def test_time_in_reward_functions_is_logged_against_step_time(tiny_model_path, knapsack_dataset, tmp_path):
    import time

    def slow_reward(completions, **kwargs):
        time.sleep(0.2)
        return digit_reward(completions, **kwargs)

    trainer, _, _ = train(tiny_model_path, knapsack_dataset, config(tmp_path, objective="grpo"), reward=slow_reward)
    scoring, steps = logged(trainer, "timing/rewards"), logged(trainer, "step_time")
    assert len(scoring) == 2 and len(steps) == 2
    assert all(0.2 <= s < 0.2 + 0.5 for s in scoring)  # the sleep, plus little else
    assert all(s < t for s, t in zip(scoring, steps))


# ---- oracles --------------------------------------------------------------------------------
def test_dmpo_with_lambda_zero_is_grpo(tiny_model_path, knapsack_dataset, tmp_path):
    _, _, dmpo = train(tiny_model_path, knapsack_dataset, config(tmp_path / "a", objective="dmpo", objective_kwargs={"lam": 0.0}))
    _, before, grpo = train(tiny_model_path, knapsack_dataset, config(tmp_path / "b", objective="grpo"))
    assert any(not torch.equal(before[k], grpo[k]) for k in before)
    for name in grpo:
        assert torch.equal(dmpo[name], grpo[name]), name


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_one_step_matches_trls_own_grpo_trainer(tiny_model_path, knapsack_dataset, tmp_path, loss_type):
    # One generation batch, two micro-batches: the same rows in both trainers, grouped differently.
    common = {"max_steps": 1, "optim": "sgd", "learning_rate": 0.5, "gradient_accumulation_steps": 2,
              "per_device_train_batch_size": G}  # fmt: skip
    _, before, ours = train(
        tiny_model_path, knapsack_dataset, config(tmp_path / "a", objective=loss_type, epsilon_high=0.2, **common)
    )
    _, _, theirs = train(
        tiny_model_path, knapsack_dataset, trl_config(tmp_path / "b", loss_type=loss_type, **common),
        trainer_cls=GRPOTrainer,
    )
    moved = max((theirs[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6 * max(moved, 1.0))


# ---- group integrity ------------------------------------------------------------------------
class RecordMicroBatches:
    """Mixin: remember each micro-batch's prompts (and group ids, when there are any)."""

    def _compute_loss(self, model, inputs):
        prompts = [tuple(row[mask.bool()].tolist()) for row, mask in zip(inputs["prompt_ids"], inputs["prompt_mask"])]
        self.micro_batches.append((prompts, inputs.get("group_ids")))
        return super()._compute_loss(model, inputs)


class RecordingTRL(RecordMicroBatches, GRPOTrainer):
    micro_batches: list


class RecordingDMPO(RecordMicroBatches, DMPOTrainer):
    micro_batches: list


def partial_groups(micro_batches) -> int:
    """Number of (micro-batch, prompt) pairs where the micro-batch holds fewer than G completions."""
    return sum(count % G != 0 for prompts, _ in micro_batches for count in Counter(prompts).values())


def test_micro_batches_hold_whole_groups(tiny_model_path, knapsack_dataset, tmp_path):
    # 16 rows (4 groups) per generation, split into 2 micro-batches of 8: TRL's row shuffle
    # scatters the groups; ours must not.
    common = {"max_steps": 3, "gradient_accumulation_steps": 2, "per_device_train_batch_size": 2 * G}
    RecordingTRL.micro_batches = []
    train(tiny_model_path, knapsack_dataset, trl_config(tmp_path / "trl", **common), trainer_cls=RecordingTRL)
    assert len(RecordingTRL.micro_batches) == 6
    assert partial_groups(RecordingTRL.micro_batches) > 0, "TRL kept groups whole: the test has no teeth"

    RecordingDMPO.micro_batches = []
    train(tiny_model_path, knapsack_dataset, config(tmp_path / "dmpo", **common), trainer_cls=RecordingDMPO)
    assert len(RecordingDMPO.micro_batches) == 6
    assert partial_groups(RecordingDMPO.micro_batches) == 0
    for prompts, group_ids in RecordingDMPO.micro_batches:
        ids = group_ids.tolist()
        assert all(count == G for count in Counter(ids).values())
        assert all(ids[i] == ids[j] or prompts[i] != prompts[j] for i in range(len(ids)) for j in range(len(ids)))
        assert all(prompts[i] == prompts[j] for i in range(len(ids)) for j in range(len(ids)) if ids[i] == ids[j])


# ---- what reaches the objective ------------------------------------------------------------
def test_raw_rewards_and_group_ids_reach_the_objective(tiny_model_path, knapsack_dataset, tmp_path):
    returned: list[float] = []

    def length_reward(completions, **kwargs):
        rewards = [len(text) / 7.0 for text in completions]  # raw, unnormalised, varied
        returned.extend(rewards)
        return rewards

    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=length_reward,
                          args=config(tmp_path, max_steps=1, gradient_accumulation_steps=2),
                          train_dataset=knapsack_dataset)  # fmt: skip
    seen = []
    objective = trainer.group_objective

    def recording(batch, **params):
        seen.append(batch)
        return objective(batch, **params)

    trainer.group_objective = recording
    trainer.train()
    rewards = torch.cat([b.rewards for b in seen]).tolist()
    assert sorted(rewards) == pytest.approx(sorted(returned))
    for batch in seen:
        assert batch.advantages is not None and batch.old_logps is None and batch.ref_logps is None
        index = torch.unique(batch.group_ids, return_inverse=True)[1]
        for g in range(int(index.max()) + 1):
            r = batch.rewards[index == g]
            a = batch.advantages[index == g]
            expected = (r - r.mean()) / (r.std() + 1e-4)
            torch.testing.assert_close(a, expected.to(a.dtype), rtol=1e-4, atol=1e-5)


def test_failing_and_slow_rewards_cost_the_completion_not_the_run(tiny_model_path, knapsack_dataset, tmp_path):
    def flaky_reward(completions, **kwargs):
        out = []
        for text in completions:
            if "7" in text:
                raise RuntimeError("reward crashed")
            if "5" in text:
                time.sleep(30)
            out.append(float(len(text)))
        return out

    args = config(tmp_path, max_steps=2, reward_timeout=0.25)
    trainer, _, _ = train(tiny_model_path, knapsack_dataset, args, reward=flaky_reward)
    assert trainer.state.global_step == 2
    guarded = trainer.reward_funcs[0]
    assert guarded.calls == 4 * G and guarded.failures > 0
    fractions = logged(trainer, "reward_failures/flaky_reward")
    assert len(fractions) == 2 and sum(fractions) * 2 * G == pytest.approx(guarded.failures)


# ---- LoRA, resume -----------------------------------------------------------------------------
def test_lora_trains_the_adapter_only(tiny_model_path, knapsack_dataset, tmp_path):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    _, before, after = train(tiny_model_path, knapsack_dataset, config(tmp_path), peft_config=lora)
    adapter = [k for k in before if "lora_" in k]
    assert adapter and any(not torch.equal(before[k], after[k]) for k in adapter)
    assert all(torch.equal(before[k], after[k]) for k in before if "lora_" not in k)


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


@pytest.mark.slow
def test_resume_reaches_the_uninterrupted_state(tiny_model_path, knapsack_dataset, tmp_path):
    common = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2, "learning_rate": 1e-2}
    _, _, uninterrupted = train(tiny_model_path, knapsack_dataset, config(tmp_path / "full", **common))

    stopped = config(tmp_path / "killed", **common)
    trainer, _, _ = train(tiny_model_path, knapsack_dataset, stopped, callbacks=[StopAt(3)])
    assert trainer.state.global_step == 3
    checkpoint = tmp_path / "killed" / "run" / "checkpoint-2"
    assert checkpoint.is_dir()

    resumed = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=stopped, train_dataset=knapsack_dataset)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    final = parameters(resumed.model)
    for name in final:
        torch.testing.assert_close(final[name], uninterrupted[name], rtol=0, atol=0)


# ---- coefficient form -----------------------------------------------------------------------
def test_coefficient_form_on_split_groups_equals_whole_groups(tiny_model_path, knapsack_dataset, tmp_path):
    # The same 8 completions (2 groups): one micro-batch of whole groups, or 4 micro-batches of
    # 2 rows each with the DM term through sampling-time coefficients. One SGD step.
    common = {"max_steps": 1, "optim": "sgd", "learning_rate": 1.0, "objective_kwargs": {"lam": 50.0}}
    _, before, whole = train(tiny_model_path, knapsack_dataset, config(tmp_path / "a", **common))
    trainer, _, split = train(
        tiny_model_path, knapsack_dataset,
        config(tmp_path / "b", group_split="coefficient", per_device_train_batch_size=2,
               gradient_accumulation_steps=4, **common),
    )  # fmt: skip
    moved = max((whole[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-5 * moved)
    assert len(logged(trainer, "dm_loss")) == 1 and len(logged(trainer, "max_q")) == 1


class StaleCoefficients(DMPOTrainer):
    """The DM coefficients of sampling time kept for the whole generation batch (no recompute)."""

    def _refresh_dm_coefficients(self):
        pass


def test_split_groups_over_two_iterations_equal_whole_groups(tiny_model_path, knapsack_dataset, tmp_path):
    # num_iterations=2: two SGD steps on the same 8 completions (2 groups), the second off-policy.
    # Whole groups (group form: DM term at the current policy) or 4 micro-batches of 2 rows with
    # the coefficients recomputed over both groups before the second step.
    common = {"max_steps": 2, "num_iterations": 2, "optim": "sgd", "learning_rate": 1.0,
              "objective_kwargs": {"lam": 50.0}}  # fmt: skip
    split = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}
    _, before, whole = train(tiny_model_path, knapsack_dataset, config(tmp_path / "a", **common))
    trainer, _, ours = train(tiny_model_path, knapsack_dataset, config(tmp_path / "b", **common, **split))
    assert trainer.args.group_split == "rows" and trainer._coefficient_form
    moved = max((whole[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4
    for name in whole:
        torch.testing.assert_close(ours[name], whole[name], rtol=1e-4, atol=1e-5 * moved)
    assert len(logged(trainer, "dm_loss")) == 2  # at sampling time, then at the recompute
    # Without the recompute the second step uses the first policy's coefficients: another result.
    _, _, stale = train(tiny_model_path, knapsack_dataset, config(tmp_path / "c", **common, **split),
                        trainer_cls=StaleCoefficients)  # fmt: skip
    gap = max((stale[k] - whole[k]).abs().max().item() for k in whole)
    assert gap > 100 * 1e-5 * moved


def test_coefficients_are_recomputed_at_each_step_within_a_generation(tiny_model_path, knapsack_dataset, tmp_path):
    # steps_per_generation = 4 > gradient_accumulation_steps = 2: two optimiser steps per
    # generation batch of 8. Every micro-batch's coefficients are c = ∂L_DM/∂φ over the whole
    # generation batch at the policy of its step (dm_coefficients, the core's function, on a fresh
    # forward pass), times processes × steps_per_generation.
    from dmpo.objectives import dm_coefficients
    from dmpo.objectives.dm_term import dm_term_params

    class Checking(DMPOTrainer):
        checked: ClassVar[list[int]] = []

        def _compute_loss(self, model, inputs):
            rows = [self._buffered_inputs[i] for i in range(self.args.steps_per_generation)]
            cat = lambda key: torch.cat([b[key] for b in rows])  # noqa: E731
            ids = torch.cat([cat("prompt_ids"), cat("completion_ids")], dim=1)
            attention = torch.cat([cat("prompt_mask"), cat("completion_mask")], dim=1)
            width = cat("completion_ids").size(1)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=attention).logits[:, -width - 1 : -1].float()
                logps = torch.log_softmax(logits, -1).gather(-1, cat("completion_ids").unsqueeze(-1)).squeeze(-1)
            params = self.group_objective_params
            expected = dm_coefficients(logps, cat("completion_mask"), cat("rewards"), cat("group_ids"),
                                       advantages=cat("advantages"), length_normalize=params["length_normalize"],
                                       **dm_term_params(params)) * self.args.steps_per_generation  # fmt: skip
            torch.testing.assert_close(cat("dm_coefficients"), expected, rtol=1e-4, atol=1e-7)
            self.checked.append(self.state.global_step)
            return super()._compute_loss(model, inputs)

    args = config(tmp_path, max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                  steps_per_generation=4, optim="sgd", learning_rate=1.0, objective_kwargs={"lam": 50.0})
    trainer, before, after = train(tiny_model_path, knapsack_dataset, args, trainer_cls=Checking)
    assert trainer.args.group_split == "rows" and trainer.state.global_step == 2
    assert Checking.checked == [0, 0, 1, 1]  # both steps, the second after the policy moved
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert len(logged(trainer, "dm_loss")) == 2


@pytest.mark.parametrize("objective", ["grpo", "dapo"])
def test_split_groups_train_as_whole_groups_for_row_separable_objectives(
    tiny_model_path, knapsack_dataset, tmp_path, objective
):
    # TRL's advantages come from whole groups; grpo's mean over rows and dapo's token sum over the
    # generation batch do not care how rows are grouped into micro-batches (2 iterations: the
    # second step is off-policy and clips).
    common = {"objective": objective, "max_steps": 2, "num_iterations": 2, "optim": "sgd", "learning_rate": 1.0}
    _, before, whole = train(tiny_model_path, knapsack_dataset, config(tmp_path / "a", **common))
    trainer, _, split = train(tiny_model_path, knapsack_dataset,
                              config(tmp_path / "b", per_device_train_batch_size=2, gradient_accumulation_steps=4,
                                     **common))  # fmt: skip
    assert trainer.args.group_split == "rows" and not trainer._coefficient_form
    moved = max((whole[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-5 * moved)


@pytest.mark.parametrize(
    ("objective", "kwargs"),
    [("flowrl", {}), ("clip_cov", {}), ("gpg", {"alpha_scaling": False}), ("vespo", {}),
     ("dmpo-recipe", {}), ("dmpo-pure", {})],
)  # fmt: skip
def test_objectives_that_allow_it_train_on_half_groups(tiny_model_path, knapsack_dataset, tmp_path, objective, kwargs):
    args = config(tmp_path, objective=objective, objective_kwargs=kwargs, max_steps=1,
                  per_device_train_batch_size=2, gradient_accumulation_steps=2)  # fmt: skip
    trainer, before, after = train(tiny_model_path, knapsack_dataset, args, reward=length_reward)
    assert trainer.args.group_split == "rows" and trainer.state.global_step == 1
    assert all(math.isfinite(x) for x in logged(trainer, "loss"))
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"


# ---- clear errors -----------------------------------------------------------------------------
def test_missing_model_path_is_a_clear_error(knapsack_dataset, tmp_path):
    with pytest.raises(DmpoError, match="does not exist"):
        DMPOTrainer(str(tmp_path / "no-model"), reward_funcs=digit_reward, args=config(tmp_path),
                    train_dataset=knapsack_dataset)  # fmt: skip


def test_empty_dataset_is_a_clear_error(tiny_model_path, knapsack_dataset, tmp_path):
    with pytest.raises(DmpoError, match="empty"):
        DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=config(tmp_path),
                    train_dataset=knapsack_dataset.select([]))  # fmt: skip
    with pytest.raises(DmpoError, match="'prompt' column"):
        DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=config(tmp_path),
                    train_dataset=knapsack_dataset.remove_columns("prompt"))  # fmt: skip


def test_a_plain_grpo_config_is_refused(tiny_model_path, knapsack_dataset, tmp_path):
    with pytest.raises(DmpoError, match="DMPOConfig"):
        DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=trl_config(tmp_path),
                    train_dataset=knapsack_dataset)  # fmt: skip


# ---- non-finite losses, safe saving, checkpoints --------------------------------------------
def nan_objective(trainer):
    objective = trainer.group_objective

    def poisoned(batch, **params):
        out = objective(batch, **params)
        out.loss = out.loss * float("nan")
        return out

    return poisoned


def test_a_non_finite_update_is_skipped_counted_and_logged(tiny_model_path, knapsack_dataset, tmp_path):
    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, train_dataset=knapsack_dataset,
                          args=config(tmp_path, max_steps=2, max_nonfinite_steps=5))
    before = parameters(trainer.model)
    trainer.group_objective = nan_objective(trainer)
    trainer.train()
    after = parameters(trainer.model)
    assert all(torch.equal(before[k], after[k]) for k in before), "a NaN update moved the parameters"
    assert trainer.nonfinite_skipped == 2 and logged(trainer, "nonfinite/skipped_step") == [1.0, 1.0]
    assert all(torch.isfinite(p).all() for p in after.values())


def test_non_finite_updates_in_a_row_stop_the_run_without_saving(tiny_model_path, knapsack_dataset, tmp_path):
    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, train_dataset=knapsack_dataset,
                          args=config(tmp_path, max_steps=5, max_nonfinite_steps=2, save_strategy="steps",
                                      save_steps=1))
    trainer.group_objective = nan_objective(trainer)
    with pytest.raises(DmpoError, match="2 updates in a row had a non-finite loss or gradient"):
        trainer.train()
    assert trainer.nonfinite_skipped == 2


def test_a_model_with_non_finite_weights_is_never_saved(tiny_model_path, knapsack_dataset, tmp_path):
    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, train_dataset=knapsack_dataset,
                          args=config(tmp_path))
    with torch.no_grad():
        next(trainer.model.parameters())[0].fill_(float("nan"))
    with pytest.raises(DmpoError, match="refusing to save the model"):
        trainer.save_model(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_checkpoints_are_marked_complete_and_resume_skips_cut_ones(tiny_model_path, knapsack_dataset, tmp_path):
    from dmpo.engines.trl.trainer import CHECKPOINT_COMPLETE
    from dmpo.pipeline.train import find_resume_checkpoint

    args = config(tmp_path, max_steps=2, save_strategy="steps", save_steps=1)
    train(tiny_model_path, knapsack_dataset, args)
    run = Path(args.output_dir)
    assert (run / "checkpoint-1" / CHECKPOINT_COMPLETE).is_file()
    assert (run / "checkpoint-2" / CHECKPOINT_COMPLETE).is_file()
    assert find_resume_checkpoint("auto", run) == str(run / "checkpoint-2")
    # A run killed while writing checkpoint-3: no marker, half a weight file.
    cut = run / "checkpoint-3"
    shutil.copytree(run / "checkpoint-2", cut)
    (cut / CHECKPOINT_COMPLETE).unlink()
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert find_resume_checkpoint("auto", run) == str(run / "checkpoint-2")
    with pytest.raises(DmpoError, match=r"model\.safetensors is truncated or corrupt"):
        find_resume_checkpoint(str(cut), run)
    for name in ("checkpoint-1", "checkpoint-2"):
        (run / name / CHECKPOINT_COMPLETE).unlink()
    with pytest.raises(DmpoError, match=r"no checkpoint-N folder .* written to the end \(3 incomplete\)"):
        find_resume_checkpoint("auto", run)


# ---- FlowRL: the log-partition head -----------------------------------------------------------
def test_flowrl_trains_its_log_partition_head_with_the_policy(tiny_model_path, knapsack_dataset, tmp_path):
    from dmpo.engines.trl.log_partition import HEAD_NAME
    from dmpo.models import load_model_and_tokenizer

    args = config(tmp_path, objective="flowrl", max_steps=2)
    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=args, train_dataset=knapsack_dataset)
    assert trainer.ref_model is not None  # flowrl's reference term: a frozen copy of the start
    head_before = {k: v.detach().clone() for k, v in getattr(trainer.model, HEAD_NAME).state_dict().items()}
    seen = []
    objective = trainer.group_objective

    def recording(batch, **params):
        seen.append(batch)
        return objective(batch, **params)

    trainer.group_objective = recording
    trainer.train()
    head_after = getattr(trainer.model, HEAD_NAME).state_dict()
    assert any(not torch.equal(head_before[k], head_after[k]) for k in head_before), "the head did not train"
    assert all(b.log_z is not None and b.log_z.requires_grad and b.ref_logps is not None for b in seen)
    # One log Z per prompt: every completion of a group shares the prompt's value.
    for batch in seen:
        for g in torch.unique(batch.group_ids):
            values = batch.log_z[batch.group_ids == g]
            torch.testing.assert_close(values, values[0].expand_as(values))
    assert all(math.isfinite(x) for x in logged(trainer, "loss"))
    # Saved with the model; a plain causal-LM load ignores the head and gives the same logits.
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    model, tokenizer = load_model_and_tokenizer(out)
    assert not hasattr(model, HEAD_NAME)
    ids = tokenizer("knapsack", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, trainer.model.to("cpu")(ids).logits)


def test_flowrl_resume_restores_the_head(tiny_model_path, knapsack_dataset, tmp_path):
    from dmpo.engines.trl.log_partition import HEAD_NAME

    common = {"objective": "flowrl", "max_steps": 4, "save_strategy": "steps", "save_steps": 2}
    _, _, uninterrupted = train(tiny_model_path, knapsack_dataset, config(tmp_path / "full", **common))
    stopped = config(tmp_path / "killed", **common)
    train(tiny_model_path, knapsack_dataset, stopped, callbacks=[StopAt(3)])
    resumed = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=stopped, train_dataset=knapsack_dataset)
    resumed.train(resume_from_checkpoint=str(tmp_path / "killed" / "run" / "checkpoint-2"))
    final = parameters(resumed.model)
    assert any(name.startswith(HEAD_NAME) for name in final)
    for name in final:
        torch.testing.assert_close(final[name], uninterrupted[name], rtol=0, atol=0)
