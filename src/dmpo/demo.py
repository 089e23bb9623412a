"""``dmpo demo``: SFT warm start → GRPO and DMPO from the same checkpoint, seed and budget →
evaluation of all three on one held-out set → a report folder (``report.md``, PNG plots,
``results.json``).

The default budget is sized to finish in under 15 minutes on 2 CPU cores, the SFT warm start
included when it is not cached yet; the report's last table gives the wall time of each stage.
The pieces are plain functions for reuse (e.g. objectives × seeds in a benchmark harness):

    model = ensure_default_model()                                  # dmpo.engines.trl.sft
    run = run_training("dmpo", model, tasks, max_steps, seed, out)  # dmpo.engines.trl.run
    result = evaluate_model(run.model_dir, instances, k=8)          # dmpo.evaluation
    write_report(folder, {"SFT": ..., "DMPO": result}, histories={...})
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dmpo.engines.settings import DEFAULT_TASKS, SFTSettings
from dmpo.errors import DmpoError
from dmpo.evaluation.report import Report, comparison_text, write_report
from dmpo.evaluation.sampling import EVAL_SEED_START, EvalResult, evaluate_model, heldout_instances


@dataclass
class DemoSettings:
    """The demo's budget. Both objectives get the same model, seed, data, steps and batch."""

    output_dir: str = "runs/demo"
    tasks: tuple[str, ...] = DEFAULT_TASKS
    objectives: tuple[str, ...] = ("grpo", "dmpo")
    model: str | None = None  # None: the built-in tiny model, SFT-warm-started (cached)
    sft: SFTSettings = field(default_factory=SFTSettings)
    max_steps: int = 500
    num_generations: int = 8
    per_device_batch: int = 32
    learning_rate: float = 2e-4
    max_completion_length: int = 32
    seed: int = 0
    objective_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per objective
    eval_count: int = 32  # held-out instances per task
    eval_k: int = 16
    eval_temperature: float = 1.0
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if len(set(self.objectives)) != len(self.objectives) or not self.objectives:
            raise DmpoError(f"the demo needs distinct objectives to compare, got {list(self.objectives)}")


def quick_settings(output_dir: str = "runs/demo-quick") -> DemoSettings:
    """A budget of seconds (for tests and a first look): a smaller model, brief SFT, a few
    steps, a small held-out set. Numbers from it mean nothing."""
    return DemoSettings(
        output_dir=output_dir,
        tasks=("knapsack",),
        sft=SFTSettings(tasks=("knapsack",), instances_per_task=20, answers_per_instance=2, explore_steps=60,
                        hidden_size=32, num_layers=1, heads=2, epochs=4.0, learning_rate=1e-2, batch_size=8),
        max_steps=3,
        num_generations=4,
        per_device_batch=8,
        max_completion_length=16,
        eval_count=2,
        eval_k=4,
    )


def _device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _label(objective: str) -> str:
    return objective.upper().replace("_", "-")


def run_demo(settings: DemoSettings | None = None, *, progress: bool = True) -> Report:
    """Run the whole demo and write its report; returns the report's paths."""
    from dmpo.engines.trl.run import TrainResult, run_training
    from dmpo.engines.trl.sft import ensure_default_model

    settings = settings or DemoSettings()
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    stages = 2 + len(settings.objectives) + 1

    def stage(number: int, text: str) -> None:
        print(f"\n[{number}/{stages}] {text}", flush=True)

    started = time.perf_counter()
    stage(1, "SFT warm start of the built-in tiny model (cached after the first run)")
    if settings.model is None:
        model_path = ensure_default_model(settings.sft, progress=progress)
    else:
        model_path = Path(settings.model)
    print(f"model: {model_path}", flush=True)
    timings["sft"] = time.perf_counter() - started

    runs: dict[str, TrainResult] = {}
    for index, objective in enumerate(settings.objectives):
        label = _label(objective)
        stage(2 + index, f"training {label}: {settings.max_steps} steps, group size {settings.num_generations}, "
                         f"{settings.per_device_batch} completions per step")
        t0 = time.perf_counter()
        runs[label] = run_training(
            objective, model_path, settings.tasks, settings.max_steps, settings.seed,
            out / "runs" / objective,
            num_generations=settings.num_generations,
            per_device_batch=settings.per_device_batch,
            learning_rate=settings.learning_rate,
            max_completion_length=settings.max_completion_length,
            objective_params=settings.objective_params.get(objective, {}),
            progress=progress,
            desc=f"train {label}",
        )
        timings[f"train {label}"] = time.perf_counter() - t0

    stage(stages - 1, f"evaluation: {settings.eval_k} samples per held-out instance, "
                      f"{settings.eval_count} instances per task")
    t0 = time.perf_counter()
    instances = heldout_instances(settings.tasks, difficulty=settings.sft.difficulty, count=settings.eval_count,
                                  seed=EVAL_SEED_START, progress=progress)
    models = {"SFT": model_path, **{label: run.model_dir for label, run in runs.items()}}
    results: dict[str, EvalResult] = {}
    for label, path in models.items():
        results[label] = evaluate_model(
            path, instances, k=settings.eval_k, temperature=settings.eval_temperature,
            max_new_tokens=settings.max_completion_length, batch_size=settings.eval_batch_size,
            seed=settings.seed, progress=progress, desc=f"eval {label}")
    timings["evaluation"] = time.perf_counter() - t0

    stage(stages, "report")
    timings["total"] = time.perf_counter() - started
    record = asdict(replace(settings, model=os.fspath(model_path)))
    report = write_report(
        out, results,
        histories={label: run.history for label, run in runs.items()},
        training_seconds={label: run.seconds for label, run in runs.items()},
        settings=record, timings=timings, group_size=settings.num_generations,
        title="DMPO vs GRPO on NP-Bench (built-in tiny model)" if settings.model is None
        else f"DMPO vs GRPO on NP-Bench ({model_path})",
        notes=[f"Ran on {_device_description()}.",
               f"Every run starts from the same SFT checkpoint with seed {settings.seed} and the same "
               f"{settings.max_steps} steps × {settings.per_device_batch} completions; held-out instances "
               f"use seeds from {EVAL_SEED_START}, disjoint from SFT and RL data.",
               "One seed and a short budget: differences of a few points between GRPO and DMPO can be "
               "seed-to-seed noise. Compare several seeds (run_training / evaluate_model in a loop) before "
               "drawing conclusions."],
    )
    print("\n" + comparison_text(results))
    print(f"\nreport: {report.markdown}  (plots and results.json beside it)")
    return report
