"""Scores over sampled answers: success rate and Quality Ratio (single-sample and best-of-k),
diversity (distinct valid and distinct optimal answers), pass@k and the QR@k curve; then
per task, per category and overall (the unweighted mean of categories).

Two published protocols: ``text`` (k samples, an item's QR is the best of its samples and it
succeeds when some sample has QR > 0) and ``vision`` (one sample, success = valid). Both
single-sample and best-of-k numbers are always reported; the protocol picks the categories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

from dmpo.errors import DmpoError
from dmpo.npbench.base import OPTIMAL_TOL, Instance, Verdict
from dmpo.npbench.registry import TEXT_CATEGORIES, VISION_GROUPS, get_task


@dataclass
class ItemScore:
    """Metrics of one item from its k sampled answers (in sampling order)."""

    id: str
    task: str
    k: int
    valid_rate: float  # single-sample success (vision protocol)
    success: bool  # some sample has QR > 0 (text protocol)
    qr_mean: float  # single-sample QR, mean over samples
    qr_best: float  # best-of-k QR
    distinct_valid: int
    distinct_optimal: int
    num_optimal: int
    qr_at: list[float]  # qr_at[j-1] = expected best QR of j samples drawn from the k, j=1..k

    def pass_at(self, j: int) -> float:
        """Unbiased pass@j (Chen et al. 2021), "pass" = an optimal answer."""
        return pass_at_k(self.k, self.num_optimal, j)


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 − C(n−c, k)/C(n, k): chance that k of n samples (c of them correct) hold a correct one."""
    if k > n or k < 1:
        raise DmpoError(f"pass@k needs 1 ≤ k ≤ n samples, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def expected_best_of(values: Sequence[float], j: int) -> float:
    """E[max of j values drawn without replacement from ``values``], exactly."""
    n = len(values)
    if not 1 <= j <= n:
        raise DmpoError(f"best-of-j needs 1 ≤ j ≤ {n}, got {j}")
    ordered = sorted(values)
    total = comb(n, j)
    # The i-th smallest (1-based) is the max of a j-subset in C(i-1, j-1) subsets.
    return sum(v * comb(i, j - 1) for i, v in enumerate(ordered) if i >= j - 1) / total


def score_item(instance: Instance, verdicts: Sequence[Verdict]) -> ItemScore:
    if not verdicts:
        raise DmpoError(f"item {instance.id!r} has no sampled answers to score")
    k = len(verdicts)
    qrs = [v.quality_ratio for v in verdicts]
    optimal = [
        v for v in verdicts
        if v.valid and instance.optimum is not None and v.quality_ratio >= 1.0 - OPTIMAL_TOL
    ]
    return ItemScore(
        id=instance.id,
        task=instance.task,
        k=k,
        valid_rate=sum(v.valid for v in verdicts) / k,
        success=any(q > 0 for q in qrs),
        qr_mean=sum(qrs) / k,
        qr_best=max(qrs),
        distinct_valid=len({v.answer for v in verdicts if v.valid}),
        distinct_optimal=len({v.answer for v in optimal}),
        num_optimal=len(optimal),
        qr_at=[expected_best_of(qrs, j) for j in range(1, k + 1)],
    )


def score_completions(instance: Instance, completions: Sequence[str], *, cap: bool = False) -> ItemScore:
    task = get_task(instance.task)
    return score_item(instance, [task.evaluate(instance, c, cap=cap) for c in completions])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(items: Sequence[ItemScore], *, protocol: str = "text", pass_k: Sequence[int] = (1,)) -> dict:
    """Per task, per category and overall. Rates and QR ×100; diversity as counts per item.

    Keys per row: n, sr (single-sample valid rate), sr_best (some sample has QR>0), qr (mean
    single-sample QR), qr_best (best-of-k), distinct_valid, distinct_optimal, pass@j.
    Category = unweighted mean of its tasks present; overall = mean of categories present.
    """
    if protocol not in ("text", "vision"):
        raise DmpoError(f"unknown protocol {protocol!r}; valid: ['text', 'vision']")
    groups = TEXT_CATEGORIES if protocol == "text" else VISION_GROUPS
    by_task: dict[str, list[ItemScore]] = defaultdict(list)
    for item in items:
        by_task[item.task].append(item)
    tasks = {}
    for name in sorted(by_task):
        rows = by_task[name]
        row = {
            "n": len(rows),
            "sr": 100 * _mean([r.valid_rate for r in rows]),
            "sr_best": 100 * _mean([float(r.success) for r in rows]),
            "qr": 100 * _mean([r.qr_mean for r in rows]),
            "qr_best": 100 * _mean([r.qr_best for r in rows]),
            "distinct_valid": _mean([r.distinct_valid for r in rows]),
            "distinct_optimal": _mean([r.distinct_optimal for r in rows]),
        }
        for j in pass_k:
            usable = [r for r in rows if r.k >= j]
            if usable:
                row[f"pass@{j}"] = 100 * _mean([r.pass_at(j) for r in usable])
        tasks[name] = row
    metrics = [m for m in next(iter(tasks.values()), {}) if m != "n"]
    categories = {}
    for group, members in groups.items():
        present = [tasks[t] for t in members if t in tasks]
        if present:
            categories[group] = {"n_tasks": len(present),
                                 **{m: _mean([p[m] for p in present if m in p]) for m in metrics}}
    overall = {m: _mean([c[m] for c in categories.values()]) for m in metrics} if categories else {}
    outside = sorted(t for t in tasks if not any(t in members for members in groups.values()))
    return {"protocol": protocol, "tasks": tasks, "categories": categories, "overall": overall,
            "tasks_outside_protocol": outside}


def qr_curve(items: Sequence[ItemScore]) -> list[float]:
    """Mean expected best-of-j QR (×100) over items, j = 1..min k."""
    if not items:
        return []
    k = min(item.k for item in items)
    return [100 * _mean([item.qr_at[j] for item in items]) for j in range(k)]


def format_table(summary: dict, *, title: str = "NP-Bench") -> str:
    """A plain-text table: tasks, then categories, then overall."""
    columns = ["sr", "sr_best", "qr", "qr_best", "distinct_valid", "distinct_optimal"]
    columns += sorted(k for k in summary.get("overall", {}) if k.startswith("pass@"))
    header = f"{'':24}" + "".join(f"{c:>17}" for c in columns)
    lines = [title, header]

    def row(label: str, values: dict) -> str:
        return f"{label:24}" + "".join(
            f"{values[c]:>17.2f}" if c in values else f"{'-':>17}" for c in columns)

    for name, values in summary["tasks"].items():
        lines.append(row(name, values))
    for name, values in summary["categories"].items():
        lines.append(row(f"[{name}]", values))
    if summary["overall"]:
        lines.append(row("OVERALL", summary["overall"]))
    return "\n".join(lines)
