"""Fuzz every NP-Bench task's judge with adversarial completions (the generator of
``tests/npbench/test_adversarial.py``: garbage, worst-case families, mutated and decorated
witnesses) and count what happened. Checks per case: ``evaluate`` does not raise, agrees with the
independent reference in ``tests/npbench/reference`` (never accepts an infeasible answer, never
refuses a feasible one), a valid answer never beats a proved optimum, and the case takes less
than ``--max-ms`` of CPU time. Prints a Markdown table; exits 1 if any check failed.

    python benchmarks/fuzz.py [--cases 1000000] [--seed 0] [--tasks all] [--max-ms 50]

``--cases`` is the total, split evenly over the tasks.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.npbench

from tests.npbench.adversarial import instance_pool, random_case

from dmpo import npbench
from dmpo.npbench.explore import question_size
from dmpo.npbench.parsing import extract_answer

COLUMNS = ("cases", "well_formed", "valid", "optimal", "exceptions", "disagreements", "above_optimum",
           "slow", "max_ms")


def fuzz_task(name: str, cases: int, seed: int, max_ms: float) -> tuple[Counter, list[str]]:
    task = npbench.get_task(name)
    reference = importlib.import_module(f"tests.npbench.reference.{name}")
    pool = instance_pool(name)
    rng = random.Random(f"fuzz/{name}/{seed}")
    counts: Counter = Counter()
    worst = 0.0
    failures: list[str] = []
    for _ in range(cases):
        inst = rng.choice(pool)
        text = random_case(rng, task, inst, question_size(inst.question))
        counts["cases"] += 1
        start = time.thread_time()
        try:
            verdict = task.evaluate(inst, text)
        except Exception:
            counts["exceptions"] += 1
            failures.append(f"{name}: exception on {text[:120]!r}\n{traceback.format_exc()}")
            continue
        elapsed = 1000 * (time.thread_time() - start)
        worst = max(worst, elapsed)
        if elapsed > max_ms:
            counts["slow"] += 1
            failures.append(f"{name}: {elapsed:.1f} ms on {text[:120]!r}")
        counts["well_formed"] += verdict.well_formed
        counts["valid"] += verdict.valid
        counts["optimal"] += verdict.valid and verdict.quality_ratio >= 1 - 1e-9
        if verdict.valid and verdict.quality_ratio > 1 + 1e-9:
            counts["above_optimum"] += 1
            failures.append(f"{name}: QR {verdict.quality_ratio} on {text[:120]!r}")
        answer = extract_answer(text)
        parsed = None if answer is None else task.parse_answer(answer)
        if parsed is None:
            agrees = not verdict.well_formed
        else:
            ok, value = reference.feasible(inst.question, parsed)
            agrees = verdict.well_formed and verdict.valid == ok and (not ok or abs(verdict.value - value) < 1e-9)
        if not agrees:
            counts["disagreements"] += 1
            failures.append(f"{name}: validator and reference disagree on {text[:120]!r}: {verdict}")
    counts["max_ms"] = worst
    return counts, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="total cases, split over the tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--max-ms", type=float, default=50.0, help="CPU time above which a case counts as slow")
    args = parser.parse_args()
    names = npbench.list_tasks() if args.tasks == "all" else args.tasks.split(",")
    per_task = max(1, args.cases // len(names))
    start = time.perf_counter()
    print(f"{per_task * len(names):,} cases ({per_task:,} per task), seed {args.seed}")
    print("| task | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    total: Counter = Counter()
    failures: list[str] = []
    for name in names:
        counts, failed = fuzz_task(name, per_task, args.seed, args.max_ms)
        failures += failed
        for key in COLUMNS:
            total[key] = max(total[key], counts[key]) if key == "max_ms" else total[key] + counts[key]
        print(f"| {name} | " + " | ".join(_cell(counts[k]) for k in COLUMNS) + " |", flush=True)
    print("| **all** | " + " | ".join(_cell(total[k]) for k in COLUMNS) + " |")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    for failure in failures[:20]:
        print(failure)
    return 1 if failures else 0


def _cell(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else f"{value:,}"


if __name__ == "__main__":
    sys.exit(main())
