"""Step time of DMPOTrainer against TRL's own GRPOTrainer: same model, batch, seed and config.

    python benchmarks/overhead.py                                   # tiny model on the CPU
    python benchmarks/overhead.py --device cuda --bf16 --hidden-size 512 --layers 8 \
        --completions 64 --group-size 8 --length 256 --repeats 7
    python benchmarks/overhead.py --modality vision --hidden-size 128   # the tiny VLM, grid images

``--modality vision`` builds the built-in tiny VLM (Qwen2-VL) and trains both trainers on image
prompts of vertex cover (``grid`` rendering) through TRL's vision path, the processor as
``processing_class``.

Each repeat trains both trainers from the same checkpoint for ``--warmup + --steps`` optimiser
steps, in alternating order (interleaved, so that drift on a shared machine hits both alike),
and keeps the median time of the measured steps. A step is everything TRL does per optimiser
step: generation, rewards, the forward and backward passes, the optimiser; the loss part is the
forward and backward passes alone (the step without generation, scoring and optimiser), where
the trainers differ. Completions are
forced to full length (``min_new_tokens``) so both trainers do the same work. On a CPU the
table shows process CPU time, which other processes sharing the machine inflate less than wall
time; on a GPU, wall time (synchronised). The summary is the median ratio DMPO/GRPO over
repeats with its spread (quartiles, min, max).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from dmpo.engines.trl import (
    DMPOConfig,
    DMPOTrainer,
    build_npbench_dataset,
    build_npbench_vision_dataset,
)
from dmpo.models import build_tiny_model, build_tiny_vlm, load_model_and_tokenizer


def digit_reward(completions, **kwargs):
    """A cheap reward with spread inside groups, so that every term of the loss is active."""
    completions = [c if isinstance(c, str) else "".join(m["content"] for m in c) for c in completions]
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in completions]


class StepTimer(TrainerCallback):
    """Time of every optimiser step, and of its loss forward + backward passes alone.

    The step is timed between the step callbacks; ``training_step`` (one micro-batch: inputs,
    forward, backward) and ``_prepare_inputs`` (generation and scoring on the first micro-batch
    of a generation) are timed by wrapping the trainer's methods, and their difference summed
    over the step's micro-batches is the loss part, where the two trainers differ.
    """

    def __init__(self, cuda: bool, clock: str):
        self.cuda = cuda
        self.now = time.process_time if clock == "cpu" else time.perf_counter
        self.step: list[float] = []
        self.loss: list[float] = []
        self._loss = 0.0

    def _time(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return self.now()

    def attach(self, trainer) -> None:
        def timed(method, sign):
            def call(*args, **kwargs):
                start = self._time()
                out = method(*args, **kwargs)
                self._loss += sign * (self._time() - start)
                return out

            return call

        trainer.training_step = timed(trainer.training_step, +1)
        trainer._prepare_inputs = timed(trainer._prepare_inputs, -1)

    def on_step_begin(self, args, state, control, **kwargs):
        self._loss = 0.0
        self._start = self._time()

    def on_step_end(self, args, state, control, **kwargs):
        self.step.append(self._time() - self._start)
        self.loss.append(self._loss)


def _key_value(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run(kind: str, model_path: Path, dataset, opts: argparse.Namespace, out_dir: str, clock: str) -> StepTimer:
    common = {
        "output_dir": out_dir,
        "num_generations": opts.group_size,
        "per_device_train_batch_size": opts.completions,
        "gradient_accumulation_steps": opts.accumulation,
        "max_completion_length": opts.length,
        "generation_kwargs": {"min_new_tokens": opts.length},
        "max_steps": opts.warmup + opts.steps,
        "learning_rate": 1e-5,
        "seed": opts.seed,
        "use_cpu": opts.device == "cpu",
        "bf16": opts.bf16,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
    }
    if "activation_checkpointing" in GRPOConfig.__dataclass_fields__:
        common["activation_checkpointing"] = False
    else:
        common["gradient_checkpointing"] = False
    if kind == "dmpo":
        args = DMPOConfig(objective=opts.objective, objective_kwargs=dict(opts.objective_param), **common)
        trainer_cls = DMPOTrainer
    else:
        args = GRPOConfig(loss_type=opts.trl_loss_type, beta=opts.trl_beta, **common)
        trainer_cls = GRPOTrainer
    timer = StepTimer(cuda=opts.device == "cuda", clock=clock)
    if opts.modality == "vision":  # the processor as processing_class, as `dmpo train --modality vision` does
        model, processor = load_model_and_tokenizer(model_path)
        trainer = trainer_cls(model, reward_funcs=digit_reward, args=args, train_dataset=dataset,
                              processing_class=processor, callbacks=[timer])  # fmt: skip
    else:
        trainer = trainer_cls(str(model_path), reward_funcs=digit_reward, args=args, train_dataset=dataset,
                              callbacks=[timer])  # fmt: skip
    timer.attach(trainer)
    trainer.train()
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a causal LM folder or hub id (default: build the tiny model)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--completions", type=int, default=16, help="per-device batch, in completions")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--accumulation", type=int, default=1, help="gradient_accumulation_steps")
    parser.add_argument("--length", type=int, default=32, help="completion length (forced)")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps per run")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved runs of each trainer")
    parser.add_argument("--objective", default="dmpo")
    parser.add_argument("--objective-param", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
                        help="objective parameter (repeatable), e.g. k=4")
    parser.add_argument("--trl-loss-type", default="grpo", help="GRPOTrainer's loss_type (DMPO's base is grpo)")
    parser.add_argument("--trl-beta", type=float, default=0.0,
                        help="GRPOTrainer's KL weight; non-zero makes it run a reference model too (compare "
                             "with objectives that have a reference term, e.g. flowrl)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads on the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modality", choices=["text", "vision"], default="text",
                        help="vision: the built-in tiny VLM on grid images of vertex cover")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)

    with tempfile.TemporaryDirectory() as tmp:
        build = build_tiny_vlm if opts.modality == "vision" else build_tiny_model
        model_path = opts.model or build(
            Path(tmp) / "model", hidden_size=opts.hidden_size, num_layers=opts.layers, heads=opts.heads
        )
        prompts = opts.completions * opts.accumulation // opts.group_size * (opts.warmup + opts.steps)
        if opts.modality == "vision":
            dataset = build_npbench_vision_dataset("vertex_cover", difficulty="tiny", count=max(prompts, 8),
                                                   seed=opts.seed, render="grid")
        else:
            dataset = build_npbench_dataset("knapsack", difficulty="tiny", count=max(prompts, 8), seed=opts.seed)
        clock = "cpu" if opts.device == "cpu" else "wall"
        print(
            f"device={opts.device} bf16={opts.bf16} threads={torch.get_num_threads()} "
            f"model={opts.model or ('tiny VLM' if opts.modality == 'vision' else 'tiny')} "
            f"hidden={opts.hidden_size} layers={opts.layers} completions={opts.completions} "
            f"G={opts.group_size} accumulation={opts.accumulation} length={opts.length} "
            f"steps={opts.warmup}+{opts.steps} repeats={opts.repeats} objective={opts.objective} "
            f"params={dict(opts.objective_param)} vs GRPOTrainer(loss_type={opts.trl_loss_type}, "
            f"beta={opts.trl_beta}); clock={clock} time"
        )
        print(f"{'repeat':>6} {'first':>6} {'GRPO step':>10} {'DMPO step':>10} {'ratio':>6} "
              f"{'GRPO loss':>10} {'DMPO loss':>10} {'ratio':>6}")  # fmt: skip
        step_ratios, loss_ratios = [], []
        for repeat in range(opts.repeats):
            order = ["dmpo", "grpo"] if repeat % 2 == 0 else ["grpo", "dmpo"]
            timers = {k: run(k, model_path, dataset, opts, str(Path(tmp) / f"{k}{repeat}"), clock) for k in order}
            step = {k: statistics.median(t.step[opts.warmup :]) for k, t in timers.items()}
            loss = {k: statistics.median(t.loss[opts.warmup :]) for k, t in timers.items()}
            step_ratios.append(step["dmpo"] / step["grpo"])
            loss_ratios.append(loss["dmpo"] / loss["grpo"])
            print(f"{repeat:>6} {order[0]:>6} {step['grpo']:>10.4f} {step['dmpo']:>10.4f} {step_ratios[-1]:>6.3f} "
                  f"{loss['grpo']:>10.4f} {loss['dmpo']:>10.4f} {loss_ratios[-1]:>6.3f}")  # fmt: skip
        for name, ratios in (("step", step_ratios), ("loss forward+backward", loss_ratios)):
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            print(
                f"{name}: median ratio DMPO/GRPO {statistics.median(ratios):.3f} "
                f"(quartiles {q[0]:.3f}–{q[2]:.3f}, min {min(ratios):.3f}, max {max(ratios):.3f})"
            )


if __name__ == "__main__":
    main()
