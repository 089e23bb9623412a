"""make_source_reward: the sources' rewards for TRL, with the NP-Bench reward's failure policy (a
judgement that raises, hangs or returns a non-finite reward costs that completion only)."""

from __future__ import annotations

import math
import time

import pytest

pytest.importorskip("trl")
pytest.importorskip("math_verify")

from dmpo.engines.trl import make_source_reward
from dmpo.errors import DmpoError
from dmpo.evaluation.sources import score_source_completions
from dmpo.npbench.source import NPBenchSource
from dmpo.sources import MathSource, Verdict


class Flaky:
    """A math source whose judgement raises, hangs, or returns NaN on cue."""

    def __init__(self):
        self.inner = MathSource("math:synthetic")
        self.name, self.kind, self.generated = "flaky", "math", True
        self.skipped = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def score(self, item, completion):
        if completion == "RAISE":
            raise RuntimeError("scorer crashed")
        if completion == "HANG":
            time.sleep(30)
        if completion == "NAN":
            return Verdict(True, True, math.nan)
        if completion == "DATA":
            raise DmpoError("a broken item")
        return self.inner.score(item, completion)


def test_rewards_and_metrics():
    source = MathSource("math:synthetic")
    reward = make_source_reward([source])
    item = source.items(start=0, count=1)[0]
    completions = [f"Answer: {item.answer}", f"\\boxed{{{item.answer}}}", "Answer: 123456", "nothing"]
    logged = {}
    rewards = reward(completions=completions, item=[item.to_json()] * 4, source=[source.name] * 4,
                     log_metric=logged.__setitem__)
    assert rewards == pytest.approx([1.1, 1.1, 0.1, 0.0])
    assert logged["source/correct_frac"] == 0.5 and logged["source/well_formed_frac"] == 0.75
    assert logged["source/distinct_correct_answers"] == 1 and logged["source/failed_frac"] == 0


def test_conversational_completions_are_read():
    source = MathSource("math:synthetic")
    item = source.items(start=0, count=1)[0]
    rewards = make_source_reward([source])(
        completions=[[{"role": "assistant", "content": f"Answer: {item.answer}"}]],
        item=[item.to_json()], source=[source.name])
    assert rewards == pytest.approx([1.1])


def test_a_raise_a_hang_or_a_nan_costs_that_completion_only():
    source = Flaky()
    reward = make_source_reward([source], timeout_s=0.3)
    item = source.items(start=0, count=1)[0]
    completions = [f"Answer: {item.answer}", "RAISE", "HANG", "NAN", f"Answer: {item.answer}"]
    logged = {}
    started = time.perf_counter()
    rewards = reward(completions=completions, item=[item.to_json()] * 5, source=["flaky"] * 5,
                     log_metric=logged.__setitem__)
    assert time.perf_counter() - started < 5
    assert rewards == pytest.approx([1.1, 0.0, 0.0, 0.0, 1.1])
    assert reward.failures == 3 and reward.calls == 5 and logged["source/failed_frac"] == pytest.approx(0.6)


def test_a_data_error_stops_the_run():
    source = Flaky()
    item = source.items(start=0, count=1)[0]
    with pytest.raises(DmpoError, match="a broken item"):
        make_source_reward([source])(completions=["DATA"], item=[item.to_json()], source=["flaky"])
    with pytest.raises(DmpoError, match="does not have"):
        make_source_reward([source])(completions=["x"], item=[item.to_json()], source=["other"])


def test_npbench_is_a_source_too():
    source = NPBenchSource("knapsack")
    inst = source.items(start=0, count=1)[0]
    rewards = make_source_reward([source])(completions=[f"Answer: {inst.solution}", "Answer: [99]"],
                                           item=[inst.to_json()] * 2, source=["knapsack"] * 2)
    assert rewards == pytest.approx([1.1, 0.1])


def test_evaluation_counts_failed_judgements():
    source = Flaky()
    item = source.items(start=0, count=1)[0]
    result = score_source_completions([(source, item)], [[f"Answer: {item.answer}", "RAISE", "HANG"]],
                                      [source], timeout_s=0.3)
    row = result.summary["sources"]["flaky"]
    assert row["failed"] == 2 and row["accuracy"] == pytest.approx(100 / 3) and row["pass@3"] == 100
