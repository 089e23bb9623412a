"""The report of ``benchmarks/quality.py``: finished runs' records → Markdown, JSON and two PNGs.

It runs nothing. A record is the JSON a finished run leaves (``runs/<name>/result.json``, also
kept in the ``runs`` list of a written report): its objective, parameters and seed, headline
and per-task metrics, and training history. Mean ± std over seeds, paired differences, the
table layout, learning curves with a band over seeds and bars with error bars come from
``dmpo.evaluation`` (``report.py``, ``plots.py``); this module arranges them for the quality
grid (``quality_<mode>.md/.json``, ``_curves.png``, ``_bars.png``, ``_dm.png`` when the runs
logged the DM diagnostics) and for DMPO's λ × α sweep
(``quality_sensitivity.md/.json``). The JSON's ``aggregate`` layout is what later grids keep:
``{label: {"seeds", "overall": {metric: {"mean", "std", "values"}}, "tasks": {task: {metric:
{"mean", "std"}}}, "train_seconds"}}``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmpo.evaluation.plots import (
    DM_DIAGNOSTIC_PANELS,
    SOURCE_TRAINING_METRICS,
    TRAINING_METRICS,
    plot_dm_diagnostics,
    plot_final_bars,
    plot_training_curves,
)
from dmpo.evaluation.report import (
    aggregate_seeds,
    comparison_columns,
    format_difference,
    format_stat,
    markdown_table,
    metric_digits,
    paired_differences,
    text_table,
)
from dmpo.pipeline.sources import is_npbench

if TYPE_CHECKING:
    from quality import Budget

SFT = "sft"  # the start checkpoint, evaluated without training
BASELINE = "grpo"  # paired differences are taken against this objective
# Logged training metrics kept in a record: the learning-curve panels and a few more.
KEPT_HISTORY = tuple(dict.fromkeys((
    *(key for key, _ in TRAINING_METRICS), *(key for key, _ in SOURCE_TRAINING_METRICS), "entropy_q",
    "frac_reward_zero_std", "loss", "step_time", "timing/rewards",
    *(key for _, keys, _ in DM_DIAGNOSTIC_PANELS for key, _ in keys), "max_q", "max_p", "dm_lambda",
    "dm_grad_norm", "base_grad_norm", "zero_signal_frac")))
ZERO_SIGNAL = "frac_reward_zero_std"
# A run that logged this has the DM diagnostics (runs recorded before issue 14 have not).
DM_MARKER = "dm_grad_share"
PNG_DPI = 80  # with the palette, a plot stays under 100 KB


def short_number(value: float) -> str:
    """1/15 and 1/30 as fractions, everything else as a short decimal."""
    for denominator in (3, 5, 15, 30):
        if value > 0 and math.isclose(1 / value, denominator, rel_tol=1e-9):
            return f"1/{denominator}"
    return f"{value:g}"


def run_label(objective: str, params: Sequence[tuple[str, float]] = ()) -> str:
    """``dmpo``, or ``dmpo[lam=4,alpha=1/30]`` with parameters."""
    if not params:
        return objective
    return f"{objective}[" + ",".join(f"{k}={short_number(v)}" for k, v in params) + "]"


@dataclass(frozen=True)
class Sweep:
    """An objective (DMPO) over λ × α: the sensitivity mode. ``defaults`` are the objective's
    registered λ and α; the cell with both is the plain objective's run (no parameters)."""

    objective: str
    lambdas: tuple[float, ...]
    alphas: tuple[float, ...]
    seeds: tuple[int, ...]
    defaults: Mapping[str, float]  # {"lam": λ, "alpha": α}

    def params(self, lam: float, alpha: float) -> tuple[tuple[str, float], ...]:
        """The cell's parameters that differ from the defaults."""
        return tuple((name, value) for name, value in (("lam", lam), ("alpha", alpha))
                     if value != self.defaults[name])


def expand_history(columns: Mapping[str, list]) -> list[dict[str, Any]]:
    """A record's history columns (``{"step": [...], metric: [...]}``) as log-history rows."""
    keys = [key for key in columns if key != "step"]
    return [{"step": step, **{key: columns[key][i] for key in keys if columns[key][i] is not None}}
            for i, step in enumerate(columns["step"])]


def compact_history(history: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """The kept metrics of a TRL log history as columns: ``{"step": [...], metric: [...]}``
    (``None`` where a step did not log the metric)."""
    rows = [row for row in history if "step" in row and any(key in row for key in KEPT_HISTORY)]
    columns: dict[str, list] = {"step": [int(row["step"]) for row in rows]}
    for key in KEPT_HISTORY:
        values = [row.get(key) for row in rows]
        if any(isinstance(v, (int, float)) for v in values):
            columns[key] = [round(float(v), 5) if isinstance(v, (int, float)) else None for v in values]
    return columns


# ---- aggregation ------------------------------------------------------------------------------
def metric_columns(k: int, sources: bool = False) -> list[tuple[str, str]]:
    """(headline key, label): rates and QR in %, distinct answers as counts per instance;
    ``sources``: the metrics of math and reasoning-gym tasks (``dmpo.evaluation.sources``)."""
    if sources:
        return [("accuracy", "accuracy"), ("reward", "mean reward"), ("well_formed", "well-formed"),
                (f"pass@{k}", f"pass@{k}"), ("distinct_correct", f"distinct correct@{k}")]
    return comparison_columns(k, style="seeds")


def paired_keys(k: int, sources: bool = False) -> list[str]:
    if sources:
        return ["accuracy", f"pass@{k}", "distinct_correct"]
    return ["qr", "qr_best", "distinct_valid", "distinct_optimal", f"pass@{k}"]


def is_sources(rows: Mapping[str, Any] | Sequence[dict]) -> bool:
    """Whether records (or an aggregate, by label) hold the metrics of math / reasoning-gym tasks."""
    entries = rows.values() if isinstance(rows, Mapping) else rows
    return any("accuracy" in entry.get("headline", entry.get("overall", {})) for entry in entries)


def headline_text(headline: Mapping[str, float], k: int) -> str:
    """One run's main numbers on one line."""
    nan = float("nan")
    if "accuracy" in headline:
        return (f"accuracy {headline['accuracy']:5.1f}  pass@{k} {headline.get(f'pass@{k}', nan):5.1f}  "
                f"distinct correct {headline['distinct_correct']:4.2f}")
    return (f"QR {headline['qr']:5.1f}  best@{k} {headline['qr_best']:5.1f}  distinct valid "
            f"{headline['distinct_valid']:4.2f}  pass@{k} {headline.get(f'pass@{k}', nan):5.1f}")


def order(labels: Sequence[str], objectives: Sequence[str]) -> list[str]:
    """SFT first, then objectives in the budget's order, variants with parameters by label."""
    rank = {name: i for i, name in enumerate((SFT, *objectives))}
    def key(label: str) -> tuple[int, str]:
        return rank.get(label.split("[")[0], len(rank)), label

    return sorted(dict.fromkeys(labels), key=key)


def aggregate(records: Sequence[dict], k: int, objectives: Sequence[str] = ()) -> dict[str, dict]:
    """Per label (objective with its parameters), in report order: mean ± std over seeds,
    overall and per task, and the mean training time."""
    keys = [key for key, _ in metric_columns(k, is_sources(records))]
    by_label: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        by_label.setdefault(record["label"], []).append(record)
    out = {}
    for label in order(list(by_label), objectives):
        rows = by_label[label]
        out[label] = {"seeds": [r["seed"] for r in rows], **aggregate_seeds(rows, keys),
                      "train_seconds": statistics.fmean(r["train_seconds"] for r in rows)}
    return out


def paired_vs_baseline(records: Sequence[dict], k: int, objectives: Sequence[str] = (),
                       baseline: str = BASELINE) -> dict[str, dict]:
    """Per label: (label − baseline) for each seed both have; mean, std and wins over seeds."""
    by_seed: dict[str, dict[int, dict]] = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        by_seed.setdefault(record["label"], {})[record["seed"]] = record
    out = {}
    for label in order(list(by_seed), objectives):
        if label in (baseline, SFT) or baseline not in by_seed:
            continue
        entry = paired_differences(by_seed[label], by_seed[baseline], paired_keys(k, is_sources(records)))
        if entry is not None:
            out[label] = entry
    return out


def display(label: str) -> str:
    return "SFT (start)" if label == SFT else label


def colors(labels: Sequence[str]) -> dict[str, str]:
    """One colour per (displayed) label, the same in every plot of a report."""
    return {display(label): f"C{index % 10}" for index, label in enumerate(labels)}


# ---- tables -----------------------------------------------------------------------------------
def overall_table(agg: dict[str, dict], k: int) -> str:
    columns = metric_columns(k, is_sources(agg))
    rows = [[display(label), str(len(entry["seeds"])),
             *(format_stat(entry["overall"][key], metric_digits(key)) for key, _ in columns),
             "-" if label == SFT else f"{entry['train_seconds'] / 60:.1f}"]
            for label, entry in agg.items()]
    return markdown_table(["objective", "seeds", *(label for _, label in columns), "train min/run"], rows)


def task_tables(agg: dict[str, dict], k: int) -> str:
    columns = metric_columns(k, is_sources(agg))
    parts = []
    for task in sorted({t for entry in agg.values() for t in entry["tasks"]}):
        rows = [[display(label), *(format_stat(entry["tasks"][task][key], metric_digits(key))
                                   for key, _ in columns)]
                for label, entry in agg.items() if task in entry["tasks"]]
        header = ["objective", *(label for _, label in columns)]
        parts.append(f"### {task}\n\n" + markdown_table(header, rows))
    return "\n\n".join(parts)


def paired_table(diffs: dict[str, dict], k: int) -> str:
    sources = any("accuracy" in entry for entry in diffs.values())
    labels = dict(metric_columns(k, sources))
    keys = paired_keys(k, sources)
    rows = [[label, *(format_difference(entry[key], metric_digits(key)) for key in keys)]
            for label, entry in diffs.items()]
    return markdown_table(["objective", *(f"Δ {labels[key]}" for key in keys)], rows)


def sensitivity_table(agg: dict[str, dict], sweep: Sweep, key: str) -> str:
    rows = []
    for lam in sweep.lambdas:
        cells = [short_number(lam)]
        for alpha in sweep.alphas:
            params = sweep.params(lam, alpha)
            entry = agg.get(run_label(sweep.objective, params))
            mark = " *" if not params else ""
            stat = None if entry is None else entry["overall"][key]
            cells.append("-" if stat is None else format_stat(stat, metric_digits(key)) + mark)
        rows.append(cells)
    return markdown_table(["λ \\ α", *(f"α = {short_number(alpha)}" for alpha in sweep.alphas)], rows)


def summary_text(agg: dict[str, dict], k: int) -> str:
    """The overall table in fixed-width columns for the terminal."""
    columns = [c for c in metric_columns(k, is_sources(agg)) if c[0] != "sr_best"]
    rows = [[display(label), str(len(entry["seeds"])),
             *(format_stat(entry["overall"][key], metric_digits(key)) for key, _ in columns)]
            for label, entry in agg.items()]
    return text_table(["objective", "seeds", *(label for _, label in columns)], rows)


# ---- plots ------------------------------------------------------------------------------------
def plot_curves(records: Sequence[dict], agg: dict[str, dict], path: Path) -> Path:
    """Training curves per label: mean over seeds of a moving average (a tenth of the steps)."""
    trained = [r for r in records if r["objective"] != SFT]
    histories = {display(label): [expand_history(r["history"]) for r in trained if r["label"] == label]
                 for label in agg if label != SFT}
    steps_total = max((max(r["history"]["step"], default=0) for r in trained), default=0)
    window = max(1, steps_total // 10)
    metrics = list(SOURCE_TRAINING_METRICS if is_sources(agg) else TRAINING_METRICS)
    logged = {key for r in trained for key in r["history"]}
    if trained and any(key not in logged for key, _ in metrics):  # runs recorded before a metric was kept
        metrics = [m for m in metrics if m[0] in logged]
        if ZERO_SIGNAL in logged:
            metrics.insert(1, (ZERO_SIGNAL, "groups without reward spread (no GRPO signal)"))
    return plot_training_curves(
        histories, path, metrics=metrics, smooth=window, colors=colors(list(agg)), dpi=PNG_DPI,
        title=f"Training curves: mean over seeds of a {window}-step moving average, band ±1 std")


def plot_dm(records: Sequence[dict], agg: dict[str, dict], path: Path, group_size: int) -> Path | None:
    """The DM diagnostics per label (mean over seeds, band ±1 std); None when no run logged them."""
    trained = [r for r in records if r["objective"] != SFT]
    if not any(DM_MARKER in r["history"] for r in trained):
        return None
    histories = {display(label): [expand_history(r["history"]) for r in trained if r["label"] == label]
                 for label in agg if label != SFT}
    steps_total = max((max(r["history"]["step"], default=0) for r in trained), default=0)
    window = max(1, steps_total // 10)
    return plot_dm_diagnostics(
        histories, path, group_size=group_size, smooth=window, colors=colors(list(agg)), dpi=PNG_DPI,
        title=f"DM diagnostics: mean over seeds of a {window}-step moving average, band ±1 std")


def plot_bars(agg: dict[str, dict], k: int, path: Path) -> Path:
    sources = is_sources(agg)
    labels = dict(metric_columns(k, sources))
    percent = [(key, labels[key]) for key in (("accuracy", f"pass@{k}") if sources else ("qr", "qr_best", f"pass@{k}"))]
    counts = [(key, labels[key]) for key in (("distinct_correct",) if sources else ("distinct_valid", "distinct_optimal"))]
    keys = [key for key, _ in (*percent, *counts)]
    means = {display(label): {key: entry["overall"][key]["mean"] for key in keys} for label, entry in agg.items()}
    stds = {display(label): {key: entry["overall"][key]["std"] for key in keys} for label, entry in agg.items()}
    return plot_final_bars(means, path, percent=percent, counts=counts, errors=stds, colors=colors(list(agg)),
                           dpi=PNG_DPI, title="Held-out evaluation: mean over seeds, error bar ±1 std")


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


def fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


@dataclass
class Context:
    """How the runs were made, for the report's header and JSON: the command that ran them, its
    wall time, the machine (``machine_info()``) and the report's date (default: now)."""

    command: str
    wall: float
    machine: dict[str, Any]
    missing: Sequence[str] = ()
    date: str | None = None

    def __post_init__(self) -> None:
        self.date = self.date or datetime.datetime.now().isoformat(timespec="seconds")


def _header(budget: Budget, records: Sequence[dict], context: Context) -> list[str]:
    comparison, info = budget.comparison, context.machine
    train, evaluation, sft = comparison.train, comparison.evaluation, comparison.sft
    steps = f"{train.max_steps} steps × {train.per_device_batch} completions (G = {train.num_generations})"
    trained = [r for r in records if r["objective"] != SFT]
    compute = sum(r["train_seconds"] + r["eval_seconds"] for r in records)
    span = (max(r["finished"] for r in records) - min(r["started"] for r in records)) if records else 0
    last = max((r["finished"] for r in records), default=time.time())
    run_date = datetime.datetime.fromtimestamp(last, datetime.UTC).strftime("%Y-%m-%d")
    if comparison.model is not None:
        start = f"`{comparison.model}`"
    elif sft.vision:
        start = (f"the built-in tiny VLM (Qwen2-VL; language model hidden {sft.hidden_size}, {sft.num_layers} "
                 f"layer(s); vision tower hidden {sft.vision_hidden_size}, {sft.vision_layers} block(s)) "
                 f"warm-started by SFT on `{sft.render}` images of {', '.join(sft.tasks)}")
    else:
        start = (f"the built-in tiny model (hidden {sft.hidden_size}, {sft.num_layers} layer(s)) warm-started "
                 f"by SFT on {', '.join(sft.tasks)}")
    difficulty = f" ({train.difficulty})" if any(is_npbench(t) for t in train.tasks) else ""
    images = (f"; prompts are `{train.render}` images with the task's question (structure in the picture only)"
              if train.modality == "vision" else "")
    lines = [
        f"- Command: `{context.command}`",
        f"- Date: {run_date}; machine: {info['platform']}, {info['cpu_count']} CPU cores"
        + (f", GPU {info['gpu']}" if info.get("gpu") else "")
        + f"; torch {info['torch']}; commit at report time {info['git_commit']}",
        f"- Start: {start}; every run starts from it.",
        f"- Budget per run: {steps}, learning rate {train.learning_rate:g} (constant after warm-up), "
        f"completions ≤ {train.max_completion_length} tokens, tasks {', '.join(train.tasks)}{difficulty}{images}.",
        f"- Held-out set: {evaluation.count} instances per task (seeds from {evaluation.eval_seed:,}, "
        f"disjoint from training), k = {evaluation.k} samples each at temperature "
        f"{evaluation.temperature:g}; sampling seed = run seed.",
        f"- Runs: {len(trained)} trained + {len(records) - len(trained)} SFT evaluation(s); "
        f"wall time from first start to last finish {fmt_duration(span)} "
        f"(this invocation {fmt_duration(context.wall)}; compute summed over runs {fmt_duration(compute)}).",
    ]
    if budget.note:
        lines.append(f"- Note: {budget.note}.")
    return lines


def _missing(context: Context) -> list[str]:
    if not context.missing:
        return []
    return [f"**Incomplete: {len(context.missing)} run(s) missing ({', '.join(context.missing)}).**", ""]


def _payload(budget: Budget, context: Context, mode: str) -> dict[str, Any]:
    return {"mode": mode, "command": context.command, "date": context.date, "machine": context.machine,
            "budget": budget.record(), "settings": asdict(budget.comparison),
            "fingerprint": budget.fingerprint(), "wall_seconds": context.wall,
            "missing": list(context.missing)}


def write_grid_report(budget: Budget, records: Sequence[dict], output_dir: Path, context: Context) -> Path:
    """``quality_<mode>.md`` (tables), ``.json`` (aggregate and raw runs) and two PNGs."""
    k = budget.comparison.evaluation.k
    agg = aggregate(records, k, budget.comparison.objectives)
    diffs = paired_vs_baseline(records, k, budget.comparison.objectives)
    stem = f"quality_{budget.mode}"
    output_dir.mkdir(parents=True, exist_ok=True)
    curves = plot_curves(records, agg, output_dir / f"{stem}_curves.png")
    bars = plot_bars(agg, k, output_dir / f"{stem}_bars.png")
    dm = plot_dm(records, agg, output_dir / f"{stem}_dm.png", budget.comparison.train.num_generations)
    sources = is_sources(agg)
    where = ", ".join(budget.comparison.train.tasks) if sources else "NP-Bench"
    if budget.comparison.train.modality == "vision":
        where += " (vision: image prompts, a VLM)"
    md = [f"# Quality: DMPO against the GRPO family on {where} ({budget.mode})", "",
          *_header(budget, records, context), "", *_missing(context)]
    legend = (f"Rates in %. **accuracy**: correct single samples; **mean reward**: 0.1 for a well-formed "
              f"answer + the task's score; **well-formed**: samples with a final answer; **pass@{k}**: some "
              f"sample correct; **distinct correct@{k}**: different correct answers among {k} samples."
              if sources else
              f"QR and rates in %. **QR mean**: one sample (0 if invalid); **QR best@{k}**: best of {k}; "
              f"**success rate**: valid single samples; **success@{k}**: some sample valid with QR > 0; "
              f"**distinct valid/optimal@{k}**: different valid/optimal answers among {k} samples; "
              f"**pass@{k}**: some sample optimal.")
    md += ["## Overall (mean over tasks; mean ± std over seeds)", "", overall_table(agg, k), "",
           f"{legend} The SFT row's spread is evaluation sampling noise alone.", ""]
    if diffs:
        md += [f"## Paired differences against {BASELINE} (same seed; mean ± std, seeds where higher)", "",
               paired_table(diffs, k), ""]
    md += ["## Learning curves", "", f"![learning curves]({curves.name})", ""]
    if dm is not None:
        md += ["## DM diagnostics", "", f"![DM diagnostics]({dm.name})", "",
               "Per step: the DM term's share of the update with respect to the sequence scores φ, its ratio "
               "to the base term's, their cosine, the within-group std of φ, the entropies of q and p "
               "(log G: q uniform) and the share of zero-signal groups.", ""]
    md += ["## Final metrics", "", f"![final metrics]({bars.name})", "",
           "## Per task", "", task_tables(agg, k), ""]
    markdown = output_dir / f"{stem}.md"
    markdown.write_text("\n".join(md), encoding="utf-8")
    payload = {**_payload(budget, context, budget.mode), "aggregate": agg, "paired_vs_grpo": diffs,
               "runs": sorted(records, key=lambda r: (r["seed"], r["label"]))}
    (output_dir / f"{stem}.json").write_text(json.dumps(payload, default=str), encoding="utf-8")
    return markdown


def write_sensitivity_report(budget: Budget, records: Sequence[dict], output_dir: Path, context: Context,
                             sweep: Sweep) -> Path:
    """``quality_sensitivity.md`` (one λ × α table per metric) and ``.json``."""
    k = budget.comparison.evaluation.k
    agg = aggregate(records, k, budget.comparison.objectives)
    seeds = sweep.seeds
    md = ["# Sensitivity of DMPO to λ and α (quick budget)", "", *_header(budget, records, context),
          f"- Seeds: {', '.join(map(str, seeds))}"
          + (" (one seed: the quick budget × 12 cells allows no more on 2 cores, so differences below "
             "the seed-to-seed spread of the full grid are noise)" if len(seeds) == 1 else ""), "",
          *_missing(context)]
    shown = [(key, name) for key, name in metric_columns(k)
             if key in ("qr", "qr_best", "distinct_valid", f"pass@{k}")]
    reference = [f"{display(label)}: " + ", ".join(
        f"{name} {format_stat(agg[label]['overall'][key], metric_digits(key))}" for key, name in shown)
        for label in (SFT, BASELINE) if label in agg]
    lam, alpha = (short_number(sweep.defaults[name]) for name in ("lam", "alpha"))
    md += ["References on the same budget and seed(s): " + "; ".join(reference) + ".", "",
           f"`*` marks the registered defaults of `{sweep.objective}` (λ = {lam}, α = {alpha}, the paper's "
           f"setting): the plain `{sweep.objective}` run.", ""]
    for key, title in (("qr", "QR mean (%)"), ("qr_best", f"QR best@{k} (%)"),
                       ("distinct_valid", f"distinct valid@{k}"), (f"pass@{k}", f"pass@{k} (%)")):
        md += [f"## {title}", "", sensitivity_table(agg, sweep, key), ""]
    markdown = output_dir / "quality_sensitivity.md"
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(md), encoding="utf-8")
    payload = {**_payload(budget, context, "sensitivity"), "seeds": list(seeds),
               "lambdas": list(sweep.lambdas), "alphas": list(sweep.alphas), "aggregate": agg,
               "runs": [{key: value for key, value in r.items() if key != "history"} for r in records]}
    (output_dir / "quality_sensitivity.json").write_text(json.dumps(payload, default=str),
                                                         encoding="utf-8")
    return markdown


def print_summary(budget: Budget, records: Sequence[dict]) -> None:
    k = budget.comparison.evaluation.k
    print("\n" + summary_text(aggregate(records, k, budget.comparison.objectives), k) + "\n", flush=True)
