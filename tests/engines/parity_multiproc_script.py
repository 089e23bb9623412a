"""TRL parity in two processes; run by tests/engines/test_trl_parity.py as

    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 \
        tests/engines/parity_multiproc_script.py MODEL OUT_DIR

Trains TRL's ``GRPOTrainer`` and then ``GroupObjectiveTrainer`` with the same arguments, which use
the options that need every process: ``top_entropy_quantile`` (the quantile of all processes'
token entropies) and ``use_adaptive_entropy`` (the entropy of the window over all processes).
Each process writes ``OUT_DIR/rank<k>.json``: the largest parameter difference between the two
runs, how far TRL's run moved, and both final entropy coefficients.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from trl import GRPOConfig, GRPOTrainer

from dmpo.engines.trl import GroupObjectiveConfig, GroupObjectiveTrainer, build_npbench_dataset

G = 4
ARGS = {
    "num_generations": G,
    "per_device_train_batch_size": 2 * G,
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
    "loss_type": "grpo",
    "top_entropy_quantile": 0.5,
    "use_adaptive_entropy": True,
    "entropy_coef": 0.05,
    "entropy_coef_delta": 0.1,
    "entropy_target": 100.0,
}


def digit_reward(completions, **kwargs):
    return [float(sum(ch.isdigit() for ch in text) >= 2) for text in completions]


def train(trainer_cls, config_cls, model_path, out_dir):
    args = config_cls(output_dir=os.path.join(out_dir, trainer_cls.__name__), **ARGS)
    dataset = build_npbench_dataset("knapsack", difficulty="tiny", count=8, seed=0)
    trainer = trainer_cls(model_path, reward_funcs=digit_reward, args=args, train_dataset=dataset)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.train()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    return trainer, before, after


def main(model_path: str, out_dir: str) -> None:
    theirs, before, their_params = train(GRPOTrainer, GRPOConfig, model_path, out_dir)
    ours, _, our_params = train(GroupObjectiveTrainer, GroupObjectiveConfig, model_path, out_dir)
    rank = ours.accelerator.process_index
    result = {
        "rank": rank,
        "num_processes": ours.accelerator.num_processes,
        "max_difference": (our_params - their_params).abs().max().item(),
        "moved": (their_params - before).abs().max().item(),
        "entropy_coef": [ours.entropy_coef, theirs.entropy_coef],
        "last_world_entropy": [ours._last_world_entropy, theirs._last_world_entropy],
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
