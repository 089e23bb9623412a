"""Quality of DMPO against the GRPO family on NP-Bench: objectives × seeds from one SFT checkpoint.

    python benchmarks/quality.py                  # full grid: 6 objectives × 3 seeds (≤ 60 min, 2 cores)
    python benchmarks/quality.py --quick          # 6 objectives × 1 seed, a shorter budget (≤ 10 min)
    python benchmarks/quality.py --sensitivity    # DMPO over λ × α on the quick budget
    python benchmarks/quality.py --smoke          # seconds-scale run that checks the report's structure
    python benchmarks/quality.py --report-only    # rewrite the report from the finished runs

Every run starts from the same checkpoint (the built-in tiny model warm-started by SFT, cached),
trains one objective for the same budget (steps, group size, batch, learning rate, tasks) with one
seed, and is evaluated on the same held-out set: ``EVAL_COUNT`` generated instances per task with
seeds from ``EVAL_SEED_START`` (disjoint from the SFT and RL training seeds), k = 16 samples each at
temperature 1, sampling seed = the run's seed. The SFT start is evaluated the same way once per
seed, so its spread is the evaluation's own sampling noise. Budgets, seeds and the held-out set are
constants of this file (:data:`BUDGETS`), fixed before any run; nothing is picked after seeing
results.

Runs go to ``--work-dir`` (default ``runs/quality-<mode>``), each as its own process (``--workers``
at a time, the CPU cores shared between them); a finished run leaves ``runs/<name>/result.json``
and a rerun skips it, so a crash or a kill loses at most the runs in flight. The report is written
to ``--output-dir`` (default ``benchmarks/results``): ``quality_<mode>.md`` (tables: mean ± std
over seeds, overall and per task, paired differences against GRPO), ``quality_<mode>.json`` (raw
per-run numbers and learning curves) and two PNGs (learning curves with a ±1 std band over seeds,
final metrics with error bars).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.pipeline.settings import SFTSettings, default_model_path, is_built

OBJECTIVES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "dmpo", "dmpo-ce", "dmpo-recipe")
TASKS: tuple[str, ...] = ("knapsack", "max_independent_set", "vertex_cover")
SFT = "sft"  # the start checkpoint, evaluated without training
BASELINE = "grpo"  # paired differences are taken against this objective
# Sensitivity sweep of DMPO (paper defaults λ = 2, α = 1/15), on the quick budget.
SENSITIVITY_LAMBDAS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
SENSITIVITY_ALPHAS: tuple[float, ...] = (1 / 30, 1 / 15, 1 / 5)
SENSITIVITY_SEEDS: tuple[int, ...] = (0, 1, 2)
DMPO_DEFAULTS = {"lam": 2.0, "alpha": 1 / 15}
# Logged training metrics kept in the JSON; the first three are the learning-curve panels.
CURVE_METRICS: tuple[tuple[str, str], ...] = (
    ("reward", "reward (0.1·format + QR)"),
    ("npbench/quality_ratio", "QR of sampled answers"),
    ("npbench/distinct_valid_answers", "distinct valid answers per group"),
    ("entropy", "token entropy of the policy"),
)
KEPT_HISTORY = (*(key for key, _ in CURVE_METRICS), "entropy_q", "frac_reward_zero_std", "loss", "step_time")


@dataclass(frozen=True)
class Budget:
    """What every run of a mode gets. Objectives and seeds name the runs; the rest is shared."""

    mode: str
    objectives: tuple[str, ...]
    seeds: tuple[int, ...]
    tasks: tuple[str, ...] = TASKS
    difficulty: str = "tiny"
    sft: SFTSettings = field(default_factory=SFTSettings)  # the start checkpoint (the cached built-in model)
    max_steps: int = 100
    num_generations: int = 8
    per_device_batch: int = 32  # completions per step: 4 prompts × G
    learning_rate: float = 2e-4
    # Answers of tiny instances are up to 26 characters + EOS; 24 would truncate some valid ones.
    max_completion_length: int = 32
    eval_count: int = 32  # held-out instances per task
    eval_k: int = 16
    eval_temperature: float = 1.0
    eval_batch_size: int = 256
    note: str = ""

    def fingerprint(self) -> str:
        """Hash of what a run's result depends on besides its objective, parameters and seed."""
        shared = {k: v for k, v in asdict(self).items() if k not in ("mode", "objectives", "seeds", "note")}
        return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Sized by measuring on a 2-core CPU machine, two runs at a time with one thread each: a step of 32
# completions (≤ 32 tokens, the 0.5M-parameter model) takes about 0.35 s on an idle machine and
# 0.65–1.2 s while other jobs share it; an evaluation of 48 instances × 16 samples 10–15 s; process
# start-up about 10 s. Measured: full (18 runs of 200 steps + 3 SFT evaluations) 22.5 min, quick
# (7 runs of 80 steps) 4.9 min, both on the shared machine (BENCHMARKS.md).
BUDGETS: dict[str, Budget] = {
    "full": Budget("full", OBJECTIVES, (0, 1, 2), max_steps=200),
    "quick": Budget("quick", OBJECTIVES, (0,), max_steps=80, eval_count=16),
    "smoke": Budget(
        "smoke", ("grpo", "dmpo"), (0,), tasks=("knapsack", "vertex_cover"),
        sft=SFTSettings(tasks=("knapsack", "vertex_cover"), instances_per_task=16, answers_per_instance=2,
                        explore_steps=40, hidden_size=32, num_layers=1, heads=2, epochs=1.0, batch_size=16,
                        learning_rate=3e-3),
        max_steps=2, num_generations=4, per_device_batch=8, eval_count=2,
        note="a structure check: its numbers mean nothing"),
    # benchmarks/gpu.sh: a 34M-parameter Llama built from scratch, warm-started by SFT on the GPU.
    "gpu": Budget(
        "gpu", ("grpo", "dmpo"), (0,),
        sft=SFTSettings(hidden_size=512, num_layers=8, heads=8, epochs=4.0, learning_rate=1e-3),
        max_steps=40, per_device_batch=64, learning_rate=1e-4, eval_count=16, eval_batch_size=512,
        note="one seed: differences are anecdotal"),
    # GPU_SH_DRY=1 benchmarks/gpu.sh: the gpu mode's code path at CPU size.
    "gpu-dry": Budget(
        "gpu-dry", ("grpo", "dmpo"), (0,), tasks=("knapsack",),
        sft=SFTSettings(tasks=("knapsack",), instances_per_task=16, answers_per_instance=2, explore_steps=40,
                        hidden_size=32, num_layers=1, heads=2, epochs=1.0, batch_size=16),
        max_steps=2, num_generations=4, per_device_batch=8, eval_count=2,
        note="dry run of benchmarks/gpu.sh on a CPU: its numbers mean nothing"),
}


@dataclass(frozen=True)
class RunSpec:
    """One run: an objective (or ``sft``: evaluation of the start only), its parameters, a seed."""

    objective: str
    seed: int
    params: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        if not self.params:
            return self.objective
        return f"{self.objective}[" + ",".join(f"{k}={_short(v)}" for k, v in self.params) + "]"

    @property
    def name(self) -> str:
        tail = "".join(f"_{k}{_short(v).replace('/', 'over')}" for k, v in self.params)
        return f"{self.objective}{tail}-s{self.seed}"

    def to_json(self) -> str:
        return json.dumps({"objective": self.objective, "seed": self.seed, "params": list(self.params)})

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        data = json.loads(text)
        return cls(data["objective"], int(data["seed"]), tuple((k, float(v)) for k, v in data["params"]))


def _short(value: float) -> str:
    """1/15 and 1/30 as fractions, everything else as a short decimal."""
    for denominator in (3, 5, 15, 30):
        if value > 0 and math.isclose(1 / value, denominator, rel_tol=1e-9):
            return f"1/{denominator}"
    return f"{value:g}"


def grid_specs(budget: Budget) -> list[RunSpec]:
    """SFT evaluations first, then objectives seed by seed, so a partial grid stays balanced."""
    specs = [RunSpec(SFT, seed) for seed in budget.seeds]
    specs += [RunSpec(objective, seed) for seed in budget.seeds for objective in budget.objectives]
    return specs


def sensitivity_specs(seeds: Sequence[int] = SENSITIVITY_SEEDS) -> list[RunSpec]:
    """SFT and GRPO as references, then DMPO over λ × α; the paper's (2, 1/15) cell is plain ``dmpo``."""
    specs = []
    for seed in seeds:
        specs += [RunSpec(SFT, seed), RunSpec(BASELINE, seed)]
        for lam in SENSITIVITY_LAMBDAS:
            for alpha in SENSITIVITY_ALPHAS:
                params = {k: v for k, v in {"lam": lam, "alpha": alpha}.items() if v != DMPO_DEFAULTS[k]}
                specs.append(RunSpec("dmpo", seed, tuple(params.items())))
    return specs


# ---- one run (its own process) ----------------------------------------------------------------
def result_path(work_dir: Path, spec: RunSpec) -> Path:
    return work_dir / "runs" / spec.name / "result.json"


def compact_history(history: Sequence[dict[str, Any]]) -> dict[str, list]:
    """The kept metrics of a TRL log history as columns: ``{"step": [...], metric: [...]}``
    (``None`` where a step did not log the metric)."""
    rows = [row for row in history if "step" in row and any(key in row for key in KEPT_HISTORY)]
    columns: dict[str, list] = {"step": [int(row["step"]) for row in rows]}
    for key in KEPT_HISTORY:
        values = [row.get(key) for row in rows]
        if any(isinstance(v, (int, float)) for v in values):
            columns[key] = [round(float(v), 5) if isinstance(v, (int, float)) else None for v in values]
    return columns


def run_one(budget: Budget, spec: RunSpec, work_dir: Path) -> dict[str, Any]:
    """Train (unless ``sft``) and evaluate one run; write and return its result record."""
    import torch

    from dmpo.engines.trl.config import DMPOConfig
    from dmpo.evaluation.sampling import evaluate_model, heldout_instances
    from dmpo.npbench.splits import EVAL_SEED_START
    from dmpo.pipeline.sft import ensure_default_model
    from dmpo.pipeline.train import run_training

    started = time.time()
    run_dir = result_path(work_dir, spec).parent
    start_model = ensure_default_model(budget.sft, progress=False)
    model_dir, history, train_seconds = start_model, [], 0.0
    trainer_options = {}
    if torch.cuda.is_available():  # TRL turns activation checkpointing on by default; a small model needs none
        names = {f.name for f in fields(DMPOConfig)}
        trainer_options["activation_checkpointing" if "activation_checkpointing" in names
                        else "gradient_checkpointing"] = False
    if spec.objective != SFT:
        trained = run_training(
            spec.objective, start_model, budget.tasks, budget.max_steps, spec.seed, run_dir / "model",
            difficulty=budget.difficulty, num_generations=budget.num_generations,
            per_device_batch=budget.per_device_batch, learning_rate=budget.learning_rate,
            max_completion_length=budget.max_completion_length, objective_params=dict(spec.params),
            trainer=trainer_options, progress=False)
        model_dir, history, train_seconds = trained.model_dir, trained.history, trained.seconds
    eval_started = time.perf_counter()
    instances = heldout_instances(budget.tasks, difficulty=budget.difficulty, count=budget.eval_count,
                                  seed=EVAL_SEED_START, progress=False)
    result = evaluate_model(model_dir, instances, k=budget.eval_k, temperature=budget.eval_temperature,
                            max_new_tokens=budget.max_completion_length, batch_size=budget.eval_batch_size,
                            seed=spec.seed, progress=False)
    record = {
        "name": spec.name,
        "label": spec.label,
        "objective": spec.objective,
        "params": dict(spec.params),
        "seed": spec.seed,
        "mode": budget.mode,
        "fingerprint": budget.fingerprint(),
        "start_model": str(start_model),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - eval_started,
        "started": started,
        "finished": time.time(),
        "headline": result.headline,
        "tasks": result.summary["tasks"],
        "qr_curve": result.qr_curve,
        "eval_instances": [inst.id for inst in instances],
        "history": compact_history(history),
    }
    path = result_path(work_dir, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.part")
    staging.write_text(json.dumps(record))
    staging.replace(path)  # atomic: a result file is always complete
    return record


# ---- the grid ---------------------------------------------------------------------------------
def _fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def load_results(work_dir: Path, specs: Sequence[RunSpec], budget: Budget) -> dict[RunSpec, dict]:
    """Finished runs among ``specs``; a result from another budget is an error, not a silent mix."""
    found = {}
    for spec in specs:
        path = result_path(work_dir, spec)
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("fingerprint") != budget.fingerprint():
                raise SystemExit(f"{path} was made with another budget (fingerprint {record.get('fingerprint')} "
                                 f"!= {budget.fingerprint()}): use another --work-dir or delete it")
            found[spec] = record
    return found


def ensure_start_model(budget: Budget) -> Path:
    """Build the SFT checkpoint once, here, before the workers start (they would all wait on it)."""
    path = default_model_path(budget.sft)
    if not is_built(path):
        from dmpo.pipeline.sft import ensure_default_model

        t0 = time.perf_counter()
        path = ensure_default_model(budget.sft, progress=False)
        print(f"built the SFT start checkpoint in {_fmt_duration(time.perf_counter() - t0)}", flush=True)
    return path


def run_grid(budget: Budget, specs: Sequence[RunSpec], work_dir: Path, workers: int,
             run_timeout: float) -> dict[RunSpec, dict]:
    """Run every spec without a result (``workers`` processes at a time) and return all results."""
    done = load_results(work_dir, specs, budget)
    pending = [spec for spec in specs if spec not in done]
    print(f"{len(specs)} runs: {len(done)} already finished (skipped), {len(pending)} to run, "
          f"{workers} at a time; logs in {work_dir / 'runs'}/<run>/log.txt", flush=True)
    if not pending:
        return done
    model = ensure_start_model(budget)
    print(f"start checkpoint: {model}", flush=True)
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    failed: list[str] = []

    def launch(spec: RunSpec) -> tuple[int, float]:
        log = result_path(work_dir, spec).parent / "log.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        command = [sys.executable, os.path.abspath(__file__), "--mode-name", budget.mode, "--work-dir",
                   str(work_dir), "--run-one", spec.to_json()]
        with log.open("w") as out:
            try:
                code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      timeout=run_timeout).returncode
            except subprocess.TimeoutExpired:
                out.write(f"\nkilled after {run_timeout:.0f} s (--run-timeout)\n")
                code = -9
        return code, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(launch, spec): spec for spec in pending}
        for count, future in enumerate(as_completed(futures), start=1):
            spec = futures[future]
            code, seconds = future.result()
            elapsed = time.perf_counter() - started
            left = elapsed / count * (len(pending) - count)
            prefix = f"[{count:>2}/{len(pending)}] {spec.name:28}"
            path = result_path(work_dir, spec)
            if code == 0 and path.is_file():
                record = json.loads(path.read_text())
                done[spec] = record
                h = record["headline"]
                k = budget.eval_k
                print(f"{prefix} {_fmt_duration(seconds)} (train {_fmt_duration(record['train_seconds'])}) "
                      f"QR {h['qr']:5.1f}  best@{k} {h['qr_best']:5.1f}  distinct valid {h['distinct_valid']:4.2f}"
                      f"  pass@{k} {h.get(f'pass@{k}', float('nan')):5.1f} | elapsed {_fmt_duration(elapsed)}, "
                      f"~{_fmt_duration(left)} left", flush=True)
            else:
                failed.append(spec.name)
                log = path.parent / "log.txt"
                tail = log.read_text(errors="replace").splitlines()[-15:] if log.is_file() else []
                print(f"{prefix} FAILED (exit {code}); last lines of {log}:", *tail, sep="\n    ", flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun the same command to retry them",
              flush=True)
    return done


# ---- aggregation ------------------------------------------------------------------------------
def metric_columns(k: int) -> list[tuple[str, str]]:
    """(headline key, label): rates and QR in %, distinct answers as counts per instance."""
    return [("qr", "QR mean"), ("qr_best", f"QR best@{k}"), ("sr", "success rate"),
            ("sr_best", f"success@{k}"), ("distinct_valid", f"distinct valid@{k}"),
            ("distinct_optimal", f"distinct optimal@{k}"), (f"pass@{k}", f"pass@{k}")]


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(records: Sequence[dict], k: int) -> dict[str, dict]:
    """Per label (objective with its parameters): mean and std over seeds, overall and per task."""
    keys = [key for key, _ in metric_columns(k)]
    by_label: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        by_label.setdefault(record["label"], []).append(record)
    out = {}
    for label, rows in by_label.items():
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rows], "overall": {}, "tasks": {},
                                 "train_seconds": statistics.fmean(r["train_seconds"] for r in rows)}
        for key in keys:
            mean, std = mean_std([r["headline"][key] for r in rows])
            entry["overall"][key] = {"mean": mean, "std": std, "values": [r["headline"][key] for r in rows]}
        for task in sorted({t for r in rows for t in r["tasks"]}):
            present = [r["tasks"][task] for r in rows if task in r["tasks"]]
            entry["tasks"][task] = {key: dict(zip(("mean", "std"), mean_std([p[key] for p in present])))
                                    for key in keys}
        out[label] = entry
    return out


def paired_differences(records: Sequence[dict], k: int, baseline: str = BASELINE) -> dict[str, dict]:
    """Per label: (label − baseline) for each seed both have, then mean, std and wins over seeds."""
    keys = ["qr", "qr_best", "distinct_valid", "distinct_optimal", f"pass@{k}"]
    base = {r["seed"]: r["headline"] for r in records if r["label"] == baseline}
    out = {}
    for label in dict.fromkeys(r["label"] for r in records):
        if label in (baseline, SFT):
            continue
        rows = [r for r in records if r["label"] == label and r["seed"] in base]
        if not rows:
            continue
        entry = {"seeds": [r["seed"] for r in rows]}
        for key in keys:
            diffs = [r["headline"][key] - base[r["seed"]][key] for r in rows]
            mean, std = mean_std(diffs)
            entry[key] = {"mean": mean, "std": std, "wins": sum(d > 0 for d in diffs), "n": len(diffs)}
        out[label] = entry
    return out


def _cell(stat: dict, digits: int = 1) -> str:
    if stat.get("std") is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _digits(key: str) -> int:
    return 2 if key.startswith("distinct") else 1


def _order(labels: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate((SFT, *OBJECTIVES))}
    return sorted(labels, key=lambda label: (rank.get(label.split("[")[0], len(rank)), label))


def _colors(labels: Sequence[str]) -> dict[str, str]:
    """One colour per label, the same in every plot of a report (SFT first)."""
    return {label: f"C{index % 10}" for index, label in enumerate(_order(list(dict.fromkeys(labels))))}


def _display(label: str) -> str:
    return "SFT (start)" if label == SFT else label


def overall_table(agg: dict[str, dict], k: int) -> str:
    columns = metric_columns(k)
    lines = ["| objective | seeds | " + " | ".join(label for _, label in columns) + " | train min/run |",
             "|---|---:|" + "---:|" * (len(columns) + 1)]
    for label in _order(list(agg)):
        entry = agg[label]
        minutes = "-" if label == SFT else f"{entry['train_seconds'] / 60:.1f}"
        lines.append(f"| {_display(label)} | {len(entry['seeds'])} | "
                     + " | ".join(_cell(entry["overall"][key], _digits(key)) for key, _ in columns)
                     + f" | {minutes} |")
    return "\n".join(lines)


def task_tables(agg: dict[str, dict], k: int) -> str:
    columns = metric_columns(k)
    parts = []
    for task in sorted({t for entry in agg.values() for t in entry["tasks"]}):
        lines = [f"### {task}", "", "| objective | " + " | ".join(label for _, label in columns) + " |",
                 "|---|" + "---:|" * len(columns)]
        for label in _order(list(agg)):
            row = agg[label]["tasks"].get(task)
            if row is not None:
                lines.append(f"| {_display(label)} | "
                             + " | ".join(_cell(row[key], _digits(key)) for key, _ in columns) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def paired_table(diffs: dict[str, dict], k: int) -> str:
    keys = [("qr", "Δ QR mean"), ("qr_best", f"Δ QR best@{k}"), ("distinct_valid", f"Δ distinct valid@{k}"),
            ("distinct_optimal", f"Δ distinct optimal@{k}"), (f"pass@{k}", f"Δ pass@{k}")]
    lines = ["| objective | " + " | ".join(label for _, label in keys) + " |", "|---|" + "---:|" * len(keys)]
    for label in _order(list(diffs)):
        entry = diffs[label]
        cells = []
        for key, _ in keys:
            stat = entry[key]
            sign = "+" if stat["mean"] >= 0 else ""
            std = "" if stat["std"] is None else f" ± {stat['std']:.{_digits(key)}f}"
            cells.append(f"{sign}{stat['mean']:.{_digits(key)}f}{std} ({stat['wins']}/{stat['n']})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- plots ------------------------------------------------------------------------------------
def _save_png(fig: Any, path: Path) -> Path:
    """Save with a 128-colour palette: a third of the size of matplotlib's RGBA output, same look."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, format="PNG", optimize=True)
    return path


def _curve_band(records: Sequence[dict], key: str, window: int) -> tuple[list[int], list[float], list[float]]:
    """Steps logged by every seed; per step the mean over seeds of the smoothed value and its std."""
    from dmpo.evaluation.plots import moving_average

    per_seed = []
    for record in records:
        history = record["history"]
        pairs = [(s, v) for s, v in zip(history["step"], history.get(key, [])) if v is not None]
        if pairs:
            smoothed = moving_average([v for _, v in pairs], window)
            per_seed.append(dict(zip((s for s, _ in pairs), smoothed)))
    if not per_seed:
        return [], [], []
    steps = sorted(set.intersection(*(set(d) for d in per_seed)))
    means = [statistics.fmean(d[s] for d in per_seed) for s in steps]
    stds = [statistics.pstdev([d[s] for d in per_seed]) for s in steps]
    return steps, means, stds


def plot_curves(records: Sequence[dict], path: Path) -> Path:
    from matplotlib.figure import Figure

    trained = [r for r in records if r["objective"] != SFT]
    labels = _order(list(dict.fromkeys(r["label"] for r in trained)))
    colors = _colors([r["label"] for r in records])
    steps_total = max((max(r["history"]["step"], default=0) for r in trained), default=0)
    window = max(1, steps_total // 10)
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, (key, title) in zip(axes, CURVE_METRICS):
        for label in labels:
            steps, means, stds = _curve_band([r for r in trained if r["label"] == label], key, window)
            if not steps:
                continue
            color = colors[label]
            ax.plot(steps, means, color=color, linewidth=1.6, label=label)
            ax.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=color, alpha=0.15, linewidth=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Training curves: mean over seeds of a {window}-step moving average, band ±1 std",
                 fontsize=10)
    return _save_png(fig, path)


def plot_bars(agg: dict[str, dict], k: int, path: Path) -> Path:
    from matplotlib.figure import Figure

    labels = _order(list(agg))
    panels = [("quality and success (%)", [("qr", "QR mean"), ("qr_best", f"QR best@{k}"), (f"pass@{k}", f"pass@{k}")]),
              ("diversity (distinct answers per instance)",
               [("distinct_valid", f"distinct valid@{k}"), ("distinct_optimal", f"distinct optimal@{k}")])]
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[3, 2])
    for ax, (title, metrics) in zip(axes, panels):
        width = 0.8 / len(labels)
        for index, label in enumerate(labels):
            xs = [i + (index - (len(labels) - 1) / 2) * width for i in range(len(metrics))]
            stats = [agg[label]["overall"][key] for key, _ in metrics]
            ax.bar(xs, [s["mean"] for s in stats], width, yerr=[s["std"] or 0 for s in stats], capsize=2,
                   color=_colors(labels)[label], label=_display(label))
        ax.set_xticks(range(len(metrics)), [label for _, label in metrics])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("Held-out evaluation: mean over seeds, error bar ±1 std", fontsize=10)
    return _save_png(fig, path)


# ---- reports ----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import torch

    try:  # a copied working tree (a GPU machine) may have no git or no .git
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "git_commit": commit or None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _header(budget: Budget, records: Sequence[dict], info: dict, command: str, wall: float) -> list[str]:
    steps = f"{budget.max_steps} steps × {budget.per_device_batch} completions (G = {budget.num_generations})"
    trained = [r for r in records if r["objective"] != SFT]
    compute = sum(r["train_seconds"] + r["eval_seconds"] for r in records)
    span = (max(r["finished"] for r in records) - min(r["started"] for r in records)) if records else 0
    last = max((r["finished"] for r in records), default=time.time())
    run_date = datetime.datetime.fromtimestamp(last, datetime.UTC).strftime("%Y-%m-%d")
    lines = [
        f"- Command: `{command}`",
        f"- Date: {run_date}; machine: {info['platform']}, {info['cpu_count']} CPU cores"
        + (f", GPU {info['gpu']}" if info.get("gpu") else "") + f"; torch {info['torch']}; commit at report time {info['git_commit']}",
        f"- Start: the built-in tiny model (hidden {budget.sft.hidden_size}, {budget.sft.num_layers} layer(s)) "
        f"warm-started by SFT on {', '.join(budget.sft.tasks)}; every run starts from it.",
        f"- Budget per run: {steps}, learning rate {budget.learning_rate:g} (constant after warm-up), "
        f"completions ≤ {budget.max_completion_length} tokens, tasks {', '.join(budget.tasks)} ({budget.difficulty}).",
        f"- Held-out set: {budget.eval_count} instances per task (seeds from 1,000,000, disjoint from training), "
        f"k = {budget.eval_k} samples each at temperature {budget.eval_temperature:g}; sampling seed = run seed.",
        f"- Runs: {len(trained)} trained + {len(records) - len(trained)} SFT evaluation(s); "
        f"wall time from first start to last finish {_fmt_duration(span)} "
        f"(this invocation {_fmt_duration(wall)}; compute summed over runs {_fmt_duration(compute)}).",
    ]
    if budget.note:
        lines.append(f"- Note: {budget.note}.")
    return lines


def write_grid_report(budget: Budget, results: dict[RunSpec, dict], output_dir: Path, *, command: str,
                      wall: float, missing: Sequence[str]) -> Path:
    records = list(results.values())
    k = budget.eval_k
    agg = aggregate(records, k)
    diffs = paired_differences(records, k)
    info = machine_info()
    stem = f"quality_{budget.mode}"
    output_dir.mkdir(parents=True, exist_ok=True)
    curves = plot_curves(records, output_dir / f"{stem}_curves.png")
    bars = plot_bars(agg, k, output_dir / f"{stem}_bars.png")
    md = [f"# Quality: DMPO against the GRPO family on NP-Bench ({budget.mode})", "",
          *_header(budget, records, info, command, wall), ""]
    if missing:
        md += [f"**Incomplete: {len(missing)} run(s) missing ({', '.join(missing)}).**", ""]
    md += ["## Overall (mean over tasks; mean ± std over seeds)", "", overall_table(agg, k), "",
           f"QR and rates in %. **QR mean**: one sample (0 if invalid); **QR best@{k}**: best of {k}; "
           f"**success rate**: valid single samples; **success@{k}**: some sample valid with QR > 0; "
           f"**distinct valid/optimal@{k}**: different valid/optimal answers among {k} samples; "
           f"**pass@{k}**: some sample optimal. The SFT row's spread is evaluation sampling noise alone.", ""]
    if diffs:
        md += [f"## Paired differences against {BASELINE} (same seed; mean ± std, seeds where higher)", "",
               paired_table(diffs, k), ""]
    md += ["## Learning curves", "", f"![learning curves]({curves.name})", "",
           "## Final metrics", "", f"![final metrics]({bars.name})", "",
           "## Per task", "", task_tables(agg, k), ""]
    markdown = output_dir / f"{stem}.md"
    markdown.write_text("\n".join(md), encoding="utf-8")
    payload = {"mode": budget.mode, "command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": info, "budget": asdict(budget), "fingerprint": budget.fingerprint(),
               "wall_seconds": wall, "missing": list(missing), "aggregate": agg, "paired_vs_grpo": diffs,
               "runs": sorted(records, key=lambda r: (r["seed"], r["label"]))}
    (output_dir / f"{stem}.json").write_text(json.dumps(payload, default=str), encoding="utf-8")
    return markdown


def sensitivity_grid_table(agg: dict[str, dict], key: str, digits: int) -> str:
    alphas = " | ".join(f"α = {_short(a)}" for a in SENSITIVITY_ALPHAS)
    lines = [f"| λ \\ α | {alphas} |", "|---|" + "---:|" * len(SENSITIVITY_ALPHAS)]
    for lam in SENSITIVITY_LAMBDAS:
        cells = []
        for alpha in SENSITIVITY_ALPHAS:
            params = {k: v for k, v in {"lam": lam, "alpha": alpha}.items() if v != DMPO_DEFAULTS[k]}
            label = RunSpec("dmpo", 0, tuple(params.items())).label
            entry = agg.get(label)
            mark = " *" if not params else ""
            cells.append("-" if entry is None else _cell(entry["overall"][key], digits) + mark)
        lines.append(f"| {_short(lam)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sensitivity_report(budget: Budget, results: dict[RunSpec, dict], output_dir: Path, *, command: str,
                             wall: float, missing: Sequence[str]) -> Path:
    records = list(results.values())
    k = budget.eval_k
    agg = aggregate(records, k)
    info = machine_info()
    md = ["# Sensitivity of DMPO to λ and α (quick budget)", "",
          *_header(budget, records, info, command, wall),
          f"- Seeds: {', '.join(map(str, SENSITIVITY_SEEDS))}"
          + (" (one seed: the quick budget × 12 cells allows no more on 2 cores, so differences below "
             "the seed-to-seed spread of the full grid are noise)" if len(SENSITIVITY_SEEDS) == 1 else ""), ""]
    if missing:
        md += [f"**Incomplete: {len(missing)} run(s) missing ({', '.join(missing)}).**", ""]
    reference = [f"{_display(label)}: " + ", ".join(f"{name} {_cell(agg[label]['overall'][key], _digits(key))}"
                                                   for key, name in metric_columns(k) if key in ("qr", "qr_best", "distinct_valid", f"pass@{k}"))
                 for label in (SFT, BASELINE) if label in agg]
    md += ["References on the same budget and seed(s): " + "; ".join(reference) + ".", "",
           "`*` marks the paper's setting (λ = 2, α = 1/15), the plain `dmpo` run.", ""]
    for key, title in ((("qr", "QR mean (%)"), ("qr_best", f"QR best@{k} (%)"),
                        ("distinct_valid", f"distinct valid@{k}"), (f"pass@{k}", f"pass@{k} (%)"))):
        md += [f"## {title}", "", sensitivity_grid_table(agg, key, _digits(key)), ""]
    markdown = output_dir / "quality_sensitivity.md"
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(md), encoding="utf-8")
    payload = {"mode": "sensitivity", "budget": asdict(budget), "seeds": list(SENSITIVITY_SEEDS),
               "lambdas": list(SENSITIVITY_LAMBDAS), "alphas": list(SENSITIVITY_ALPHAS), "command": command,
               "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
               "wall_seconds": wall, "missing": list(missing), "aggregate": agg,
               "runs": [{key: value for key, value in r.items() if key != "history"} for r in records]}
    (output_dir / "quality_sensitivity.json").write_text(json.dumps(payload, default=str), encoding="utf-8")
    return markdown


def print_summary(budget: Budget, results: dict[RunSpec, dict]) -> None:
    """The overall table in fixed-width columns for the terminal."""
    k = budget.eval_k
    agg = aggregate(list(results.values()), k)
    columns = [c for c in metric_columns(k) if c[0] != "sr_best"]
    width = max(len(label) for _, label in columns) + 2
    names = [_display(label) for label in agg]
    name_width = max(12, *(len(n) + 2 for n in names))
    print(f"\n{'objective':{name_width}}{'seeds':>6}" + "".join(f"{label:>{width}}" for _, label in columns))
    for label in _order(list(agg)):
        entry = agg[label]
        print(f"{_display(label):{name_width}}{len(entry['seeds']):>6}"
              + "".join(f"{_cell(entry['overall'][key], _digits(key)):>{width}}" for key, _ in columns))
    print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="6 objectives × 1 seed, shorter budget (≤ 10 min)")
    mode.add_argument("--smoke", action="store_true", help="2 objectives × 1 seed × 2 steps (a structure check)")
    mode.add_argument("--sensitivity", action="store_true", help="DMPO over λ × α on the quick budget")
    mode.add_argument("--mode-name", choices=sorted(BUDGETS), help="any budget of BUDGETS by name")
    parser.add_argument("--work-dir", type=Path, help="runs, models and logs (default runs/quality-<mode>)")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="report folder (default benchmarks/results)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, each its own process")
    parser.add_argument("--run-timeout", type=float, default=3600, help="seconds before a run is killed")
    parser.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    parser.add_argument("--keep-models", action="store_true", help="keep trained model weights in the work dir")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    name = args.mode_name or ("quick" if args.quick or args.sensitivity else "smoke" if args.smoke else "full")
    budget = BUDGETS[name]
    work_dir = (args.work_dir or Path("runs") / f"quality-{name}").resolve()
    if args.run_one:
        spec = RunSpec.from_json(args.run_one)
        run_one(budget, spec, work_dir)
        if not args.keep_models:
            shutil.rmtree(result_path(work_dir, spec).parent / "model", ignore_errors=True)
        return 0
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    started = time.perf_counter()
    command = shlex.join(["python", "benchmarks/quality.py", *(sys.argv[1:] if argv is None else argv)])
    specs = sensitivity_specs() if args.sensitivity else grid_specs(budget)
    print(f"quality benchmark, mode {'sensitivity (quick budget)' if args.sensitivity else name}: "
          f"{budget.max_steps} steps, G {budget.num_generations}, {budget.per_device_batch} completions/step, "
          f"tasks {','.join(budget.tasks)}; eval {budget.eval_count}/task × k={budget.eval_k}", flush=True)
    if args.report_only:
        results = load_results(work_dir, specs, budget)
    else:
        results = run_grid(budget, specs, work_dir, args.workers, args.run_timeout)
    missing = [spec.name for spec in specs if spec not in results]
    if not results:
        print("no finished runs to report", flush=True)
        return 1
    wall = time.perf_counter() - started
    stem = "quality_sensitivity" if args.sensitivity else f"quality_{name}"
    previous = args.output_dir / f"{stem}.json"
    if args.report_only and previous.is_file():  # keep the command and wall time of the runs' invocation
        prior = json.loads(previous.read_text())
        command, wall = prior.get("command", command).strip(), prior.get("wall_seconds", wall)
    write = write_sensitivity_report if args.sensitivity else write_grid_report
    report = write(budget, results, args.output_dir, command=command, wall=wall, missing=missing)
    print_summary(budget, results)
    print(f"report: {report} (wall time {_fmt_duration(wall)})", flush=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
