"""``dmpo demo``: SFT warm start → GRPO and DMPO from the same checkpoint, seed and budget →
evaluation of all three on one held-out set → a report folder (``report.md``, PNG plots,
``results.json``).

The default budget is sized to finish in under 15 minutes on 2 CPU cores, the SFT warm start
included when it is not cached yet; the report's last table gives the wall time of each stage.
The pieces are plain functions for reuse (e.g. objectives × seeds in a benchmark harness):

    model = ensure_default_model()                                  # dmpo.pipeline.sft
    run = run_training("dmpo", model, tasks, max_steps, seed, out)  # dmpo.pipeline.train
    result = evaluate_model(run.model_dir, instances, k=8)          # dmpo.evaluation
    write_report(folder, {"SFT": ..., "DMPO": result}, histories={...})
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.evaluation.report import Report, comparison_text, write_report
from dmpo.evaluation.sampling import EvalResult, evaluate_model, heldout_instances
from dmpo.paths import output_dir
from dmpo.pipeline.settings import (
    ComparisonSettings,
    EvalSettings,
    SFTSettings,
    TrainSettings,
    apply_threads,
)
from dmpo.pipeline.sources import is_npbench


@dataclass
class DemoSettings(ComparisonSettings):
    """The demo's budget: one seed, every objective from the same model with the same data,
    steps and batch (``train``), one held-out set (``evaluation``)."""

    output_dir: str = "runs/demo"
    # Processes at a time for the training arms and the evaluations (each with the settings'
    # threads, one by default on a CPU); 1 runs everything in this process, with progress bars.
    workers: int = 2
    train: TrainSettings = field(default_factory=lambda: TrainSettings(max_steps=500))
    evaluation: EvalSettings = field(default_factory=lambda: EvalSettings(count=32, k=16, batch_size=128))

    def __post_init__(self) -> None:
        super().__post_init__()
        others = [t for t in self.train.tasks if not is_npbench(t)]
        if others:
            raise DmpoError(f"the demo reports NP-Bench metrics; train it on NP-Bench tasks, not {others}")
        if self.workers < 1:
            raise DmpoError(f"workers must be at least 1, got {self.workers}")
        if len(self.seeds) != 1:
            raise DmpoError(f"the demo runs one seed, got {list(self.seeds)}; "
                            "benchmarks/quality.py compares objectives over several seeds")

    @property
    def seed(self) -> int:
        return self.seeds[0]


def quick_settings(output_dir: str = "runs/demo-quick") -> DemoSettings:
    """A budget of seconds (for tests and a first look): a smaller model, brief SFT, a few
    steps, a small held-out set. Numbers from it mean nothing."""
    return DemoSettings(
        output_dir=output_dir,
        sft=SFTSettings(tasks=("knapsack",), instances_per_task=20, answers_per_instance=2, explore_steps=60,
                        hidden_size=32, num_layers=1, heads=2, epochs=4.0, learning_rate=1e-2, batch_size=8),
        train=TrainSettings(tasks=("knapsack",), max_steps=3, num_generations=4, per_device_batch=8,
                            max_completion_length=16),
        evaluation=EvalSettings(count=2, k=4, batch_size=128),
    )


def vision_settings(output_dir: str = "runs/demo-vision") -> DemoSettings:
    """The vision demo: the built-in tiny VLM warm-started on ``grid`` images of vertex cover
    (the picture carries the graph, the text only the task's name), then GRPO and DMPO, then k
    samples per held-out picture. Sized to finish within 15 minutes on 2 CPU cores, the SFT
    included: measured as CPU time on a busy machine, SFT 83 s, each 300-step arm 240 s (the two
    arms run side by side), each evaluation 4 s — about 6 minutes on 2 idle cores."""
    tasks = ("vertex_cover",)
    return DemoSettings(
        output_dir=output_dir,
        sft=SFTSettings(tasks=tasks, modality="vision", instances_per_task=400, answers_per_instance=4, epochs=3.0),
        train=TrainSettings(tasks=tasks, modality="vision", max_steps=300, num_generations=8, per_device_batch=32,
                            max_completion_length=24),
        evaluation=EvalSettings(count=32, k=16, batch_size=128),
    )


def quick_vision_settings(output_dir: str = "runs/demo-vision-quick") -> DemoSettings:
    """The vision demo at a budget of seconds (tests, a first look); numbers from it mean nothing."""
    tasks = ("vertex_cover",)
    return DemoSettings(
        output_dir=output_dir,
        sft=SFTSettings(tasks=tasks, modality="vision", instances_per_task=10, answers_per_instance=2,
                        explore_steps=40, hidden_size=32, num_layers=1, heads=2, vision_hidden_size=16,
                        vision_layers=1, epochs=2.0, learning_rate=1e-2, batch_size=8),
        train=TrainSettings(tasks=tasks, modality="vision", max_steps=2, num_generations=4, per_device_batch=8,
                            max_completion_length=12),
        evaluation=EvalSettings(count=2, k=4, batch_size=128),
    )


def _train_job(run: TrainSettings, desc: str, progress: bool = False) -> Any:
    from dmpo.pipeline.train import train

    return train(run, progress=progress, desc=desc)


def _eval_job(model: str, instances: list, evaluation: EvalSettings, seed: int, desc: str,
              progress: bool = False) -> EvalResult:
    apply_threads(evaluation.threads)
    vision = {"render": evaluation.render, "include_text": evaluation.include_text} \
        if evaluation.modality == "vision" else {}
    return evaluate_model(model, instances, k=evaluation.k, temperature=evaluation.temperature,
                          top_p=evaluation.top_p, max_new_tokens=evaluation.max_new_tokens,
                          batch_size=evaluation.batch_size, seed=seed, prompt_style=evaluation.prompt_style,
                          progress=progress, desc=desc, **vision)


def _map(job: Any, arguments: list[tuple], workers: int, progress: bool) -> list:
    """``job(*args)`` for each tuple of ``arguments``: in this process (with progress bars) when
    ``workers`` is 1, else in up to ``workers`` fresh processes at a time, results in order.
    Each job's outcome depends only on its arguments and its thread count, so the numbers are
    the same either way."""
    if workers <= 1 or len(arguments) <= 1:
        return [job(*args, progress=progress) for args in arguments]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(arguments)), mp_context=context) as pool:
        return list(pool.map(job, *zip(*arguments)))


def _device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _label(objective: str) -> str:
    return objective.upper().replace("_", "-")


def _title(settings: DemoSettings, model_path: Any) -> str:
    if settings.train.modality == "vision":
        where = "built-in tiny VLM" if settings.model is None else os.fspath(model_path)
        return f"DMPO vs GRPO on NP-Bench images ({where}, {settings.train.render} rendering)"
    where = "built-in tiny model" if settings.model is None else os.fspath(model_path)
    return f"DMPO vs GRPO on NP-Bench ({where})"


def run_demo(settings: DemoSettings | None = None, *, progress: bool = True) -> Report:
    """Run the whole demo and write its report; returns the report's paths."""
    from dmpo.pipeline.sft import ensure_default_model
    from dmpo.pipeline.train import TrainResult

    settings = settings or DemoSettings()
    out = output_dir(settings.output_dir, "--output-dir")
    timings: dict[str, float] = {}
    stages = 4

    def stage(number: int, text: str) -> None:
        print(f"\n[{number}/{stages}] {text}", flush=True)

    started = time.perf_counter()
    stage(1, f"SFT warm start of the built-in tiny {'VLM' if settings.sft.vision else 'model'} "
             "(cached after the first run)")
    if settings.model is None:
        model_path = ensure_default_model(settings.sft, progress=progress)
    else:
        model_path = Path(settings.model)
    print(f"model: {model_path}", flush=True)
    timings["sft"] = time.perf_counter() - started

    budget = settings.train
    labels = [_label(objective) for objective in settings.objectives]
    stage(2, f"training {', '.join(labels)}: {budget.max_steps} steps each, group size "
             f"{budget.num_generations}, {budget.per_device_batch} completions per step"
             + (f" ({min(settings.workers, len(labels))} at a time, one process each)" if settings.workers > 1 else ""))
    t0 = time.perf_counter()
    jobs = [(settings.run(objective, settings.seed, out / "runs" / objective, os.fspath(model_path)),
             f"train {label}") for objective, label in zip(settings.objectives, labels)]
    trained = _map(_train_job, jobs, settings.workers, progress)
    runs: dict[str, TrainResult] = dict(zip(labels, trained))
    for label, run in runs.items():
        timings[f"train {label}"] = run.seconds
        print(f"{label}: {run.seconds:.0f} s", flush=True)
    timings["training (wall)"] = time.perf_counter() - t0

    evaluation = settings.evaluation
    stage(stages - 1, f"evaluation: {evaluation.k} samples per held-out instance, "
                      f"{evaluation.count} instances per task")
    t0 = time.perf_counter()
    instances = heldout_instances(evaluation.tasks, difficulty=evaluation.difficulty, count=evaluation.count,
                                  seed=evaluation.eval_seed, progress=progress)
    models = {"SFT": model_path, **{label: run.model_dir for label, run in runs.items()}}
    jobs = [(os.fspath(path), instances, evaluation, settings.seed, f"eval {label}") for label, path in models.items()]
    results: dict[str, EvalResult] = dict(zip(models, _map(_eval_job, jobs, settings.workers, progress)))
    timings["evaluation"] = time.perf_counter() - t0

    stage(stages, "report")
    timings["total"] = time.perf_counter() - started
    record = asdict(replace(settings, model=os.fspath(model_path)))
    report = write_report(
        out, results,
        histories={label: run.history for label, run in runs.items()},
        training_seconds={label: run.seconds for label, run in runs.items()},
        settings=record, timings=timings, group_size=budget.num_generations,
        title=_title(settings, model_path),
        notes=[f"Ran on {_device_description()}.",
               f"Every run starts from the same SFT checkpoint with seed {settings.seed} and the same "
               f"{budget.max_steps} steps × {budget.per_device_batch} completions; held-out instances "
               f"use seeds from {evaluation.eval_seed}, disjoint from SFT and RL data.",
               "One seed and a short budget: differences of a few points between GRPO and DMPO can be "
               "seed-to-seed noise. Compare several seeds (run_training / evaluate_model in a loop) before "
               "drawing conclusions."],
    )
    print("\n" + comparison_text(results))
    print(f"\nreport: {report.markdown}  (plots and results.json beside it)")
    return report
