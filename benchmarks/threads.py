"""torch threads for the built-in tiny model on a small CPU: 1 vs 2 threads, idle and with one
competing busy process, for a training run and an evaluation. Each measurement runs in a fresh
process (so thread settings never leak), measurements interleaved, medians printed.

    OMP_NUM_THREADS=1 python benchmarks/threads.py              # the table of BENCHMARKS.md §8
    python benchmarks/threads.py --repeats 1 --steps 4          # a quick look

Needs the built-in model (`dmpo sft` builds and caches it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def measure(kind: str, threads: int, steps: int) -> float:
    """Seconds of one training run's steps (TRL's train_runtime) or of one evaluation."""
    import torch

    from dmpo.pipeline.settings import TrainSettings

    torch.set_num_threads(threads)
    if kind == "train":
        from dmpo.pipeline.train import train

        with tempfile.TemporaryDirectory() as out:
            result = train(TrainSettings(objective="dmpo", max_steps=steps, output_dir=out, threads=threads),
                           progress=False)
        return next(row["train_runtime"] for row in reversed(result.history) if "train_runtime" in row)
    from dmpo.evaluation.sampling import evaluate_model, heldout_instances
    from dmpo.pipeline.sft import ensure_default_model

    instances = heldout_instances(TrainSettings().tasks, count=16, progress=False)
    model = ensure_default_model(progress=False)
    started = time.perf_counter()
    evaluate_model(model, instances, k=16, max_new_tokens=32, batch_size=128, progress=False)
    return time.perf_counter() - started


def run_one(kind: str, threads: int, busy: bool, steps: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, __file__, "--one", kind, "--threads", str(threads), "--steps", str(steps)],
                             env=env, capture_output=True, text=True, check=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=("train", "eval"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"seconds": measure(args.one, args.threads, args.steps)}))
        return

    cells = [(kind, threads, busy) for kind in ("train", "eval") for busy in (False, True) for threads in (1, 2)]
    times: dict[tuple, list[float]] = {cell: [] for cell in cells}
    for repeat in range(args.repeats):
        for cell in cells if repeat % 2 == 0 else reversed(cells):
            times[cell].append(run_one(*cell, args.steps))
            print(f"  {cell}: {times[cell][-1]:.1f} s", flush=True)
    median = {cell: statistics.median(values) for cell, values in times.items()}
    print(f"\n{os.cpu_count()} CPUs, {args.repeats} interleaved repeats; train = {args.steps} DMPO steps "
          "(32 completions × ≤ 32 tokens), eval = 48 instances × 16 samples")
    print("| work | machine | 1 thread (s) | 2 threads (s) | 2 threads / 1 thread |")
    print("|---|---|---:|---:|---:|")
    for kind in ("train", "eval"):
        for busy in (False, True):
            one, two = median[(kind, 1, busy)], median[(kind, 2, busy)]
            print(f"| {kind} | {'one busy process' if busy else 'idle'} | {one:.1f} | {two:.1f} | {two / one:.2f} |")
    for kind in ("train", "eval"):
        for threads in (1, 2):
            ratio = median[(kind, threads, True)] / median[(kind, threads, False)]
            print(f"{kind}, {threads} thread(s): busy / idle = {ratio:.2f}")


if __name__ == "__main__":
    main()
