"""PNG plots of training histories and evaluation results (matplotlib, no display needed).

Histories are TRL log histories (``trainer.state.log_history``): a list of dicts with a
``step`` and the metrics logged at that step. A metric missing from a run is simply not drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# (history key, panel title) of the training-curve panels.
TRAINING_METRICS: tuple[tuple[str, str], ...] = (
    ("reward", "reward (0.1·format + QR)"),
    ("npbench/quality_ratio", "QR of sampled answers"),
    ("npbench/distinct_valid_answers", "distinct valid answers per group"),
    ("entropy", "token entropy of the policy"),
)


def series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` over a log history, skipping rows without a finite value."""
    steps, values = [], []
    for row in history:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and "step" in row:
            steps.append(int(row["step"]))
            values.append(float(value))
    return steps, values


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (the first points average what exists)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _color(index: int) -> str:
    return f"C{index % 10}"


def plot_training_curves(
    histories: dict[str, Sequence[dict[str, Any]]],
    path: str | os.PathLike,
    *,
    metrics: Sequence[tuple[str, str]] = TRAINING_METRICS,
    smooth: int | None = None,
) -> Path:
    """One panel per metric, one line per run: raw values faint, moving average solid."""
    cols = 2
    rows = math.ceil(len(metrics) / cols)
    fig, axes = _figure(rows, cols, 11, 3.6 * rows)
    for panel, (key, title) in enumerate(metrics):
        ax = axes[panel // cols][panel % cols]
        drawn = False
        for index, (name, history) in enumerate(histories.items()):
            steps, values = series(history, key)
            if not steps:
                continue
            window = smooth or max(1, len(values) // 15)
            ax.plot(steps, values, color=_color(index), alpha=0.25, linewidth=0.8)
            ax.plot(steps, moving_average(values, window), color=_color(index), linewidth=1.8, label=name)
            drawn = True
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"'{key}' not logged", ha="center", va="center", transform=ax.transAxes)
    for panel in range(len(metrics), rows * cols):
        axes[panel // cols][panel % cols].set_visible(False)
    return _save(fig, path)


def plot_entropy_q(
    histories: dict[str, Sequence[dict[str, Any]]],
    path: str | os.PathLike,
    *,
    group_size: int | None = None,
) -> Path:
    """DMPO's ``entropy_q`` (entropy of the policy's distribution q over each sampled group) and
    ``max_q`` / ``max_p`` over steps; log G (q uniform over the group) as a reference line."""
    fig, axes = _figure(1, 2, 11, 3.6)
    ax_h, ax_max = axes[0]
    for index, (name, history) in enumerate(histories.items()):
        for ax, key, style in ((ax_h, "entropy_q", "-"), (ax_max, "max_q", "-"), (ax_max, "max_p", ":")):
            steps, values = series(history, key)
            if steps:
                label = name if key != "max_p" else f"{name} (target p)"
                ax.plot(steps, moving_average(values, max(1, len(values) // 15)), style,
                        color=_color(index), linewidth=1.8, label=label)
    if group_size:
        ax_h.axhline(math.log(group_size), color="gray", linestyle="--", linewidth=1,
                     label=f"log G (uniform over {group_size})")
    ax_h.set_title("entropy of q over each group")
    ax_max.set_title("largest share in a group: q (policy) and p (target)")
    for ax in (ax_h, ax_max):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged (a DMPO metric)", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_final_bars(
    rows: dict[str, dict[str, float]],
    path: str | os.PathLike,
    *,
    percent: Sequence[tuple[str, str]],
    counts: Sequence[tuple[str, str]],
) -> Path:
    """Grouped bars per model: percentages on the left, counts per item on the right.

    ``rows[model][metric]``; ``percent``/``counts`` are (metric, label) pairs."""
    fig, axes = _figure(1, 2, 12, 4.2)
    for ax, metrics, title in ((axes[0][0], percent, "quality and success (%)"),
                               (axes[0][1], counts, "diversity (distinct answers per instance)")):
        width = 0.8 / max(1, len(rows))
        for index, (name, values) in enumerate(rows.items()):
            xs = [i + (index - (len(rows) - 1) / 2) * width for i in range(len(metrics))]
            heights = [values.get(key, 0.0) for key, _ in metrics]
            bars = ax.bar(xs, heights, width, color=_color(index), label=name)
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        ax.set_xticks(range(len(metrics)), [label for _, label in metrics], rotation=20, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_qr_at_k(curves: dict[str, Sequence[float]], path: str | os.PathLike) -> Path:
    """Expected best QR of j samples (×100) against j, one line per model."""
    fig, axes = _figure(1, 1, 6, 4)
    ax = axes[0][0]
    for index, (name, curve) in enumerate(curves.items()):
        ax.plot(range(1, len(curve) + 1), curve, marker="o", color=_color(index), label=name)
    ax.set_xlabel("samples j")
    ax.set_ylabel("QR@j (expected best of j, %)")
    ax.set_title("QR@j: how quality grows with more samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
