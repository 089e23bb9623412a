"""Share of a CPU training step spent in the reward functions, per task source.

    python benchmarks/reward_share.py                      # math:synthetic and the countdown of the grid
    python benchmarks/reward_share.py --steps 10 --sources math:synthetic

For each source: the built-in tiny model warm-started by SFT on that source (cached like every
SFT start; the countdown one is the quality grid's ``countdown`` start), then ``--steps`` GRPO
steps of 32 completions (G = 8) in this process with one torch thread. The trainer logs, per
step, TRL's ``step_time`` and ``timing/rewards`` (wall seconds inside the reward functions);
reported: their medians over the steps after the first (warm-up), the share
``timing/rewards / step_time``, and the mean reward (a check that the completions are being
scored as answers, not rejected as garbage at once). The target of issue 12: ≤ 10%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dmpo.pipeline.settings import SFTSettings, TrainSettings
from quality import BUDGETS, COUNTDOWN

MATH = "math:synthetic"


def sft_for(spec: str) -> SFTSettings:
    if spec == COUNTDOWN:
        return BUDGETS["countdown"].comparison.sft
    return SFTSettings(tasks=(spec,), instances_per_task=1000, answers_per_instance=1, max_length=512)


def measure(spec: str, steps: int) -> dict:
    from dmpo.pipeline.sft import ensure_default_model
    from dmpo.pipeline.train import train

    model = ensure_default_model(sft_for(spec), progress=False)
    with tempfile.TemporaryDirectory(prefix="dmpo-reward-share-") as out:
        run = TrainSettings(objective="grpo", tasks=(spec,), model=os.fspath(model), output_dir=out,
                            max_steps=steps, save_steps=10_000, seed=0)
        history = train(run, progress=False).history
    rows = [row for row in history if "timing/rewards" in row and "step_time" in row][1:]
    if not rows:
        raise SystemExit(f"{spec}: no step logged both step_time and timing/rewards")
    scoring = statistics.median(row["timing/rewards"] for row in rows)
    step = statistics.median(row["step_time"] for row in rows)
    return {"source": spec, "steps": len(rows), "step_s": step, "rewards_s": scoring, "share": scoring / step,
            "reward": statistics.fmean(row["reward"] for row in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", default=f"{MATH},{COUNTDOWN}", help="comma-separated source specs")
    parser.add_argument("--steps", type=int, default=21, help="GRPO steps per source (the first is not counted)")
    args = parser.parse_args()
    print(f"{'source':30}{'steps':>6}{'step s':>9}{'rewards s':>11}{'share':>8}{'reward':>8}")
    for spec in args.sources.split(","):
        row = measure(spec.strip(), args.steps)
        name = row["source"] if len(row["source"]) <= 28 else row["source"][:25] + "..."
        print(f"{name:30}{row['steps']:>6}{row['step_s']:>9.3f}{row['rewards_s']:>11.4f}"
              f"{100 * row['share']:>7.1f}%{row['reward']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
