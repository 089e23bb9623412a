"""NP-Bench throughput: validator answers/s (medium) and generation-with-optimum instances/s
per difficulty, per task. Prints a Markdown table; run on an otherwise idle machine.

    python benchmarks/npbench_speed.py [--tasks all] [--difficulties tiny,easy,medium,hard,bench]
                                       [--gen-seconds 3] [--validate-seconds 1]

Targets (issue 2): validation ≥ 20,000 answers/s per core on medium instances; generation of
`easy` instances with proved optima ≥ 20/s per task. Single process, so numbers are per core.
"""

from __future__ import annotations

import argparse
import platform
import time

from dmpo import npbench


def validation_rate(task: npbench.Task, seconds: float) -> float:
    instances = [task.generate(seed=s, difficulty="medium") for s in range(3)]
    # Realistic completions: reasoning text then the answer; valid and invalid ones mixed.
    completions = [(inst, f"Let me think step by step.\nAnswer: {inst.solution}") for inst in instances]
    completions += [(inst, "Answer: [0, 0]") for inst in instances]
    for inst, text in completions:  # prepare (cached per instance) outside the timing
        task.evaluate(inst, text)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for inst, text in completions:
            task.evaluate(inst, text)
        count += len(completions)
    return count / (time.perf_counter() - start)


def generation_rate(task: npbench.Task, difficulty: str, seconds: float, max_count: int) -> tuple[float, int, int]:
    count, proved, start = 0, 0, time.perf_counter()
    while count < max_count and (count == 0 or time.perf_counter() - start < seconds):
        proved += task.generate(seed=count, difficulty=difficulty).proved
        count += 1
    return count / (time.perf_counter() - start), count, proved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--difficulties", default="tiny,easy,medium,hard,bench")
    parser.add_argument("--gen-seconds", type=float, default=3.0, help="time budget per task and difficulty")
    parser.add_argument("--max-count", type=int, default=200)
    parser.add_argument("--validate-seconds", type=float, default=1.0)
    args = parser.parse_args()
    names = npbench.list_tasks() if args.tasks == "all" else args.tasks.split(",")
    difficulties = args.difficulties.split(",")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}")
    print("| task | validate/s (medium) | " + " | ".join(f"gen/s {d} (proved/n)" for d in difficulties) + " |")
    print("|---|---:|" + "---:|" * len(difficulties))
    for name in names:
        task = npbench.get_task(name)
        cells = [f"{validation_rate(task, args.validate_seconds):,.0f}"]
        for difficulty in difficulties:
            rate, n, proved = generation_rate(task, difficulty, args.gen_seconds, args.max_count)
            cells.append(f"{rate:,.1f} ({proved}/{n})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
