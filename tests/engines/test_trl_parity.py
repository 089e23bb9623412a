"""Drop-in TRL parity: ``GroupObjectiveTrainer`` with a ``GroupObjectiveConfig`` built from the
same arguments as TRL's ``GRPOConfig`` trains exactly as TRL's ``GRPOTrainer``: for every TRL 1.16
loss type and every loss option, the parameters after training match.

Each run: one generation batch of 2 groups of 4 on the tiny model, ``num_iterations=2`` (two SGD
steps on it, so the second is off-policy: ratios leave 1 and clipping, ``delta`` and the
off-policy mask act), one micro-batch per step (rows in another order in each trainer: every
loss is a sum or mean over rows, so the order must not matter); the ``split_groups`` cases take
a per-device batch of 2 rows, half a group, and 4 micro-batches per step.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from dmpo.engines.trl import (  # noqa: E402
    DMPOConfig,
    DMPOTrainer,
    GroupObjectiveConfig,
    GroupObjectiveTrainer,
)
from tests.engines.test_trainer import digit_reward  # noqa: E402

G = 4
COMMON = {
    "num_generations": G,
    "per_device_train_batch_size": 2 * G,
    "gradient_accumulation_steps": 1,
    "num_iterations": 2,
    "max_steps": 2,
    "max_completion_length": 12,
    "optim": "sgd",
    "learning_rate": 0.3,
    "logging_steps": 1,
    "save_strategy": "no",
    "seed": 0,
    "disable_tqdm": True,
    "report_to": "none",
    "use_cpu": True,
    "bf16": False,
}


def parameters(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def run(model_path, dataset, trainer_cls, args):
    trainer = trainer_cls(str(model_path), reward_funcs=digit_reward, args=args, train_dataset=dataset)
    before = parameters(trainer.model)
    trainer.train()
    return trainer, before, parameters(trainer.model)


def assert_same_training(ours, theirs):
    (our_trainer, before, our_params), (their_trainer, _, their_params) = ours, theirs
    moved = max((their_params[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4, "training moved nothing: the comparison would be empty"
    assert our_params.keys() == their_params.keys()
    for name in our_params:
        torch.testing.assert_close(
            our_params[name], their_params[name], rtol=1e-4, atol=1e-6 * max(moved, 1.0), msg=name
        )
    assert our_trainer.state.global_step == their_trainer.state.global_step == 2


CASES = {
    # every TRL 1.16 loss type, at TRL's defaults (GRPOConfig's default loss_type is dapo)
    "default": {},
    "grpo": {"loss_type": "grpo"},
    "bnpo": {"loss_type": "bnpo"},
    "dr_grpo": {"loss_type": "dr_grpo"},
    "cispo": {"loss_type": "cispo", "epsilon_high": 1.1},
    "sapo": {"loss_type": "sapo"},
    "luspo": {"loss_type": "luspo", "importance_sampling_level": "sequence"},
    "vespo": {"loss_type": "vespo"},
    "kl": {"loss_type": "grpo", "beta": 0.1},
    # every loss option
    "delta": {"loss_type": "grpo", "delta": 1.1},  # binds on A > 0 tokens with 1.1 < ρ < 1.2
    "sequence": {"loss_type": "grpo", "importance_sampling_level": "sequence"},
    "top_entropy_quantile": {"loss_type": "dapo", "top_entropy_quantile": 0.5},
    "entropy_coef": {"loss_type": "dr_grpo", "entropy_coef": 0.1},
    "adaptive_entropy": {"loss_type": "grpo", "use_adaptive_entropy": True, "entropy_coef": 0.05,
                         "entropy_coef_delta": 0.1, "entropy_target": 100.0},
    "off_policy_mask": {"loss_type": "grpo", "off_policy_mask_threshold": 0.0},
    "all_options": {"loss_type": "dapo", "delta": 1.1, "top_entropy_quantile": 0.6,
                    "entropy_coef": 0.05, "off_policy_mask_threshold": 0.0},
    # a per-device batch smaller than the group: groups straddle micro-batches, as in TRL
    "split_groups": {"loss_type": "grpo", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},
    "split_groups_dapo": {"loss_type": "dapo", "per_device_train_batch_size": 2,
                          "gradient_accumulation_steps": 4},
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_same_arguments_train_as_trls_grpo_trainer(tiny_model_path, knapsack_dataset, tmp_path, case):
    kwargs = {**COMMON, **CASES[case]}
    ours = run(tiny_model_path, knapsack_dataset, GroupObjectiveTrainer,
               GroupObjectiveConfig(output_dir=str(tmp_path / "ours"), **kwargs))  # fmt: skip
    theirs = run(tiny_model_path, knapsack_dataset, GRPOTrainer,
                 GRPOConfig(output_dir=str(tmp_path / "trl"), **kwargs))  # fmt: skip
    assert ours[0].args.objective_name == theirs[0].args.loss_type
    assert_same_training(ours, theirs)
    if kwargs.get("use_adaptive_entropy"):
        # The controller's state moved identically: 0.05 → 0.15 → 0.25 (entropy below target).
        assert ours[0].entropy_coef == pytest.approx(theirs[0].entropy_coef) == 0.25
        assert ours[0]._last_world_entropy == pytest.approx(theirs[0]._last_world_entropy, rel=1e-5)


@pytest.mark.parametrize(
    "loss_type,extra",
    [("cispo", {"epsilon_high": 1.1}), ("sapo", {}), ("dapo", {"delta": 1.1, "top_entropy_quantile": 0.6})],
)  # fmt: skip
def test_dmpo_with_lambda_zero_trains_as_trl_on_its_base(
    tiny_model_path, knapsack_dataset, tmp_path, loss_type, extra
):
    # DMPOConfig(loss_type=X) is DMPO on the base X; with λ = 0 it is TRL's X. Fields where the
    # base's own default differs from TRL's are given explicitly.
    kwargs = {**COMMON, "loss_type": loss_type, "use_bias_correction_kl": True, **extra}
    if loss_type == "dapo":
        kwargs["epsilon_high"] = 0.2
    args = DMPOConfig(output_dir=str(tmp_path / "ours"), objective_kwargs={"lam": 0.0}, **kwargs)
    assert args.objective_params()["base"] == loss_type
    ours = run(tiny_model_path, knapsack_dataset, DMPOTrainer, args)
    theirs = run(tiny_model_path, knapsack_dataset, GRPOTrainer,
                 GRPOConfig(output_dir=str(tmp_path / "trl"), **kwargs))  # fmt: skip
    assert_same_training(ours, theirs)


def test_default_arguments_are_trls_for_the_generic_trainer_and_dmpo_for_dmpo_trainer(
    tiny_model_path, knapsack_dataset, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default output directory is relative
    assert GroupObjectiveTrainer._default_config is GroupObjectiveConfig
    assert DMPOTrainer._default_config is DMPOConfig
    if not torch.cuda.is_available():
        # TRL's defaults (bf16=True) need a GPU: on a CPU, add only use_cpu and bf16=False.
        for trainer_cls in (GroupObjectiveTrainer, DMPOTrainer):
            config_cls = trainer_cls._default_config
            monkeypatch.setattr(trainer_cls, "_default_config", staticmethod(
                lambda cls=config_cls, **kw: cls(use_cpu=True, bf16=False, **kw)))  # fmt: skip
    generic = GroupObjectiveTrainer(str(tiny_model_path), reward_funcs=digit_reward,
                                    train_dataset=knapsack_dataset)  # fmt: skip
    assert type(generic.args) is GroupObjectiveConfig
    assert generic.args.objective is None and generic.args.objective_name == "dapo"
    assert generic.group_objective.name == "dapo" and generic.args.output_dir.endswith("-GRPO")
    trl_default = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert generic.args.loss_type == trl_default["loss_type"]
    assert trl_default["epsilon_high"] is None  # TRL: the same as epsilon
    assert generic.group_objective_params["epsilon_high"] == trl_default["epsilon"]

    dmpo = DMPOTrainer(str(tiny_model_path), reward_funcs=digit_reward, train_dataset=knapsack_dataset)
    assert type(dmpo.args) is DMPOConfig and dmpo.args.objective == "dmpo"
    assert dmpo.group_objective.name == "dmpo" and dmpo.args.output_dir.endswith("-DMPO")
    assert issubclass(DMPOTrainer, GroupObjectiveTrainer)


@pytest.mark.slow
def test_two_processes_train_as_trl_with_the_options_that_span_processes(tiny_model_path, tmp_path):
    # The entropy quantile and the adaptive controller's entropy are over all processes in TRL.
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("parity_multiproc_script.py")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(port), str(script), str(tiny_model_path), str(tmp_path),
    ]  # fmt: skip
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result["num_processes"] == 2 and result["moved"] > 1e-4
        assert result["max_difference"] <= 1e-6 + 1e-4 * result["moved"]
        ours, theirs = result["entropy_coef"]
        assert ours == pytest.approx(theirs) == 0.25
        assert result["last_world_entropy"][0] == pytest.approx(result["last_world_entropy"][1], rel=1e-5)


def test_adaptive_entropy_state_is_checkpointed_and_restored(tiny_model_path, knapsack_dataset, tmp_path):
    # TRL's own checkpoint file; without it a resumed run would restart the controller at 0.05.
    kwargs = {**COMMON, "num_iterations": 1, "save_strategy": "steps", "save_steps": 1,
              **CASES["adaptive_entropy"]}  # fmt: skip
    full, _, uninterrupted = run(tiny_model_path, knapsack_dataset, GroupObjectiveTrainer,
                                 GroupObjectiveConfig(output_dir=str(tmp_path / "full"), **kwargs))  # fmt: skip
    checkpoint = tmp_path / "full" / "checkpoint-1"
    assert json.loads((checkpoint / "entropy_ctrl_state.json").read_text())["entropy_coef"] == pytest.approx(0.15)
    args = GroupObjectiveConfig(output_dir=str(tmp_path / "resumed"), **kwargs)
    resumed = GroupObjectiveTrainer(str(tiny_model_path), reward_funcs=digit_reward, args=args,
                                    train_dataset=knapsack_dataset)  # fmt: skip
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.entropy_coef == full.entropy_coef == pytest.approx(0.25)
    final = parameters(resumed.model)
    for name in final:
        torch.testing.assert_close(final[name], uninterrupted[name], rtol=0, atol=0)
