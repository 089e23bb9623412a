"""PNG plots of training histories and evaluation results (matplotlib, no display needed).

Histories are TRL log histories (``trainer.state.log_history``): a list of dicts with a
``step`` and the metrics logged at that step. A metric missing from a run is simply not drawn.
A run repeated over seeds is a list of such histories: its curve is the mean over seeds with a
±1 std band (:func:`mean_band`). PNGs are saved with a 128-colour palette (a third of the size
of matplotlib's RGBA output, the same look).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

History = Sequence[Mapping[str, Any]]

# (history key, panel title) of the training-curve panels.
TRAINING_METRICS: tuple[tuple[str, str], ...] = (
    ("reward", "reward (0.1·format + QR)"),
    ("npbench/quality_ratio", "QR of sampled answers"),
    ("npbench/distinct_valid_answers", "distinct valid answers per group"),
    ("entropy", "token entropy of the policy"),
)
# The same panels for math and reasoning-gym tasks (the source reward's metrics).
SOURCE_TRAINING_METRICS: tuple[tuple[str, str], ...] = (
    ("reward", "reward (0.1·format + score)"),
    ("source/correct_frac", "correct sampled answers"),
    ("source/distinct_correct_answers", "distinct correct answers per group"),
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


def is_history(value: Any) -> bool:
    """True for one log history (rows of metrics), False for a list of them (one per seed)."""
    return not value or isinstance(value[0], Mapping)


def mean_band(
    histories: Sequence[History], key: str, window: int
) -> tuple[list[int], list[float], list[float]]:
    """(steps, means, stds) of ``key`` over several histories (seeds): the steps every history
    logged; per step the mean over histories of the ``window``-step trailing moving average, and
    its standard deviation (population: the spread of these runs)."""
    per_run = []
    for history in histories:
        steps, values = series(history, key)
        if steps:
            per_run.append(dict(zip(steps, moving_average(values, window))))
    if not per_run:
        return [], [], []
    common = sorted(set.intersection(*(set(run) for run in per_run)))
    means = [statistics.fmean(run[s] for run in per_run) for s in common]
    stds = [statistics.pstdev([run[s] for run in per_run]) for s in common]
    return common, means, stds


def _figure(rows: int, cols: int, width: float, height: float, **subplots: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **subplots)
    return fig, axes


def _save(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save as a 128-colour palette PNG."""
    import io

    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, format="PNG", optimize=True)
    return path


def _color(index: int) -> str:
    return f"C{index % 10}"


def _colors(names: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    """``colors`` where given, else one per name in order."""
    return {name: (colors or {}).get(name) or _color(index) for index, name in enumerate(names)}


def plot_training_curves(
    histories: Mapping[str, History | Sequence[History]],
    path: str | os.PathLike,
    *,
    metrics: Sequence[tuple[str, str]] = TRAINING_METRICS,
    smooth: int | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """One panel per metric, one line per run. A run given as one history: raw values faint,
    moving average solid. A run given as a list of histories (its seeds): the mean over seeds of
    the moving average, a band of ±1 std. ``smooth`` is the moving average's window (default:
    a fifteenth of the logged steps); ``colors`` maps run names to matplotlib colours."""
    cols = 2
    rows = math.ceil(len(metrics) / cols)
    fig, axes = _figure(rows, cols, 11, 3.6 * rows)
    palette = _colors(list(histories), colors)
    legend = False
    for panel, (key, panel_title) in enumerate(metrics):
        ax = axes[panel // cols][panel % cols]
        drawn = False
        for name, runs in histories.items():
            color = palette[name]
            if is_history(runs):
                steps, values = series(runs, key)
                if not steps:
                    continue
                ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
                ax.plot(steps, moving_average(values, smooth or max(1, len(values) // 15)), color=color,
                        linewidth=1.8, label=name)
            else:
                longest = max((len(series(run, key)[0]) for run in runs), default=0)
                steps, means, stds = mean_band(runs, key, smooth or max(1, longest // 15))
                if not steps:
                    continue
                ax.plot(steps, means, color=color, linewidth=1.6, label=name)
                ax.fill_between(steps, [m - s for m, s in zip(means, stds)],
                                [m + s for m, s in zip(means, stds)], color=color, alpha=0.15, linewidth=0)
            drawn = True
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        if drawn and not legend:  # one legend: colours are the same in every panel
            ax.legend(fontsize=8)
            legend = True
        elif not drawn:
            ax.text(0.5, 0.5, f"'{key}' not logged", ha="center", va="center", transform=ax.transAxes)
    for panel in range(len(metrics), rows * cols):
        axes[panel // cols][panel % cols].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi)


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


# (panel title, ((history key, line style), ...), log-scale y) of the DM diagnostics figure:
# the names of ``dmpo.objectives.dm_term.DM_DIAGNOSTICS`` (logged by DMPO runs) and the trainer's
# ``group/zero_std_frac`` (logged by every run).
DM_DIAGNOSTIC_PANELS: tuple[tuple[str, tuple[tuple[str, str], ...], bool], ...] = (
    ("DM share of the update: ‖λ·∂L_DM/∂φ‖ / (‖λ·∂L_DM/∂φ‖ + ‖∂L_base/∂φ‖)", (("dm_grad_share", "-"),), False),
    ("‖λ·∂L_DM/∂φ‖ / ‖∂L_base/∂φ‖", (("dm_grad_ratio", "-"),), True),
    ("cosine between the DM and base gradients in φ", (("dm_base_cos", "-"),), False),
    ("within-group std of φ (sequence score)", (("phi_std", "-"),), False),
    ("entropy of q (solid) and of the target p (dotted)", (("entropy_q", "-"), ("entropy_p", ":")), False),
    ("zero-signal groups (all rewards equal)", (("group/zero_std_frac", "-"),), False),
)


def plot_dm_diagnostics(
    histories: Mapping[str, History | Sequence[History]],
    path: str | os.PathLike,
    *,
    group_size: int | None = None,
    smooth: int | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Why the DM term matters or not, against the training step, one line per run.

    Panels (:data:`DM_DIAGNOSTIC_PANELS`): the DM term's share of the update with respect to the
    sequence scores φ, its ratio to the base term's (log scale), the cosine between the two, the
    within-group spread of φ, the entropies of q and p (with log G, q uniform, when
    ``group_size`` is given) and the share of zero-signal groups. Runs as in
    :func:`plot_training_curves`: one history (moving average) or a list over seeds (mean with a
    ±1 std band); ``smooth`` is the window (default a fifteenth of the logged steps). A run
    without DM (GRPO) shows only the zero-signal panel."""
    cols = 2
    rows = math.ceil(len(DM_DIAGNOSTIC_PANELS) / cols)
    fig, axes = _figure(rows, cols, 11, 3.2 * rows)
    palette = _colors(list(histories), colors)
    legend = False
    for panel, (panel_title, keys, log_scale) in enumerate(DM_DIAGNOSTIC_PANELS):
        ax = axes[panel // cols][panel % cols]
        drawn = False
        for name, runs in histories.items():
            seeds = [runs] if is_history(runs) else list(runs)
            for key, style in keys:
                longest = max((len(series(run, key)[0]) for run in seeds), default=0)
                steps, means, stds = mean_band(seeds, key, smooth or max(1, longest // 15))
                if not steps:
                    continue
                label = name if style == "-" else None
                ax.plot(steps, means, style, color=palette[name], linewidth=1.6, label=label)
                if len(seeds) > 1:
                    ax.fill_between(steps, [m - d for m, d in zip(means, stds)],
                                    [m + d for m, d in zip(means, stds)], color=palette[name], alpha=0.12,
                                    linewidth=0)
                drawn = True
        if group_size and any(key == "entropy_q" for key, _ in keys):
            ax.axhline(math.log(group_size), color="gray", linestyle="--", linewidth=1)
            ax.text(0.01, 0.02, f"gray: log {group_size} (q uniform)", fontsize=7, transform=ax.transAxes)
        if drawn and log_scale:
            ax.set_yscale("log")
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        if drawn and (not legend or panel == len(DM_DIAGNOSTIC_PANELS) - 1):  # the last: every run
            ax.legend(fontsize=7)
            legend = True
        elif not drawn:
            ax.text(0.5, 0.5, "not logged (DMPO runs log it)", ha="center", va="center", transform=ax.transAxes)
    for panel in range(len(DM_DIAGNOSTIC_PANELS), rows * cols):
        axes[panel // cols][panel % cols].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi)


def plot_final_bars(
    rows: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike,
    *,
    percent: Sequence[tuple[str, str]],
    counts: Sequence[tuple[str, str]],
    errors: Mapping[str, Mapping[str, float | None]] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Grouped bars per model: percentages on the left, counts per item on the right.

    ``rows[model][metric]``; ``percent``/``counts`` are (metric, label) pairs. With ``errors``
    (``errors[model][metric]``, e.g. the std over seeds) the bars get error bars instead of
    value labels."""
    fig, grid = _figure(1, 2, 12, 4.2, width_ratios=[len(percent) + 1, len(counts) + 1])
    axes = grid[0]
    palette = _colors(list(rows), colors)
    for ax, metrics, panel_title in ((axes[0], percent, "quality and success (%)"),
                                     (axes[1], counts, "diversity (distinct answers per instance)")):
        width = 0.8 / max(1, len(rows))
        for index, (name, values) in enumerate(rows.items()):
            xs = [i + (index - (len(rows) - 1) / 2) * width for i in range(len(metrics))]
            heights = [values.get(key, 0.0) for key, _ in metrics]
            if errors is None:
                bars = ax.bar(xs, heights, width, color=palette[name], label=name)
                ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
            else:
                spread = [errors.get(name, {}).get(key) or 0.0 for key, _ in metrics]
                ax.bar(xs, heights, width, yerr=spread, capsize=2, color=palette[name], label=name)
        ax.set_xticks(range(len(metrics)), [label for _, label in metrics], rotation=20, ha="right")
        ax.set_title(panel_title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7 if len(rows) > 4 else 8, ncol=2 if len(rows) > 4 else 1)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi)


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
