"""Scoring maths on hand-made verdicts with known answers."""

from math import comb

import pytest

from dmpo.errors import DmpoError
from dmpo.npbench import Instance, Verdict, quality_ratio
from dmpo.npbench.scoring import (
    expected_best_of,
    format_table,
    pass_at_k,
    qr_curve,
    score_item,
    summarize,
)


def verdict(qr: float, answer=None, valid: bool | None = None) -> Verdict:
    valid = qr > 0 if valid is None else valid
    return Verdict(True, valid, 1.0 if valid else None, qr, "", answer)


def inst(task="knapsack", optimum=10.0, id="x") -> Instance:
    return Instance(task, "tiny", 0, {}, optimum, True, None, id)


def test_quality_ratio_semantics():
    assert quality_ratio(5, 10, "max") == 0.5
    assert quality_ratio(10, 5, "min") == 0.5
    assert quality_ratio(0, 0, "max") == 1.0  # 0/0 = 1
    assert quality_ratio(0, 0, "min") == 1.0
    assert quality_ratio(0, 3, "min") == 0.0  # guarded, not a division by zero
    assert quality_ratio(12, 10, "max") == pytest.approx(1.2)  # heuristic reference
    assert quality_ratio(12, 10, "max", cap=True) == 1.0
    assert quality_ratio(None, 10, "max") == 0.0
    assert Verdict(True, True, 4, 0.4).reward == pytest.approx(0.5)
    assert Verdict(True, False, None, 0.0).reward == pytest.approx(0.1)
    assert Verdict(False, False, None, 0.0).reward == 0.0


def test_pass_at_k_matches_definition():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - comb(3, 2) / comb(4, 2))
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(DmpoError):
        pass_at_k(2, 1, 3)


def test_expected_best_of_by_enumeration():
    from itertools import combinations

    values = [0.2, 0.9, 0.0, 0.5, 0.5]
    for j in range(1, 6):
        subsets = list(combinations(values, j))
        brute = sum(max(s) for s in subsets) / len(subsets)
        assert expected_best_of(values, j) == pytest.approx(brute)


def test_item_score_counts_distinct_answers():
    verdicts = [
        verdict(1.0, (0, 1)), verdict(1.0, (0, 1)), verdict(1.0, (2, 3)),
        verdict(0.5, (4,)), verdict(0.0, None, valid=False), verdict(0.0, (5,), valid=True),
    ]
    s = score_item(inst(), verdicts)
    assert s.k == 6
    assert s.distinct_valid == 4  # (0,1), (2,3), (4,), (5,)
    assert s.distinct_optimal == 2
    assert s.num_optimal == 3
    assert s.valid_rate == pytest.approx(5 / 6)
    assert s.qr_mean == pytest.approx(3.5 / 6)
    assert s.qr_best == 1.0 and s.success
    assert s.qr_at[0] == pytest.approx(s.qr_mean) and s.qr_at[-1] == 1.0
    assert s.pass_at(1) == pytest.approx(0.5)


def test_summary_categories_are_unweighted_means():
    items = [
        score_item(inst("knapsack", id="a"), [verdict(1.0, (1,))]),
        score_item(inst("knapsack", id="b"), [verdict(0.0, None, valid=False)]),
        score_item(inst("subset_sum", id="c"), [verdict(0.5, (1,))]),
        score_item(inst("tsp", id="d"), [verdict(0.8, (1,))]),
    ]
    summary = summarize(items)
    assert summary["tasks"]["knapsack"]["qr"] == pytest.approx(50.0)
    assert summary["tasks"]["knapsack"]["sr"] == pytest.approx(50.0)
    # selection = mean(knapsack 50, subset_sum 50); planning = tsp 80.
    assert summary["categories"]["selection"]["qr"] == pytest.approx(50.0)
    assert summary["categories"]["planning"]["qr"] == pytest.approx(80.0)
    assert summary["overall"]["qr"] == pytest.approx(65.0)
    vision = summarize(items, protocol="vision")
    assert set(vision["categories"]) == {"path"}
    assert vision["tasks_outside_protocol"] == ["knapsack", "subset_sum"]
    table = format_table(summary)
    assert "OVERALL" in table and "[selection]" in table
    assert qr_curve(items) == [pytest.approx(57.5)]
    with pytest.raises(DmpoError, match="protocol"):
        summarize(items, protocol="audio")


def test_item_without_samples_is_an_error():
    with pytest.raises(DmpoError, match="no sampled answers"):
        score_item(inst(), [])
