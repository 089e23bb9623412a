"""Quality of DMPO against the GRPO family on NP-Bench: objectives × seeds from one SFT checkpoint.

    python benchmarks/quality.py                  # full grid: 6 objectives × 3 seeds (≤ 60 min, 2 cores)
    python benchmarks/quality.py --quick          # 6 objectives × 1 seed, a shorter budget (≤ 10 min)
    python benchmarks/quality.py --sensitivity    # DMPO over λ × α on the quick budget
    python benchmarks/quality.py --smoke          # seconds-scale run that checks the report's structure
    python benchmarks/quality.py --paper          # issue 14: every group objective of the paper's tables
                                                  # and the DM variants, the full budget (45 runs)
    python benchmarks/quality.py --confirm        # issue 14: grpo vs the DM presets on three held-out tasks
    python benchmarks/quality.py --scale          # issue 14: grpo vs the DM presets, a ~4M-parameter model
    python benchmarks/quality.py --report-only    # rewrite the report from the finished runs

Every run starts from the same checkpoint (the built-in tiny model warm-started by SFT, cached),
trains one objective for the same budget (steps, group size, batch, learning rate, tasks) with one
seed, and is evaluated on the same held-out set: ``count`` generated instances per task with seeds
from ``eval_seed`` (disjoint from the SFT and RL training seeds), k = 16 samples each at
temperature 1, sampling seed = the run's seed. The SFT start is evaluated the same way once per
seed, so its spread is the evaluation's own sampling noise. A mode's budget is a
:class:`~dmpo.pipeline.settings.ComparisonSettings` in :data:`BUDGETS`, fixed before any run;
nothing is picked after seeing results. A run trains with ``dmpo.pipeline.train.train`` and is
evaluated with ``dmpo.pipeline.evaluate.evaluate``, as ``dmpo demo`` does.

Runs go to ``--work-dir`` (default ``runs/quality-<mode>``), each as its own process (``--workers``
at a time, the CPU cores shared between them); a finished run leaves ``runs/<name>/result.json``
and a rerun skips it, so a crash or a kill loses at most the runs in flight. The report
(``quality_report.py``) is written to ``--output-dir`` (default ``benchmarks/results``):
``quality_<mode>.md`` (tables: mean ± std over seeds, overall and per task, paired differences
against GRPO), ``quality_<mode>.json`` (raw per-run numbers and learning curves) and two PNGs
(learning curves with a ±1 std band over seeds, final metrics with error bars), plus a third,
``quality_<mode>_dm.png``, when DMPO runs logged the DM diagnostics (the share of the DM term
in the update, the spread of φ, the entropies of q and p, zero-signal groups: issue 14).
``--report-only`` rewrites it from the work dir's finished runs or, when the work dir has none,
from the runs recorded in the previous report's JSON.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.npbench.splits import EVAL_SEED_START
from dmpo.pipeline.settings import (
    ComparisonSettings,
    EvalSettings,
    SFTSettings,
    TrainSettings,
    default_model_path,
    is_built,
)
from quality_report import (
    BASELINE,
    SFT,
    Context,
    Sweep,
    compact_history,
    fmt_duration,
    headline_text,
    machine_info,
    print_summary,
    run_label,
    short_number,
    write_grid_report,
    write_sensitivity_report,
)

OBJECTIVES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "dmpo", "dmpo-ce", "dmpo-recipe")
TASKS: tuple[str, ...] = ("knapsack", "max_independent_set", "vertex_cover")
# Issue 14. The distribution-matching presets built from the diagnosis (objectives/dmpo.py).
DM_VARIANTS: tuple[str, ...] = ("dmpo-tau", "dmpo-sum", "dmpo-share", "dmpo-silent")
# Every group objective of the paper's tables as the registry has it, then DMPO and its variants.
PAPER_OBJECTIVES: tuple[str, ...] = ("grpo", "gspo", "gpg", "clip_cov", "kl_cov", "flowrl", "passk", "dapo",
                                     "dr_grpo", "dmpo", "dmpo-ce", *DM_VARIANTS)
# Issue 11: the vision grid. The four NP-Bench tasks MM-NP-Bench adds (vision-only in the paper),
# as grid images to the built-in tiny VLM; the objectives of the paper's vision table as the
# registry has them (GRPO, GSPO, GPG, Clip-Cov, FlowRL, Pass@k) and DMPO with its ce preset.
VISION_TASKS: tuple[str, ...] = ("vertex_cover", "dominating_set", "feedback_vertex_set", "max_cut")
VISION_OBJECTIVES: tuple[str, ...] = ("grpo", "dmpo", "dmpo-ce", "gspo", "gpg", "clip_cov", "flowrl", "passk")
# GRPO against DMPO and its presets: the confirm and scale modes (narrow with --objectives to the
# preset(s) the paper grid picks; the budget is unchanged by that).
PRESET_OBJECTIVES: tuple[str, ...] = ("grpo", "dmpo", "dmpo-ce", *DM_VARIANTS)
# Held-out tasks of the confirm mode, never used for tuning: graph subset-selection tasks like the
# default ones, whose tiny answers fit in 32 tokens (≤ 26 characters with "Answer: ") and which
# have several optima per instance (2.0–3.2 on average in the SFT data), so diversity can show.
CONFIRM_TASKS: tuple[str, ...] = ("dominating_set", "max_clique", "feedback_vertex_set")
# The scale mode's model: the built-in Llama at hidden 256 × 4 layers (≈ 4.2M parameters: 16·h²
# per layer, against 0.5M at 128 × 2), the same SFT recipe otherwise.
SCALE_SFT = SFTSettings(hidden_size=256, num_layers=4)
# Sensitivity sweep of DMPO on the quick budget: its registered λ and α times these factors.
SENSITIVITY_LAMBDA_FACTORS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
SENSITIVITY_ALPHA_FACTORS: tuple[float, ...] = (0.5, 1.0, 3.0)
SENSITIVITY_SEEDS: tuple[int, ...] = (0, 1, 2)


@functools.cache
def sensitivity_sweep() -> Sweep:
    """DMPO over λ × α around its registered defaults (``dmpo.objectives``)."""
    from dmpo import objectives

    params = objectives.get("dmpo").params
    defaults = {"lam": float(params["lam"]), "alpha": float(params["alpha"])}
    lambdas = tuple(defaults["lam"] * factor for factor in SENSITIVITY_LAMBDA_FACTORS)
    alphas = tuple(defaults["alpha"] * factor for factor in SENSITIVITY_ALPHA_FACTORS)
    return Sweep("dmpo", lambdas, alphas, SENSITIVITY_SEEDS, defaults)


# Settings a run took at their defaults before budgets held settings objects (every recorded
# result): hashed only where a budget departs from them, so recorded fingerprints stay valid.
IMPLICIT: dict[str, Any] = {
    "model": None, "objective_params": {}, "train.num_prompts": 512, "train.temperature": 1.0,
    "train.logging_steps": 1, "train.trainer": {}, "evaluation.eval_seed": EVAL_SEED_START,
    "evaluation.top_p": 1.0, "evaluation.prompt_style": "compact",
    "train.prompt_style": "compact", "train.chat": False, "train.system_prompt": None,
    "evaluation.chat": False, "evaluation.system_prompt": None,
    # Recorded runs ran one torch thread per process (OMP_NUM_THREADS=1), what threads=0 now does.
    "train.threads": 0, "evaluation.threads": 0,
    # Added with the vision path; recorded runs are text runs with every parameter trained.
    "train.modality": "text", "train.render": "grid", "train.include_text": False, "train.lora_r": 0,
    "evaluation.modality": "text", "evaluation.render": "grid", "evaluation.include_text": False,
}
# Fields set per run (objective, seed, paths) or taken from the training settings, not hashed.
NOT_HASHED = {
    "train": {"objective", "seed", "output_dir", "model", "objective_params", "resume", "save_steps",
              "tasks", "difficulty", "max_steps", "num_generations", "per_device_batch",
              "learning_rate", "max_completion_length"},
    "evaluation": {"model", "seed", "data", "tasks", "difficulty", "max_new_tokens", "count", "k",
                   "temperature", "batch_size"},
}


@dataclass(frozen=True)
class Budget:
    """What every run of a mode gets: the comparison's settings (its objectives and seeds name
    the runs; start, training and evaluation are shared) and a note for the report."""

    mode: str
    comparison: ComparisonSettings
    note: str = ""

    def numbers(self) -> dict[str, Any]:
        """What a run's result depends on besides its objective, parameters and seed, by the
        names of the recorded results (``budget`` in ``quality_<mode>.json``)."""
        c = self.comparison
        train, evaluation = c.train, c.evaluation
        numbers: dict[str, Any] = {
            "tasks": train.tasks, "difficulty": train.difficulty, "sft": c.sft.key_fields(),
            "max_steps": train.max_steps, "num_generations": train.num_generations,
            "per_device_batch": train.per_device_batch, "learning_rate": train.learning_rate,
            "max_completion_length": train.max_completion_length, "eval_count": evaluation.count,
            "eval_k": evaluation.k, "eval_temperature": evaluation.temperature,
            "eval_batch_size": evaluation.batch_size}
        others = {"model": c.model, "objective_params": c.objective_params}
        for part, settings in (("train", train), ("evaluation", evaluation)):
            others.update({f"{part}.{f.name}": getattr(settings, f.name) for f in fields(settings)
                           if f.name not in NOT_HASHED[part]})
        numbers.update({name: value for name, value in others.items()
                        if name not in IMPLICIT or IMPLICIT[name] != value})
        return numbers

    def fingerprint(self) -> str:
        """Hash of :meth:`numbers`: results of two budgets with one fingerprint are comparable."""
        text = json.dumps(self.numbers(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def record(self) -> dict[str, Any]:
        c = self.comparison
        return {"mode": self.mode, "objectives": c.objectives, "seeds": c.seeds, **self.numbers(),
                "note": self.note}


def comparison(objectives: Sequence[str], seeds: Sequence[int], *, sft: SFTSettings | None = None,
               eval_count: int = 32, eval_batch_size: int = 256, **train: Any) -> ComparisonSettings:
    """A budget's settings: ``train`` are TrainSettings fields (the tasks default to TASKS);
    evaluation k = 16 samples at temperature 1."""
    return ComparisonSettings(
        objectives=tuple(objectives), seeds=tuple(seeds), sft=sft or SFTSettings(),
        train=TrainSettings(**{"tasks": TASKS, **train}),
        evaluation=EvalSettings(count=eval_count, k=16, temperature=1.0, batch_size=eval_batch_size))


# Sized by measuring on a 2-core CPU machine, two runs at a time with one thread each: a step of 32
# completions (≤ 32 tokens, the 0.5M-parameter model) takes about 0.35 s on an idle machine and
# 0.65–1.2 s while other jobs share it; an evaluation of 48 instances × 16 samples 10–15 s; process
# start-up about 10 s. Measured: full (18 runs of 200 steps + 3 SFT evaluations) 22.5 min, quick
# (7 runs of 80 steps) 4.9 min, both on the shared machine (BENCHMARKS.md). Every run: G = 8 and
# 32 completions per step (4 prompts × G), learning rate 2e-4, completions ≤ 32 tokens (answers of
# tiny instances are up to 26 characters + EOS; 24 would truncate some valid ones) unless given.
# Issue 12: a reasoning-gym task with many valid answers, at a size the built-in model can learn:
# 3 numbers from 1-5, targets 1-30, 8.2 solutions per item on average. With numbers up to 9 (targets
# 10-60) or 20 the SFT start solved 0.2% / 0.1% of held-out items: nothing for RL to build on. The
# SFT start is warm-started on this task only, with every solution found by exhaustive search
# (dmpo.sources.countdown); prompts are countdown's compact form ("countdown: make 12 from 4, 3, 1").
# Held-out items are new seeds and question texts, but with numbers this small most of their
# (numbers, target) problems also occur among the training items: this grid measures whether RL keeps
# the several answers of problems the model can solve, not generalisation to new problems.
COUNTDOWN = "rg:countdown?min_numbers=3&max_numbers=3&max_value=5&min_target=1&max_target=30"
BUDGETS: dict[str, Budget] = {
    "full": Budget("full", comparison(OBJECTIVES, (0, 1, 2), max_steps=200)),
    "quick": Budget("quick", comparison(OBJECTIVES, (0,), max_steps=80, eval_count=16)),
    # Issue 14, fixed before any run. paper: the full budget (same SFT start, 200 steps, 3 seeds,
    # the same held-out set), every group objective; its fingerprint is the full grid's, so the
    # two compare run for run. confirm: the same recipe on three tasks not used for tuning (an
    # SFT start of their own). scale: the same recipe with a ~4M-parameter model.
    "paper": Budget("paper", comparison(PAPER_OBJECTIVES, (0, 1, 2), max_steps=200),
                    note="the full budget with every group objective of the paper's tables and the DM variants"),
    "confirm": Budget("confirm", comparison(
        PRESET_OBJECTIVES, (0, 1, 2), tasks=CONFIRM_TASKS, sft=SFTSettings(tasks=CONFIRM_TASKS), max_steps=200),
        note="held-out tasks (never used for tuning): dominating_set, max_clique, feedback_vertex_set"),
    "scale": Budget("scale", comparison(PRESET_OBJECTIVES, (0, 1, 2), sft=SCALE_SFT, max_steps=200),
                    note="the full budget with a 4.2M-parameter built-in model (hidden 256, 4 layers)"),
    # Issue 11: the tiny VLM (0.83M parameters) warm-started on grid images of the four vision tasks
    # (1,600 instances × 4 answers, 3 epochs; the vision demo's recipe on four tasks), then the
    # text grid's RL recipe (200 steps, G 8, 32 completions per step, lr 2e-4) on image prompts.
    "vision": Budget("vision", comparison(
        VISION_OBJECTIVES, (0, 1, 2), tasks=VISION_TASKS, modality="vision", render="grid",
        sft=SFTSettings(tasks=VISION_TASKS, modality="vision", render="grid", instances_per_task=400,
                        answers_per_instance=4, epochs=3.0),
        max_steps=200),
        note="vision: the built-in tiny VLM on grid images of the four vision-only tasks"),
    "smoke": Budget("smoke", comparison(
        ("grpo", "dmpo"), (0,), tasks=("knapsack", "vertex_cover"),
        sft=SFTSettings(tasks=("knapsack", "vertex_cover"), instances_per_task=16, answers_per_instance=2,
                        explore_steps=40, hidden_size=32, num_layers=1, heads=2, epochs=1.0, batch_size=16,
                        learning_rate=3e-3),
        max_steps=2, num_generations=4, per_device_batch=8, eval_count=2),
        note="a structure check: its numbers mean nothing"),
    "countdown": Budget("countdown", comparison(
        ("grpo", "dmpo", "dmpo-ce"), (0, 1, 2), tasks=(COUNTDOWN,),
        sft=SFTSettings(tasks=(COUNTDOWN,), instances_per_task=2000, answers_per_instance=4, epochs=4.0),
        max_steps=200),
        note="reasoning-gym countdown (issue 12); distinct correct answers are distinct expression texts"),
    "smoke-sources": Budget("smoke-sources", comparison(
        ("grpo", "dmpo"), (0,), tasks=(COUNTDOWN,),
        sft=SFTSettings(tasks=(COUNTDOWN,), instances_per_task=16, answers_per_instance=2, hidden_size=32,
                        num_layers=1, heads=2, epochs=1.0, batch_size=16, learning_rate=3e-3),
        max_steps=2, num_generations=4, per_device_batch=8, eval_count=2),
        note="a structure check of a reasoning-gym budget: its numbers mean nothing"),
    "smoke-vision": Budget("smoke-vision", comparison(
        ("grpo", "dmpo"), (0,), tasks=("vertex_cover", "max_cut"), modality="vision", render="grid",
        sft=SFTSettings(tasks=("vertex_cover", "max_cut"), modality="vision", instances_per_task=8,
                        answers_per_instance=2, explore_steps=40, hidden_size=32, num_layers=1, heads=2,
                        vision_hidden_size=16, vision_layers=1, epochs=1.0, batch_size=8, learning_rate=1e-2),
        max_steps=2, num_generations=4, per_device_batch=8, max_completion_length=12, eval_count=2),
        note="a structure check of the vision budget: its numbers mean nothing"),
    # benchmarks/gpu.sh: a 34M-parameter Llama built from scratch, warm-started by SFT on the GPU.
    "gpu": Budget("gpu", comparison(
        ("grpo", "dmpo"), (0,),
        sft=SFTSettings(hidden_size=512, num_layers=8, heads=8, epochs=4.0, learning_rate=1e-3),
        max_steps=40, per_device_batch=64, learning_rate=1e-4, eval_count=16, eval_batch_size=512),
        note="one seed: differences are anecdotal"),
    # GPU_SH_DRY=1 benchmarks/gpu.sh: the gpu mode's code path at CPU size.
    "gpu-dry": Budget("gpu-dry", comparison(
        ("grpo", "dmpo"), (0,), tasks=("knapsack",),
        sft=SFTSettings(tasks=("knapsack",), instances_per_task=16, answers_per_instance=2, explore_steps=40,
                        hidden_size=32, num_layers=1, heads=2, epochs=1.0, batch_size=16),
        max_steps=2, num_generations=4, per_device_batch=8, eval_count=2),
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
        return run_label(self.objective, self.params)

    @property
    def name(self) -> str:
        tail = "".join(f"_{k}{short_number(v).replace('/', 'over')}" for k, v in self.params)
        return f"{self.objective}{tail}-s{self.seed}"

    def to_json(self) -> str:
        return json.dumps({"objective": self.objective, "seed": self.seed, "params": list(self.params)})

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        data = json.loads(text)
        return cls(data["objective"], int(data["seed"]), tuple((k, float(v)) for k, v in data["params"]))


def grid_specs(budget: Budget) -> list[RunSpec]:
    """SFT evaluations first, then objectives seed by seed, so a partial grid stays balanced."""
    seeds, objectives = budget.comparison.seeds, budget.comparison.objectives
    specs = [RunSpec(SFT, seed) for seed in seeds]
    return specs + [RunSpec(objective, seed) for seed in seeds for objective in objectives]


def sensitivity_specs(sweep: Sweep) -> list[RunSpec]:
    """SFT and GRPO as references, then DMPO over λ × α; the default cell is plain ``dmpo``."""
    specs = []
    for seed in sweep.seeds:
        specs += [RunSpec(SFT, seed), RunSpec(BASELINE, seed)]
        specs += [RunSpec(sweep.objective, seed, sweep.params(lam, alpha))
                  for lam in sweep.lambdas for alpha in sweep.alphas]
    return specs


# ---- one run (its own process) ----------------------------------------------------------------
def result_path(work_dir: Path, spec: RunSpec) -> Path:
    return work_dir / "runs" / spec.name / "result.json"


def start_model(budget: Budget, *, build: bool = True) -> Path:
    """The comparison's model, else the built-in model warm-started with its SFT settings."""
    if budget.comparison.model is not None:
        return Path(budget.comparison.model)
    if not build:
        return default_model_path(budget.comparison.sft)
    from dmpo.pipeline.sft import ensure_default_model

    return ensure_default_model(budget.comparison.sft, progress=False)


def run_one(budget: Budget, spec: RunSpec, work_dir: Path) -> dict[str, Any]:
    """Train (unless ``sft``) and evaluate one run; write and return its result record."""
    import torch

    from dmpo.engines.trl.config import DMPOConfig
    from dmpo.pipeline.evaluate import evaluate
    from dmpo.pipeline.train import train

    started = time.time()
    run_dir = result_path(work_dir, spec).parent
    start = start_model(budget)
    model_dir, history, train_seconds = start, [], 0.0
    if spec.objective != SFT:
        run = budget.comparison.run(spec.objective, spec.seed, run_dir / "model", os.fspath(start))
        run = replace(run, objective_params={**run.objective_params, **dict(spec.params)})
        if torch.cuda.is_available():  # TRL checkpoints activations by default; a small model needs none
            names = {f.name for f in fields(DMPOConfig)}
            flag = ("activation_checkpointing" if "activation_checkpointing" in names
                    else "gradient_checkpointing")
            run = replace(run, trainer={flag: False, **run.trainer})
        trained = train(run, progress=False)
        model_dir, history, train_seconds = trained.model_dir, trained.history, trained.seconds
    eval_started = time.perf_counter()
    evaluation = replace(budget.comparison.evaluation, model=os.fspath(model_dir), seed=spec.seed)
    _, instances, result = evaluate(evaluation, progress=False)
    sources = "sources" in result.summary  # a math or reasoning-gym budget (dmpo.evaluation.sources)
    record = {
        "name": spec.name,
        "label": spec.label,
        "objective": spec.objective,
        "params": dict(spec.params),
        "seed": spec.seed,
        "mode": budget.mode,
        "fingerprint": budget.fingerprint(),
        "start_model": str(start),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - eval_started,
        "started": started,
        "finished": time.time(),
        "headline": result.headline,
        "tasks": result.summary["sources"] if sources else result.summary["tasks"],
        "qr_curve": None if sources else result.qr_curve,
        "eval_instances": [pair[1].id if sources else pair.id for pair in instances],
        "history": compact_history(history),
    }
    path = result_path(work_dir, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.part")
    staging.write_text(json.dumps(record))
    staging.replace(path)  # atomic: a result file is always complete
    return record


# ---- the grid ---------------------------------------------------------------------------------
def _check(record: dict, budget: Budget, where: Path) -> dict:
    if record.get("fingerprint") != budget.fingerprint():
        raise SystemExit(f"{where} holds a run made with another budget (fingerprint "
                         f"{record.get('fingerprint')} != {budget.fingerprint()}): use another "
                         "--work-dir or delete it")
    return record


def load_results(work_dir: Path, specs: Sequence[RunSpec], budget: Budget) -> dict[RunSpec, dict]:
    """Finished runs among ``specs``; a result from another budget is an error, not a silent mix."""
    found = {}
    for spec in specs:
        path = result_path(work_dir, spec)
        if path.is_file():
            found[spec] = _check(json.loads(path.read_text()), budget, path)
    return found


def load_recorded(report_json: Path, specs: Sequence[RunSpec], budget: Budget) -> dict[RunSpec, dict]:
    """Runs among ``specs`` recorded in a written report's JSON (its ``runs``), checked like
    :func:`load_results`."""
    by_name = {spec.name: spec for spec in specs}
    runs = json.loads(report_json.read_text()).get("runs", [])
    return {by_name[run["name"]]: _check(run, budget, report_json)
            for run in runs if run["name"] in by_name}


def ensure_start_model(budget: Budget) -> Path:
    """Build the SFT checkpoint once, here, before the workers start (they would all wait on it)."""
    path = start_model(budget, build=False)
    if budget.comparison.model is None and not is_built(path):
        t0 = time.perf_counter()
        path = start_model(budget)
        print(f"built the SFT start checkpoint in {fmt_duration(time.perf_counter() - t0)}", flush=True)
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
    k = budget.comparison.evaluation.k

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
                print(f"{prefix} {fmt_duration(seconds)} (train {fmt_duration(record['train_seconds'])}) "
                      f"{headline_text(record['headline'], k)} | elapsed {fmt_duration(elapsed)}, "
                      f"~{fmt_duration(left)} left", flush=True)
            else:
                failed.append(spec.name)
                log = path.parent / "log.txt"
                tail = log.read_text(errors="replace").splitlines()[-15:] if log.is_file() else []
                print(f"{prefix} FAILED (exit {code}); last lines of {log}:", *tail, sep="\n    ", flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun the same command to retry them",
              flush=True)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="6 objectives × 1 seed, shorter budget (≤ 10 min)")
    mode.add_argument("--smoke", action="store_true", help="2 objectives × 1 seed × 2 steps (a structure check)")
    mode.add_argument("--sensitivity", action="store_true", help="DMPO over λ × α on the quick budget")
    mode.add_argument("--paper", action="store_true",
                      help="every group objective of the paper's tables and the DM variants × 3 seeds (full budget)")
    mode.add_argument("--confirm", action="store_true",
                      help="grpo vs DMPO and its presets on three held-out tasks × 3 seeds")
    mode.add_argument("--scale", action="store_true", help="grpo vs DMPO and its presets, a ~4M-parameter model")
    mode.add_argument("--mode-name", choices=sorted(BUDGETS), help="any budget of BUDGETS by name")
    parser.add_argument("--work-dir", type=Path, help="runs, models and logs (default runs/quality-<mode>)")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="report folder (default benchmarks/results)")
    parser.add_argument("--objectives", help="comma-separated group objectives instead of the mode's own, e.g. "
                                             "grpo,gpg,clip_cov,kl_cov,flowrl,passk,dmpo (the budget is unchanged)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, each its own process")
    parser.add_argument("--run-timeout", type=float, default=3600, help="seconds before a run is killed")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from finished runs (the work dir's, else the previous report's)")
    parser.add_argument("--keep-models", action="store_true", help="keep trained model weights in the work dir")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    flags = {"quick": args.quick or args.sensitivity, "smoke": args.smoke, "paper": args.paper,
             "confirm": args.confirm, "scale": args.scale}
    name = args.mode_name or next((mode for mode, given in flags.items() if given), "full")
    budget = BUDGETS[name]
    if args.objectives:
        budget = replace(budget, comparison=replace(budget.comparison, objectives=args.objectives))
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
    sweep = sensitivity_sweep() if args.sensitivity else None
    specs = sensitivity_specs(sweep) if sweep else grid_specs(budget)
    train, evaluation = budget.comparison.train, budget.comparison.evaluation
    print(f"quality benchmark, mode {'sensitivity (quick budget)' if sweep else name}: "
          f"{train.max_steps} steps, G {train.num_generations}, {train.per_device_batch} completions/step, "
          f"tasks {','.join(train.tasks)}; eval {evaluation.count}/task × k={evaluation.k}", flush=True)
    stem = "quality_sensitivity" if sweep else f"quality_{name}"
    previous = args.output_dir / f"{stem}.json"
    prior = json.loads(previous.read_text()) if args.report_only and previous.is_file() else None
    recorded = False
    if args.report_only:
        results = load_results(work_dir, specs, budget)
        if not results and prior is not None:
            results, recorded = load_recorded(previous, specs, budget), True
            print(f"no finished runs in {work_dir}: {len(results)} runs recorded in {previous}", flush=True)
    else:
        results = run_grid(budget, specs, work_dir, args.workers, args.run_timeout)
    missing = [spec.name for spec in specs if spec not in results]
    if not results:
        print("no finished runs to report", flush=True)
        return 1
    context = Context(command, time.perf_counter() - started, {}, missing)
    if prior is not None:  # keep the command and wall time of the runs' invocation
        context.command = prior.get("command", command).strip()
        context.wall = prior.get("wall_seconds", context.wall)
        if recorded:  # the same runs: the same machine and date
            context.machine, context.date = prior.get("machine") or {}, prior.get("date", context.date)
    context.machine = context.machine or machine_info()
    records = list(results.values())
    if sweep:
        report = write_sensitivity_report(budget, records, args.output_dir, context, sweep)
    else:
        report = write_grid_report(budget, records, args.output_dir, context)
    print_summary(budget, records)
    print(f"report: {report} (wall time {fmt_duration(context.wall)})", flush=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
