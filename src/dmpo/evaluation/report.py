"""Comparison of several models on one held-out set: a table (Markdown and terminal), plots,
and ``results.json``, written to one report folder.

    write_report("runs/demo", {"SFT": r0, "GRPO": r1, "DMPO": r2},
                 histories={"GRPO": h1, "DMPO": h2}, settings={...})

Repeated runs (one per seed) of a model are summarised as mean ± std over seeds
(:func:`aggregate_seeds`) and compared seed by seed (:func:`paired_differences`); the table
helpers (:func:`markdown_table`, :func:`text_table`, :func:`format_stat`) write both kinds.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.evaluation import plots
from dmpo.evaluation.sampling import EvalResult


def comparison_columns(k: int, *, style: str = "model") -> list[tuple[str, str]]:
    """(headline metric, column label) of the summary table, for k samples per instance.

    ``style="model"``: one evaluation per row (the demo, ``write_report``). ``style="seeds"``:
    mean ± std over seeds per row (benchmarks/quality.py): shorter labels, the success rate
    before success@k, and pass@k without pass@1."""
    if style == "seeds":
        return [("qr", "QR mean"), ("qr_best", f"QR best@{k}"), ("sr", "success rate"),
                ("sr_best", f"success@{k}"), ("distinct_valid", f"distinct valid@{k}"),
                ("distinct_optimal", f"distinct optimal@{k}"), (f"pass@{k}", f"pass@{k}")]
    if style != "model":
        raise DmpoError(f"unknown table style {style!r}: 'model' or 'seeds'")
    columns = [
        ("qr", "QR mean"),
        ("qr_best", f"QR best-of-{k}"),
        ("sr_best", f"success@{k}"),
        ("sr", "valid rate"),
        ("distinct_valid", f"distinct valid@{k}"),
        ("distinct_optimal", f"distinct optimal@{k}"),
        ("pass@1", "pass@1"),
    ]
    if k > 1:
        columns.append((f"pass@{k}", f"pass@{k}"))
    return columns


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
                   text_columns: int = 1) -> str:
    """A Markdown table: the first ``text_columns`` columns left-aligned, the rest right."""
    align = "|" + "---|" * text_columns + "---:|" * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", align]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width columns for the terminal: the first left-aligned, the rest right."""
    columns = list(zip(header, *rows))
    first = max(8, *(len(c) + 2 for c in columns[0]))
    widths = [max(len(c) for c in column) + 2 for column in columns[1:]]
    return "\n".join(f"{cells[0]:{first}}" + "".join(f"{c:>{w}}" for c, w in zip(cells[1:], widths))
                     for cells in (header, *rows))


def _common_k(results: dict[str, EvalResult]) -> int:
    if not results:
        raise DmpoError("no evaluation results to report")
    ks = {r.k for r in results.values()}
    if len(ks) != 1:
        raise DmpoError(f"models were evaluated with different k {sorted(ks)}; compare at one k")
    return ks.pop()


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comparison_markdown(results: dict[str, EvalResult]) -> str:
    """Markdown table, one row per model, of the headline metrics (mean over tasks)."""
    columns = comparison_columns(_common_k(results))
    return markdown_table(["model", *(label for _, label in columns)],
                          [[name, *(_cell(result.headline.get(key)) for key, _ in columns)]
                           for name, result in results.items()])


def comparison_text(results: dict[str, EvalResult]) -> str:
    """The same table in fixed-width columns for the terminal."""
    columns = comparison_columns(_common_k(results))
    return text_table(["model", *(label for _, label in columns)],
                      [[name, *(_cell(result.headline.get(key)) for key, _ in columns)]
                       for name, result in results.items()])


def per_task_markdown(results: dict[str, EvalResult]) -> str:
    """Markdown table with one row per (task, model)."""
    columns = comparison_columns(_common_k(results))
    tasks = sorted({t for r in results.values() for t in r.summary["tasks"]})
    rows = [[task, name, str(row["n"]), *(_cell(row.get(key)) for key, _ in columns)]
            for task in tasks for name, result in results.items()
            if (row := result.summary["tasks"].get(task)) is not None]
    return markdown_table(["task", "model", "n", *(label for _, label in columns)], rows, text_columns=2)


# ---- repeated runs: mean ± std over seeds, paired differences ----------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single value: no spread is claimed)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def _scores(result: EvalResult | Mapping[str, Any]) -> tuple[Mapping[str, float], Mapping[str, Mapping]]:
    """(headline, per-task summary) of an EvalResult or of a record holding both."""
    if isinstance(result, EvalResult):
        return result.headline, result.summary["tasks"]
    return result["headline"], result["tasks"]


def aggregate_seeds(
    results: Sequence[EvalResult | Mapping[str, Any]], keys: Sequence[str]
) -> dict[str, dict]:
    """Mean ± std over several evaluations of one model on one held-out set (one per seed).

    A result is an :class:`EvalResult` or a record ``{"headline": ..., "tasks":
    summary["tasks"]}`` (as stored in a JSON file). Returns ``{"overall": {key: {"mean", "std",
    "values"}}, "tasks": {task: {key: {"mean", "std"}}}}``, values in the order given; a task
    averages the results that have it."""
    if not results:
        raise DmpoError("no evaluation results to aggregate")
    scores = [_scores(result) for result in results]
    overall = {}
    for key in keys:
        values = [headline[key] for headline, _ in scores]
        mean, std = mean_std(values)
        overall[key] = {"mean": mean, "std": std, "values": values}
    tasks = {}
    for task in sorted({t for _, per_task in scores for t in per_task}):
        present = [per_task[task] for _, per_task in scores if task in per_task]
        tasks[task] = {key: dict(zip(("mean", "std"), mean_std([row[key] for row in present])))
                       for key in keys}
    return {"overall": overall, "tasks": tasks}


def paired_differences(
    results: Mapping[Hashable, EvalResult | Mapping[str, Any]],
    baseline: Mapping[Hashable, EvalResult | Mapping[str, Any]],
    keys: Sequence[str],
) -> dict[str, Any] | None:
    """(result − baseline) of each headline metric for every seed both have (``results`` and
    ``baseline`` map seeds to evaluations): ``{"seeds": [...], key: {"mean", "std", "wins",
    "n"}}``, ``wins`` = seeds where the result is higher. ``None`` if no seed is shared."""
    seeds = [seed for seed in results if seed in baseline]
    if not seeds:
        return None
    out: dict[str, Any] = {"seeds": seeds}
    for key in keys:
        diffs = [_scores(results[seed])[0][key] - _scores(baseline[seed])[0][key] for seed in seeds]
        mean, std = mean_std(diffs)
        out[key] = {"mean": mean, "std": std, "wins": sum(d > 0 for d in diffs), "n": len(diffs)}
    return out


def metric_digits(key: str) -> int:
    """Decimals of a headline metric in tables: 2 for distinct-answer counts and mean rewards, 1
    for percentages."""
    return 2 if key.startswith("distinct") or key == "reward" else 1


def format_stat(stat: Mapping[str, Any], digits: int = 1) -> str:
    """``mean ± std`` of an :func:`aggregate_seeds` entry (the mean alone without a std)."""
    if stat.get("std") is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def format_difference(stat: Mapping[str, Any], digits: int = 1) -> str:
    """``+mean ± std (wins/n)`` of a :func:`paired_differences` entry."""
    sign = "+" if stat["mean"] >= 0 else ""
    std = "" if stat["std"] is None else f" ± {stat['std']:.{digits}f}"
    return f"{sign}{stat['mean']:.{digits}f}{std} ({stat['wins']}/{stat['n']})"


def training_summary(history: Sequence[dict[str, Any]], *, tail: float = 0.1) -> dict[str, float]:
    """Mean of the first and of the last ``tail`` fraction of logged steps, per main metric (those
    logged: NP-Bench's, or the task sources' correct fraction and distinct correct answers)."""
    out: dict[str, float] = {}
    sources = (("source/correct_frac", ""), ("source/distinct_correct_answers", ""))
    for key, _ in (*plots.TRAINING_METRICS, *sources, ("entropy_q", "")):
        _, values = plots.series(history, key)
        if values:
            n = max(1, round(len(values) * tail))
            out[f"{key} (first)"] = sum(values[:n]) / n
            out[f"{key} (last)"] = sum(values[-n:]) / n
    return out


def training_markdown(histories: dict[str, Sequence[dict[str, Any]]], seconds: dict[str, float]) -> str:
    keys = [("reward", "reward"), ("npbench/quality_ratio", "QR"),
            ("npbench/distinct_valid_answers", "distinct valid / group"), ("entropy_q", "entropy of q")]
    rows = []
    for name, history in histories.items():
        summary = training_summary(history)
        steps = max((int(row["step"]) for row in history if "step" in row), default=0)
        cells = []
        for key, _ in keys:
            first, last = summary.get(f"{key} (first)"), summary.get(f"{key} (last)")
            cells.append("-" if first is None else f"{first:.3f} → {last:.3f}")
        minutes = seconds.get(name)
        rows.append([name, str(steps), "-" if minutes is None else f"{minutes / 60:.1f}", *cells])
    header = ["run", "steps", "minutes", *(f"{label} first → last" for _, label in keys)]
    return markdown_table(header, rows)


@dataclass
class Report:
    folder: Path
    markdown: Path
    results_json: Path
    plots: list[Path]


def write_report(
    output_dir: str | os.PathLike,
    results: dict[str, EvalResult],
    *,
    histories: dict[str, Sequence[dict[str, Any]]] | None = None,
    training_seconds: dict[str, float] | None = None,
    settings: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
    title: str = "DMPO vs GRPO on NP-Bench",
    group_size: int | None = None,
    notes: Sequence[str] = (),
) -> Report:
    """Write ``report.md``, ``results.json`` and the PNG plots to ``output_dir``."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    histories = dict(histories or {})
    k = _common_k(results)
    columns = comparison_columns(k)
    percent = [(key, label) for key, label in columns if not key.startswith("distinct")]
    counts = [(key, label) for key, label in columns if key.startswith("distinct")]
    figures = [plots.plot_final_bars({n: r.headline for n, r in results.items()}, folder / "final_bars.png",
                                     percent=percent, counts=counts),
               plots.plot_qr_at_k({n: r.qr_curve for n, r in results.items()}, folder / "qr_at_k.png")]
    if histories:
        figures.append(plots.plot_training_curves(histories, folder / "training_curves.png"))
        figures.append(plots.plot_entropy_q(histories, folder / "entropy_q.png", group_size=group_size))

    any_result = next(iter(results.values()))
    num_items = len(any_result.items)
    tasks = sorted(any_result.summary["tasks"])
    md = [f"# {title}", ""]
    md += [f"Held-out set: {num_items} instances ({', '.join(tasks)}), {k} samples each "
           f"(temperature {any_result.settings.get('temperature', '?')}). "
           "Rates and QR in %, means over tasks; distinct answers are counts per instance.", ""]
    md += ["## Summary", "", comparison_markdown(results), ""]
    md += ["Columns: **QR mean** = quality ratio of a single sample (0 if invalid); "
           f"**QR best-of-{k}** = best of the {k} samples; **success@{k}** = some sample is valid with "
           "QR > 0; **valid rate** = valid single samples; **distinct valid/optimal@k** = different "
           "valid / optimal answers among the k samples; **pass@j** = chance that j samples hold an "
           "optimal answer (unbiased estimator).", ""]
    if histories:
        md += ["## Training", "", training_markdown(histories, training_seconds or {}), "",
               "![training curves](training_curves.png)", "",
               "![entropy of q](entropy_q.png)", ""]
    md += ["## Final quality and diversity", "", "![final bars](final_bars.png)", "",
           "![QR@j](qr_at_k.png)", "", "## Per task", "", per_task_markdown(results), ""]
    if notes:
        md += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    if settings:
        md += ["## Settings", "", "```json", json.dumps(settings, indent=2, default=str), "```", ""]
    if timings:
        md += ["## Wall time", "", "| stage | seconds |", "|---|---:|",
               *[f"| {stage} | {seconds:.0f} |" for stage, seconds in timings.items()], ""]
    markdown = folder / "report.md"
    markdown.write_text("\n".join(md), encoding="utf-8")

    payload = {
        "title": title,
        "settings": settings or {},
        "timings": timings or {},
        "models": {name: result.to_dict() for name, result in results.items()},
        "training": {name: {"seconds": (training_seconds or {}).get(name), "history": list(history)}
                     for name, history in histories.items()},
    }
    results_json = folder / "results.json"
    results_json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return Report(folder, markdown, results_json, figures)
