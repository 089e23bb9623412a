"""A few DMPO steps in several processes; run by tests/engines/test_multiprocess.py as

    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 \
        tests/engines/multiproc_script.py MODEL OUT_DIR

(two gloo processes on the CPU: the config sets ``use_cpu=True``).

Each process checks that every micro-batch it trained on held whole groups (by group id and by
prompt) and writes ``OUT_DIR/rank<k>.json`` with what it saw, for the test to compare across
processes (no group on two processes, identical parameters after the steps).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import ClassVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset, npbench_reward

G = 4


def digit_reward(completions, **kwargs):
    return [float(sum(ch.isdigit() for ch in text) >= 2) for text in completions]


class RecordingTrainer(DMPOTrainer):
    micro_batches: ClassVar[list] = []

    def _compute_loss(self, model, inputs):
        prompts = [tuple(row[m.bool()].tolist()) for row, m in zip(inputs["prompt_ids"], inputs["prompt_mask"])]
        self.micro_batches.append({"step": self.state.global_step, "group_ids": inputs["group_ids"].tolist(),
                                   "prompts": prompts})  # fmt: skip
        return super()._compute_loss(model, inputs)


def main(model_path: str, out_dir: str) -> None:
    args = DMPOConfig.for_cpu(
        output_dir=os.path.join(out_dir, "run"),
        objective="dmpo",
        num_generations=G,
        per_device_train_batch_size=G,
        gradient_accumulation_steps=2,
        max_completion_length=12,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    dataset = build_npbench_dataset("knapsack", difficulty="tiny", count=8, seed=0)
    trainer = RecordingTrainer(model_path, reward_funcs=[digit_reward, npbench_reward], args=args,
                               train_dataset=dataset)  # fmt: skip
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.train()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])

    rank = trainer.accelerator.process_index
    for batch in trainer.micro_batches:
        counts = Counter(batch["group_ids"])
        assert all(c == G for c in counts.values()), f"rank {rank}: partial group in {batch['group_ids']}"
        by_group: dict[int, set] = {}
        for gid, prompt in zip(batch["group_ids"], batch["prompts"]):
            by_group.setdefault(gid, set()).add(prompt)
        assert all(len(p) == 1 for p in by_group.values()), f"rank {rank}: a group mixes prompts"
    history = trainer.state.log_history
    result = {
        "rank": rank,
        "num_processes": trainer.accelerator.num_processes,
        "micro_batches": [{**b, "prompts": [list(p) for p in b["prompts"]]} for b in trainer.micro_batches],
        "param_sum": after.double().sum().item(),
        "param_abs_change": (after - before).abs().sum().item(),
        "global_step": trainer.state.global_step,
        "logged_keys": sorted({k for row in history for k in row}),
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
