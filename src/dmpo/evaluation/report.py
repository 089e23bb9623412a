"""Comparison of several models on one held-out set: a table (Markdown and terminal), plots,
and ``results.json``, written to one report folder.

    write_report("runs/demo", {"SFT": r0, "GRPO": r1, "DMPO": r2},
                 histories={"GRPO": h1, "DMPO": h2}, settings={...})
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError
from dmpo.evaluation import plots
from dmpo.evaluation.sampling import EvalResult


def comparison_columns(k: int) -> list[tuple[str, str]]:
    """(headline metric, column label) of the summary table, for k samples per instance."""
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
    lines = ["| model | " + " | ".join(label for _, label in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, result in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell(result.headline.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def comparison_text(results: dict[str, EvalResult]) -> str:
    """The same table in fixed-width columns for the terminal."""
    columns = comparison_columns(_common_k(results))
    width = max(len(label) for _, label in columns) + 2
    name_width = max(8, *(len(n) + 2 for n in results))
    lines = [f"{'model':{name_width}}" + "".join(f"{label:>{width}}" for _, label in columns)]
    for name, result in results.items():
        lines.append(f"{name:{name_width}}" + "".join(f"{_cell(result.headline.get(key)):>{width}}"
                                                        for key, _ in columns))
    return "\n".join(lines)


def per_task_markdown(results: dict[str, EvalResult]) -> str:
    """Markdown table with one row per (task, model)."""
    columns = comparison_columns(_common_k(results))
    tasks = sorted({t for r in results.values() for t in r.summary["tasks"]})
    lines = ["| task | model | n | " + " | ".join(label for _, label in columns) + " |",
             "|---|---|---:|" + "---:|" * len(columns)]
    for task in tasks:
        for name, result in results.items():
            row = result.summary["tasks"].get(task)
            if row is None:
                continue
            lines.append(f"| {task} | {name} | {row['n']} | "
                         + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def training_summary(history: Sequence[dict[str, Any]], *, tail: float = 0.1) -> dict[str, float]:
    """Mean of the first and of the last ``tail`` fraction of logged steps, per main metric."""
    out: dict[str, float] = {}
    for key, _ in (*plots.TRAINING_METRICS, ("entropy_q", "")):
        _, values = plots.series(history, key)
        if values:
            n = max(1, round(len(values) * tail))
            out[f"{key} (first)"] = sum(values[:n]) / n
            out[f"{key} (last)"] = sum(values[-n:]) / n
    return out


def training_markdown(histories: dict[str, Sequence[dict[str, Any]]], seconds: dict[str, float]) -> str:
    keys = [("reward", "reward"), ("npbench/quality_ratio", "QR"),
            ("npbench/distinct_valid_answers", "distinct valid / group"), ("entropy_q", "entropy of q")]
    lines = ["| run | steps | minutes | " + " | ".join(f"{label} first → last" for _, label in keys) + " |",
             "|---|---:|---:|" + "---:|" * len(keys)]
    for name, history in histories.items():
        summary = training_summary(history)
        steps = max((int(row["step"]) for row in history if "step" in row), default=0)
        cells = []
        for key, _ in keys:
            first, last = summary.get(f"{key} (first)"), summary.get(f"{key} (last)")
            cells.append("-" if first is None else f"{first:.3f} → {last:.3f}")
        minutes = seconds.get(name)
        lines.append(f"| {name} | {steps} | {'-' if minutes is None else f'{minutes / 60:.1f}'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


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
