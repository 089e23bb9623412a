"""Worst-case latency of judging a completion: ``task.evaluate(instance, text)`` on adversarial
inputs (``tests/npbench/adversarial.py``: WORST_CASES) of 1 KB to 1 MB, on all 14 tasks.
Prints a Markdown table: one row per input family, one column per size, each cell the slowest
task's time in ms (the median of ``--repeats`` runs per task, each timed as the CPU time of the
evaluating thread, so that other jobs on a shared machine do not count), and the slowest cell
per size.

    python benchmarks/parse_worst.py [--sizes 1000,10000,100000,1000000] [--repeats 3]

Targets (issue 9): at most 5 ms up to 10 KB and 100 ms up to 1 MB on one core. Run with
OMP_NUM_THREADS=1 on an otherwise idle machine; single process, so numbers are per core.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.npbench.adversarial

from tests.npbench.adversarial import WORST_CASES

from dmpo import npbench

TARGETS_MS = {1_000: 5.0, 10_000: 5.0, 100_000: 100.0, 1_000_000: 100.0}


def latency_ms(task: npbench.Task, inst: npbench.Instance, text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        task.evaluate(inst, text)
        times.append(time.thread_time() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", default="all")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    names = npbench.list_tasks() if args.tasks == "all" else args.tasks.split(",")
    instances = {}
    for name in names:
        task = npbench.get_task(name)
        inst = task.generate(seed=0, difficulty="medium")
        task.evaluate(inst, f"Answer: {inst.solution}")  # prepare outside the timing
        instances[name] = (task, inst)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"{len(names)} tasks, thread CPU time, median of {args.repeats}")
    print("| input family | " + " | ".join(_label(n) for n in sizes) + " | slowest task at the largest size |")
    print("|---|" + "---:|" * len(sizes) + "---|")
    worst = dict.fromkeys(sizes, 0.0)
    for family, generate in WORST_CASES.items():
        cells, slowest = [], ""
        for n in sizes:
            text = generate(n)
            per_task = {name: latency_ms(task, inst, text, args.repeats) for name, (task, inst) in instances.items()}
            name, ms = max(per_task.items(), key=lambda kv: kv[1])
            worst[n] = max(worst[n], ms)
            cells.append(f"{ms:.3f}")
            slowest = name
        print(f"| {family} | " + " | ".join(cells) + f" | {slowest} |")
    print("| **worst** | " + " | ".join(f"**{worst[n]:.3f}**" for n in sizes) + " | |")
    failed = [n for n in sizes if worst[n] > TARGETS_MS.get(n, float("inf"))]
    print("targets (5 ms up to 10 KB, 100 ms up to 1 MB): " + ("missed at " + ", ".join(map(_label, failed))
                                                             if failed else "met"))


def _label(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB" if n >= 1000 else f"{n} B"


if __name__ == "__main__":
    main()
