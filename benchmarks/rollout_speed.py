"""Rollout speed of DMPOTrainer's generation backends (issue 15): generation tokens/s and the
whole training step, for TRL's default ``model.generate``, transformers' continuous batching
and a static cache with the decoding step compiled (``DMPOConfig(generation_backend=...)``).

    python benchmarks/rollout_speed.py --device cuda --bf16 --json runs/rollout_speed.json
    python benchmarks/rollout_speed.py --dry-run --json /tmp/rollout.json   # same code, CPU, tiny, < 1 min

Models are Llamas built from scratch with the built-in character tokenizer
(``dmpo.models.build_tiny_model``): ``57m`` (hidden 768, 6 layers: the model of
``benchmarks/overhead.py`` and ``gpu.sh``, 56.8M parameters) and ``350m`` (hidden 1024, 21 layers,
352.6M). A case is one size, one batch (completions × completion tokens, group size 8) and one
backend: a DMPO run of ``--warmup`` + ``--steps`` optimiser steps on NP-Bench knapsack prompts with
a cheap reward. No completion ends early (the end-of-sequence id is set to one the model cannot
emit), so every backend generates exactly completions × tokens per step. Reported per case:
the first step (compilation included), the median measured step, the median generation time
within a step and its tokens/s, the step's completion tokens/s, the step time of the default
backend over this one (same size and batch), and peak memory (CUDA: ``max_memory_allocated``
over the case; CPU: the process's peak RSS so far, which only grows). Cases run in order, the
JSON is rewritten after each, a case that fails is recorded with its error and the next one
runs, and cases that would start after ``--budget`` seconds are recorded as skipped.

``--dry-run``: two tiny sizes, small batches, one warm-up and one measured step, on the CPU,
with torch.compile's ``eager`` backend for the compiled path (dynamo traces the decoding step as
on a GPU; inductor's code generation, minutes on a small CPU, is skipped). Its numbers mean
nothing; it checks the code path.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import TrainerCallback

from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset
from dmpo.engines.trl.config import GENERATION_BACKENDS
from dmpo.models import build_tiny_model


@dataclass(frozen=True)
class Size:
    hidden: int
    layers: int
    heads: int


SIZES = {
    "57m": Size(768, 6, 12),
    "350m": Size(1024, 21, 16),
    # --dry-run sizes
    "tiny": Size(32, 1, 2),
    "small": Size(64, 2, 4),
}
GPU_CASES = "57m:64x128,350m:128x256,57m:256x512"
DRY_CASES = "tiny:8x8,small:16x8"


def digit_reward(completions, **kwargs):
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in completions]


class Timer(TrainerCallback):
    """Wall time of every optimiser step, and of the generation calls inside it (synchronised
    on CUDA), with the number of tokens generated."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.step: list[float] = []
        self.generation: list[float] = []
        self.tokens: list[int] = []
        self._generation = 0.0
        self._tokens = 0

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def attach(self, trainer) -> None:
        generate = trainer._generate_single_turn

        def timed(*args, **kwargs):
            start = self.now()
            completion_ids, logprobs = generate(*args, **kwargs)
            self._generation += self.now() - start
            self._tokens += sum(len(c) for c in completion_ids)
            return completion_ids, logprobs

        trainer._generate_single_turn = timed

    def on_step_begin(self, args, state, control, **kwargs):
        self._generation, self._tokens = 0.0, 0
        self._start = self.now()

    def on_step_end(self, args, state, control, **kwargs):
        self.step.append(self.now() - self._start)
        self.generation.append(self._generation)
        self.tokens.append(self._tokens)


def parse_cases(text: str) -> list[tuple[str, int, int]]:
    cases = []
    for item in text.split(","):
        try:
            size, shape = item.strip().split(":")
            completions, length = (int(x) for x in shape.lower().split("x"))
        except ValueError:
            raise SystemExit(f"rollout_speed.py: error: a case is SIZE:COMPLETIONSxTOKENS, got {item!r}") from None
        if size not in SIZES:
            raise SystemExit(f"rollout_speed.py: error: unknown size {size!r}; sizes: {sorted(SIZES)}")
        if completions < 1 or length < 1:
            raise SystemExit(f"rollout_speed.py: error: completions and tokens must be positive in {item!r}")
        cases.append((size, completions, length))
    return cases


def never_stop(trainer) -> None:
    """Make every completion run to full length: the end-of-sequence id becomes one outside the
    vocabulary, so no backend can sample it (the same work for every backend)."""
    never = trainer.model.config.vocab_size + 1000
    trainer.eos_token_ids = [never]
    trainer.generation_config.eos_token_id = [never]
    trainer.generation_kwargs["eos_token_id"] = [never]


def peak_memory_mib(cuda: bool) -> float:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_case(model_path: Path, dataset, size: str, completions: int, length: int, backend: str,
             opts: argparse.Namespace, out_dir: str) -> dict:
    cuda = opts.device == "cuda"
    common = {"activation_checkpointing" if "activation_checkpointing" in DMPOConfig.__dataclass_fields__
              else "gradient_checkpointing": False}
    args = DMPOConfig(
        output_dir=out_dir, generation_backend=backend, num_generations=opts.group_size,
        per_device_train_batch_size=completions, max_completion_length=length,
        max_steps=opts.warmup + opts.steps, learning_rate=1e-6, seed=opts.seed, use_cpu=not cuda,
        bf16=opts.bf16, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True, **common,
    )  # fmt: skip
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = Timer(cuda)
    trainer = DMPOTrainer(str(model_path), reward_funcs=digit_reward, args=args, train_dataset=dataset,
                          callbacks=[timer])  # fmt: skip
    never_stop(trainer)
    if backend == "static_compiled" and opts.compile_backend != "inductor":
        trainer.generation_config.compile_config.backend = opts.compile_backend
    timer.attach(trainer)
    try:
        trainer.train()
        measured = slice(opts.warmup, None)
        step = statistics.median(timer.step[measured])
        generation = statistics.median(timer.generation[measured])
        tokens = statistics.median(timer.tokens[measured])
        return {
            "first_step_s": timer.step[0],
            "step_s": step,
            "generation_s": generation,
            "generation_tokens": tokens,
            "generation_tokens_per_s": tokens / generation,
            "step_tokens_per_s": completions * length / step,
            "peak_memory_mib": peak_memory_mib(cuda),
        }
    finally:
        del trainer
        gc.collect()
        torch._dynamo.reset()
        if cuda:
            torch.cuda.empty_cache()


def versions() -> dict:
    import transformers
    import trl

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "trl": trl.__version__}  # fmt: skip


def write_json(path: Path | None, report: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)


def add_speedups(cases: list[dict]) -> None:
    default = {(c["size"], c["completions"], c["length"]): c.get("step_s") for c in cases
               if c["backend"] == "default" and c["status"] == "ok"}  # fmt: skip
    for case in cases:
        base = default.get((case["size"], case["completions"], case["length"]))
        ok = case["status"] == "ok" and base is not None
        case["speedup_vs_default"] = base / case["step_s"] if ok else None


def table(report: dict) -> str:
    lines = [f"{'size':>5} {'params':>7} {'batch':>8} {'backend':>16} {'first s':>8} {'step s':>7} {'gen s':>7} "
             f"{'gen tok/s':>10} {'x default':>9} {'peak MiB':>9}  status"]  # fmt: skip
    for c in report["cases"]:
        count = report["models"][c["size"]]["parameters"]
        params = f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.0f}K"
        batch = f"{c['completions']}x{c['length']}"
        if c["status"] != "ok":
            lines.append(f"{c['size']:>5} {params:>7} {batch:>8} {c['backend']:>16} {'':>8} {'':>7} {'':>7} {'':>10} "
                         f"{'':>9} {'':>9}  {c['status']}: {c.get('error') or ''}")  # fmt: skip
            continue
        speedup = f"{c['speedup_vs_default']:.2f}" if c["speedup_vs_default"] else "-"
        lines.append(f"{c['size']:>5} {params:>7} {batch:>8} {c['backend']:>16} {c['first_step_s']:>8.2f} "
                     f"{c['step_s']:>7.3f} {c['generation_s']:>7.3f} {c['generation_tokens_per_s']:>10.0f} "
                     f"{speedup:>9} {c['peak_memory_mib']:>9.0f}  ok")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", help=f"SIZE:COMPLETIONSxTOKENS, comma-separated (default {GPU_CASES}; "
                                         f"--dry-run: {DRY_CASES}); sizes: {', '.join(SIZES)}")
    parser.add_argument("--backends", default=",".join(GENERATION_BACKENDS),
                        help="generation backends, in the order run for each case")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps per case (compilation happens here)")
    parser.add_argument("--steps", type=int, help="measured steps per case (default 2; --dry-run: 1)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (the GPU measurement)")
    parser.add_argument("--compile-backend",
                        help="torch.compile backend of the static_compiled path (default inductor; --dry-run: eager)")
    parser.add_argument("--budget", type=float, default=float("inf"),
                        help="seconds: cases that would start later are recorded as skipped")
    parser.add_argument("--json", type=Path, help="write the results here (rewritten after every case)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the same code on the CPU with tiny sizes, in under a minute")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    if opts.dry_run:
        opts.device, opts.bf16 = "cpu", False
        opts.compile_backend = opts.compile_backend or "eager"
        opts.cases = opts.cases or DRY_CASES
    opts.compile_backend = opts.compile_backend or "inductor"
    if opts.steps is None:
        opts.steps = 1 if opts.dry_run else 2
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("rollout_speed.py: error: --device cuda but no GPU is visible (use --dry-run on a CPU)")
    cases = parse_cases(opts.cases or GPU_CASES)
    backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(GENERATION_BACKENDS))
    if unknown or not backends:
        raise SystemExit(f"rollout_speed.py: error: backends must be among {list(GENERATION_BACKENDS)}, got {unknown}")
    if opts.warmup < 0 or opts.steps < 1 or opts.group_size < 2:
        raise SystemExit("rollout_speed.py: error: need --warmup ≥ 0, --steps ≥ 1, --group-size ≥ 2")
    for _, completions, _ in cases:
        if completions % opts.group_size:
            raise SystemExit(f"rollout_speed.py: error: completions ({completions}) must be a multiple of "
                             f"--group-size ({opts.group_size})")

    started = time.perf_counter()
    cuda = opts.device == "cuda"
    report = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} "
                                                               "torch threads)",
        "dry_run": opts.dry_run, "bf16": opts.bf16, "group_size": opts.group_size, "warmup": opts.warmup,
        "steps": opts.steps, "compile_backend": opts.compile_backend, "versions": versions(),
        "peak_memory_kind": "torch.cuda.max_memory_allocated per case" if cuda
        else "process peak RSS so far (ru_maxrss; only grows)",
        "models": {}, "cases": [],
    }  # fmt: skip
    print(f"rollout speed: device={report['device']} bf16={opts.bf16} G={opts.group_size} "
          f"steps={opts.warmup}+{opts.steps} backends={backends} compile backend={opts.compile_backend}")
    with tempfile.TemporaryDirectory() as tmp:
        most = max(c * (opts.warmup + opts.steps) // opts.group_size for _, c, _ in cases)
        dataset = build_npbench_dataset("knapsack", difficulty="tiny", count=max(most, 8), seed=opts.seed)
        models: dict[str, Path] = {}
        for size, completions, length in cases:
            if size not in models:
                shape = SIZES[size]
                models[size] = build_tiny_model(Path(tmp) / size, hidden_size=shape.hidden, num_layers=shape.layers,
                                                heads=shape.heads, max_position_embeddings=1024)  # fmt: skip
                with torch.device("meta"):
                    from transformers import AutoConfig, AutoModelForCausalLM

                    count = sum(p.numel() for p in AutoModelForCausalLM.from_config(
                        AutoConfig.from_pretrained(models[size])).parameters())  # fmt: skip
                report["models"][size] = {"hidden": shape.hidden, "layers": shape.layers, "heads": shape.heads,
                                          "parameters": count}  # fmt: skip
            for backend in backends:
                case = {"size": size, "completions": completions, "length": length, "backend": backend}
                if time.perf_counter() - started > opts.budget:
                    case.update(status="skipped", error=f"past the {opts.budget:.0f} s budget")
                else:
                    out_dir = str(Path(tmp) / f"run-{len(report['cases'])}")
                    try:
                        case.update(run_case(models[size], dataset, size, completions, length, backend, opts, out_dir))
                        case["status"] = "ok"
                    except Exception as exc:  # record and go on: one broken backend must not hide the others
                        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                        case.update(status="error", error=f"{type(exc).__name__}: {message}")
                report["cases"].append(case)
                add_speedups(report["cases"])
                report["elapsed_s"] = time.perf_counter() - started
                write_json(opts.json, report)
                print(table({**report, "cases": [case]}).splitlines()[-1], flush=True)
    print()
    print(table(report))
    print(f"done in {report['elapsed_s']:.0f} s" + (f"; JSON: {opts.json}" if opts.json else ""))
    failed = [c for c in report["cases"] if c["status"] == "error"]
    if failed:
        print(f"{len(failed)} case(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
