"""The comparison report: table values, training summaries, plots, errors, and the summaries of
repeated runs (mean ± std over seeds, paired differences, curves with a band over seeds)."""

from __future__ import annotations

import json
import math

import pytest

from dmpo.errors import DmpoError
from dmpo.evaluation import evaluate_completions
from dmpo.evaluation.plots import (
    is_history,
    mean_band,
    moving_average,
    plot_final_bars,
    plot_training_curves,
    series,
)
from dmpo.evaluation.report import (
    aggregate_seeds,
    comparison_columns,
    comparison_markdown,
    comparison_text,
    format_difference,
    format_stat,
    markdown_table,
    metric_digits,
    paired_differences,
    text_table,
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


def record(qr: float, seed: int, knapsack_qr: float | None = None) -> dict:
    """An evaluation as stored in a JSON file: headline and per-task summary."""
    tasks = {"vertex_cover": {"qr": qr}}
    if knapsack_qr is not None:
        tasks["knapsack"] = {"qr": knapsack_qr}
    return {"seed": seed, "headline": {"qr": qr}, "tasks": tasks}


def test_aggregate_seeds_mean_std_overall_and_per_task():
    agg = aggregate_seeds([record(10.0, 0, 1.0), record(20.0, 1), record(30.0, 2, 3.0)], ["qr"])
    assert agg["overall"]["qr"] == {"mean": 20.0, "std": pytest.approx(10.0), "values": [10.0, 20.0, 30.0]}
    assert agg["tasks"]["vertex_cover"]["qr"] == {"mean": 20.0, "std": pytest.approx(10.0)}
    assert agg["tasks"]["knapsack"]["qr"] == {"mean": 2.0, "std": pytest.approx(2 ** 0.5)}  # the two that have it
    single = aggregate_seeds([record(10.0, 0)], ["qr"])
    assert single["overall"]["qr"]["std"] is None  # one seed: no spread claimed
    # EvalResults aggregate the same way as their records.
    res = results(k=2)
    from_results = aggregate_seeds([res["A"], res["B"]], ["qr", "qr_best"])
    assert from_results["overall"]["qr"]["mean"] == pytest.approx((100.0 + 12.5) / 2)
    assert set(from_results["tasks"]) == {"knapsack"}
    with pytest.raises(DmpoError, match="no evaluation results"):
        aggregate_seeds([], ["qr"])


def test_paired_differences_over_shared_seeds():
    runs = {0: record(12.0, 0), 1: record(18.0, 1), 2: record(30.0, 2)}
    base = {0: record(10.0, 0), 1: record(20.0, 1)}
    diff = paired_differences(runs, base, ["qr"])
    assert diff["seeds"] == [0, 1]
    assert diff["qr"] == {"mean": 0.0, "std": pytest.approx(8 ** 0.5), "wins": 1, "n": 2}
    assert paired_differences({5: record(1.0, 5)}, base, ["qr"]) is None
    assert format_difference(diff["qr"]) == "+0.0 ± 2.8 (1/2)"
    assert format_difference({"mean": -1.234, "std": None, "wins": 0, "n": 1}, 2) == "-1.23 (0/1)"
    assert format_stat({"mean": 3.14159, "std": 0.5}, metric_digits("distinct_valid")) == "3.14 ± 0.50"
    assert format_stat({"mean": 3.14159, "std": None}, metric_digits("qr")) == "3.1"


def test_tables_and_seed_columns():
    assert markdown_table(["a", "b", "c"], [["x", "1", "2"]], text_columns=2).splitlines() == [
        "| a | b | c |", "|---|---|---:|", "| x | 1 | 2 |"]
    text = text_table(["objective", "seeds"], [["grpo", "3"]]).splitlines()
    assert text[0].startswith("objective") and text[1].split() == ["grpo", "3"]
    assert [label for _, label in comparison_columns(16, style="seeds")] == [
        "QR mean", "QR best@16", "success rate", "success@16", "distinct valid@16", "distinct optimal@16",
        "pass@16"]
    assert ("pass@1", "pass@1") in comparison_columns(16)
    with pytest.raises(DmpoError, match="table style"):
        comparison_columns(16, style="wide")


def test_mean_band_and_plots_over_seeds(tmp_path):
    seeds = [history([1.0, 2.0, 3.0]), history([3.0, 4.0, 5.0])]
    steps, means, stds = mean_band(seeds, "reward", 1)
    assert steps == [1, 2, 3] and means == [2.0, 3.0, 4.0] and stds == [1.0, 1.0, 1.0]
    steps, means, _ = mean_band([history([1.0, 2.0, 3.0]), history([3.0, 5.0])], "reward", 2)
    assert steps == [1, 2] and means == [2.0, 2.75]  # steps every seed logged; moving averages first
    assert mean_band(seeds, "missing", 1) == ([], [], [])
    assert is_history(seeds[0]) and not is_history(seeds)
    curves = plot_training_curves({"GRPO": seeds, "DMPO": history([0.5, 0.6])}, tmp_path / "c.png",
                                  smooth=2, colors={"GRPO": "C3"}, title="over seeds", dpi=60)
    bars = plot_final_bars({"A": {"qr": 50.0, "distinct_valid": 2.0}, "B": {"qr": 40.0, "distinct_valid": 3.0}},
                           tmp_path / "b.png", percent=[("qr", "QR")], counts=[("distinct_valid", "distinct")],
                           errors={"A": {"qr": 5.0, "distinct_valid": None}}, dpi=60)
    for path in (curves, bars):
        assert path.read_bytes().startswith(PNG_MAGIC)
