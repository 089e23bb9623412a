"""The comparison report: table values, training summaries, plots, and errors."""

from __future__ import annotations

import json
import math

import pytest

from dmpo.errors import DmpoError
from dmpo.evaluation import evaluate_completions
from dmpo.evaluation.plots import moving_average, series
from dmpo.evaluation.report import (
    comparison_markdown,
    comparison_text,
    training_summary,
    write_report,
)
from tests.evaluation.test_sampling import knapsack_instance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def results(k: int = 2) -> dict:
    inst = knapsack_instance()
    good = ["Answer: [0, 1]", "Answer: [1, 2]", "Answer: [0, 2]", "Answer: [3]"][:k]
    bad = ["Answer: [3]", "nothing", "nothing", "nothing"][:k]
    return {"A": evaluate_completions([inst], [good]), "B": evaluate_completions([inst], [bad])}


def history(values: list[float], key: str = "reward") -> list[dict]:
    return [{"step": i + 1, key: v, "loss": 0.0} for i, v in enumerate(values)] + [{"step": len(values),
                                                                                   "train_runtime": 1.0}]


def test_moving_average_and_series():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0], 5) == [2.0]
    rows = [{"step": 1, "reward": 0.5}, {"step": 2, "reward": math.nan}, {"step": 3}, {"step": 4, "reward": 1}]
    assert series(rows, "reward") == ([1, 4], [0.5, 1.0])


def test_comparison_table_values():
    table = comparison_markdown(results(k=2))
    lines = table.splitlines()
    assert lines[0].startswith("| model | QR mean | QR best-of-2 | success@2 |")
    # A: both samples optimal and distinct; B: one valid sample with QR 0.25, one without an answer.
    assert lines[2] == "| A | 100.00 | 100.00 | 100.00 | 100.00 | 2.00 | 2.00 | 100.00 | 100.00 |"
    assert lines[3] == "| B | 12.50 | 25.00 | 100.00 | 50.00 | 1.00 | 0.00 | 0.00 | 0.00 |"
    text = comparison_text(results(k=2))
    assert text.splitlines()[1].split()[0] == "A" and "100.00" in text


def test_training_summary_first_and_last_tenth():
    summary = training_summary(history([float(i) for i in range(20)]))
    assert summary["reward (first)"] == pytest.approx(0.5)  # steps 1-2
    assert summary["reward (last)"] == pytest.approx(18.5)  # steps 19-20
    assert "entropy_q (first)" not in summary


def test_write_report_files(tmp_path):
    res = results(k=4)
    report = write_report(tmp_path, res, histories={"A": history([0.1, 0.2, 0.4]),
                                                    "B": history([0.3, 0.2, 0.1], key="entropy_q")},
                          training_seconds={"A": 60.0}, settings={"seed": 0}, timings={"total": 12.0},
                          group_size=4)
    assert {p.name for p in report.plots} == {"final_bars.png", "qr_at_k.png", "training_curves.png",
                                              "entropy_q.png"}
    for path in report.plots:
        assert path.read_bytes().startswith(PNG_MAGIC)
    md = report.markdown.read_text()
    assert "| A | 3 | 1.0 | 0.100 → 0.400 |" in md  # steps, minutes, reward first → last
    assert "| total | 12 |" in md
    data = json.loads(report.results_json.read_text())
    assert data["models"]["A"]["headline"]["qr_best"] == 100.0
    assert data["training"]["B"]["history"][0]["entropy_q"] == 0.3


def test_report_errors(tmp_path):
    with pytest.raises(DmpoError, match="no evaluation results"):
        write_report(tmp_path, {})
    mixed = {"k2": results(k=2)["A"], "k4": results(k=4)["A"]}
    with pytest.raises(DmpoError, match="different k"):
        comparison_markdown(mixed)
