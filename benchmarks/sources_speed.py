"""Rewards per second of the task sources' scorers on one core: math-verify (math:synthetic) and
reasoning-gym tasks, with NP-Bench for reference.

    python benchmarks/sources_speed.py                     # 400 completions per source
    python benchmarks/sources_speed.py --completions 2000 --sources math:synthetic,rg:countdown

Each source scores a mix of completions of held-out items, in the proportions a policy early in
training writes them: a correct answer in another form (math: ``\\frac{2p}{2q}`` for ``p/q``;
reasoning-gym: the reference answer), a wrong well-formed answer, and no final answer. Scoring
goes through ``dmpo.evaluation.sources.judge`` (the time limit and failure policy of
evaluation; training's reward calls the same ``score`` under the same ``call_with_timeout``).
The process is pinned to one CPU core where the OS allows it; the first score of each source
(imports, sympy caches) is not timed. Reported: rewards/s (CPU time and wall time), median and
99th-percentile milliseconds per reward, and the share of each kind of completion that was
judged correct (a check that the mix is scored as expected; a task without a reference answer,
such as ``rg:graph_color``, scores its "correct" case as wrong).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from fractions import Fraction

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dmpo.evaluation.sources import judge
from dmpo.npbench.splits import EVAL_SEED_START
from dmpo.pipeline.sources import get_source

DEFAULT_SOURCES = "math:synthetic,rg:countdown,rg:graph_color,rg:basic_arithmetic,knapsack"


def completions_for(source, item) -> dict[str, str]:
    """(kind → completion) for one item."""
    if source.kind == "math":
        value = Fraction(item.answer)
        other = f"\\frac{{{2 * value.numerator}}}{{{2 * value.denominator}}}"
        return {"correct": f"Let me compute. \\boxed{{{other}}}", "wrong": f"Answer: {value + 1}",
                "none": "I am not sure."}
    if source.kind == "rg":
        right = item.answer if item.answer is not None else "{}"
        return {"correct": f"Thinking... <answer>{right}</answer>", "wrong": "<answer>1 + 1</answer>",
                "none": "I am not sure."}
    return {"correct": f"Answer: {item.solution}", "wrong": "Answer: [0, 0]", "none": "I am not sure."}


def measure(spec: str, completions: int, timeout_s: float) -> dict:
    source = get_source(spec)
    items = source.items(start=EVAL_SEED_START, count=max(1, completions // 3))
    cases = [(item, kind, text) for item in items for kind, text in completions_for(source, item).items()]
    cases = cases[:completions]
    judge(source, cases[0][0], cases[0][2], timeout_s)  # warm-up: imports, caches
    per_call, correct, failed = [], {}, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for item, kind, text in cases:
        started = time.perf_counter()
        verdict, did_fail = judge(source, item, text, timeout_s)
        per_call.append(time.perf_counter() - started)
        failed += did_fail
        correct.setdefault(kind, []).append(bool(verdict.correct))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    per_call.sort()
    return {"source": spec, "n": len(cases), "per_s_cpu": len(cases) / max(cpu, 1e-9),
            "per_s_wall": len(cases) / max(wall, 1e-9), "median_ms": 1000 * statistics.median(per_call),
            "p99_ms": 1000 * per_call[min(len(per_call) - 1, int(0.99 * len(per_call)))], "failed": failed,
            "correct": {k: sum(v) / len(v) for k, v in correct.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help="comma-separated source specs")
    parser.add_argument("--completions", type=int, default=400, help="completions scored per source")
    parser.add_argument("--timeout", type=float, default=10.0, help="time limit per judgement (s)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"{'source':26}{'n':>6}{'rewards/s cpu':>15}{'rewards/s wall':>16}{'median ms':>11}{'p99 ms':>9}"
          f"{'failed':>8}  correct (correct / wrong / none)")
    for spec in args.sources.split(","):
        row = measure(spec.strip(), args.completions, args.timeout)
        share = " / ".join(f"{row['correct'].get(k, 0):.2f}" for k in ("correct", "wrong", "none"))
        print(f"{row['source']:26}{row['n']:>6}{row['per_s_cpu']:>15.0f}{row['per_s_wall']:>16.0f}"
              f"{row['median_ms']:>11.2f}{row['p99_ms']:>9.2f}{row['failed']:>8}  {share}", flush=True)


if __name__ == "__main__":
    main()
