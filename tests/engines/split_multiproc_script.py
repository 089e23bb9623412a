"""Groups straddling processes and micro-batches; run by tests/engines/test_multiprocess.py as

    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 \
        tests/engines/split_multiproc_script.py MODEL OUT_DIR

Two processes × per-device batch 2 × gradient accumulation 2 with groups of 8: one generation
batch is one group of 8 completions, 4 on each process, 2 per micro-batch (``group_split``
resolves to ``"rows"``). One SGD step (no gradient clipping) with each of ``grpo`` and ``dmpo``
(λ = 50, so the DM term dominates; its coefficients are computed over the whole group across
both processes). Each process writes ``OUT_DIR/<objective>-rank<k>.json``: the rows it generated
(padded as the trainer padded them), their rewards, advantages and group ids, the objective's
parameters and the learning rate; rank 0 also saves the final parameters to
``OUT_DIR/<objective>-params.pt``. The test recomputes the step from those rows in one process,
one batch of whole groups, and compares.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, ClassVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset

G = 8
LEARNING_RATE = 0.05


def digit_reward(completions, **kwargs):
    return [float(sum(ch.isdigit() for ch in text) >= 2) + 0.1 * len(text) for text in completions]


class RecordingTrainer(DMPOTrainer):
    generated: ClassVar[list[dict[str, Any]]] = []

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        keys = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "rewards", "advantages",
                "group_ids")  # fmt: skip
        self.generated.append({k: output[k].tolist() for k in keys})
        assert output.get("old_per_token_logps") is None  # on-policy: one step per generation
        return output


def main(model_path: str, out_dir: str) -> None:
    dataset = build_npbench_dataset("knapsack", difficulty="tiny", count=8, seed=0)
    for objective, kwargs in (("grpo", {}), ("dmpo", {"lam": 50.0})):
        args = DMPOConfig.for_cpu(
            output_dir=os.path.join(out_dir, objective),
            objective=objective,
            objective_kwargs=kwargs,
            num_generations=G,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            max_completion_length=12,
            max_steps=1,
            optim="sgd",
            learning_rate=LEARNING_RATE,
            max_grad_norm=0.0,
            logging_steps=1,
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
        )
        assert args.group_split == "rows"
        RecordingTrainer.generated = []
        trainer = RecordingTrainer(model_path, reward_funcs=digit_reward, args=args, train_dataset=dataset)
        trainer.train()
        rank = trainer.accelerator.process_index
        assert trainer.accelerator.num_processes == 2 and trainer.state.global_step == 1
        (rows,) = trainer.generated
        result = {
            "rank": rank,
            "rows": rows,
            "params": args.objective_params(),
            "learning_rate": LEARNING_RATE,
            "coefficient_form": trainer._coefficient_form,
            "logged_keys": sorted({k for row in trainer.state.log_history for k in row}),
        }
        with open(os.path.join(out_dir, f"{objective}-rank{rank}.json"), "w") as f:
            json.dump(result, f)
        if rank == 0:
            state = {name: p.detach().cpu() for name, p in trainer.model.named_parameters()}
            torch.save(state, os.path.join(out_dir, f"{objective}-params.pt"))
        trainer.accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
