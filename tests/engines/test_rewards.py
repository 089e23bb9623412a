"""The NP-Bench reward as a TRL reward function, the reward guard, and the prompt dataset."""

from __future__ import annotations

import json
import time

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

from dmpo.engines.trl.rewards import (  # noqa: E402
    RewardTimeout,
    call_with_timeout,
    make_npbench_reward,
    mean_distinct_per_group,
    safe_reward,
)


@pytest.fixture(scope="module")
def knapsack():
    task = npbench.get_task("knapsack")
    return task, task.generate(0, "tiny")


def _metrics():
    logged: dict[str, list[float]] = {}
    return logged, lambda name, value: logged.setdefault(name, []).append(value)


def _all_valid_answers(task, instance):
    """Every feasible item set of a tiny knapsack instance, with its QR."""
    items = instance.question["items"]
    n = len(items)
    out = []
    for bits in range(1 << n):
        chosen = [i for i in range(n) if bits >> i & 1]
        verdict = task.evaluate(instance, f"Answer: {chosen}")
        if verdict.valid:
            out.append((chosen, verdict.quality_ratio))
    return out


def test_npbench_reward_on_hand_made_completions(knapsack):
    task, instance = knapsack
    valid = _all_valid_answers(task, instance)
    optimal = next(a for a, qr in valid if qr == 1.0)
    worse, worse_qr = next((a, qr) for a, qr in valid if 0 < qr < 1)
    completions = [
        f"think...\nAnswer: {optimal}",
        f"Answer: {worse}",
        f"Answer: {list(range(len(instance.question['items'])))}",  # everything: over capacity
        "no answer line at all",
    ]
    logged, log_metric = _metrics()
    reward = make_npbench_reward()
    rewards = reward(completions=completions, instance=[instance.to_json()] * 4, log_metric=log_metric)
    assert rewards == pytest.approx([1.1, 0.1 + worse_qr, 0.1, 0.0])
    assert logged["npbench/valid_frac"] == [0.5]
    assert logged["npbench/well_formed_frac"] == [0.75]
    assert logged["npbench/quality_ratio"] == [pytest.approx((1.0 + worse_qr) / 4)]
    assert logged["npbench/distinct_valid_answers"] == [2.0]
    assert logged["npbench/failed_frac"] == [0.0]
    assert reward.calls == 4 and reward.failures == 0


def test_distinct_answers_are_counted_per_group_and_canonically(knapsack):
    task, instance = knapsack
    other = task.generate(1, "tiny")
    (a, _), (b, _) = _all_valid_answers(task, instance)[1:3]
    other_answer = next(x for x, _ in _all_valid_answers(task, other) if x)
    completions = [
        f"Answer: {a}",
        f"Answer: {list(reversed(a))}",  # the same item set written in another order
        f"Answer: {b}",
        "Answer: [99]",
        f"Answer: {other_answer}",
        f"Answer: {other_answer}",
    ]
    instances = [instance.to_json()] * 4 + [other.to_json()] * 2
    logged, log_metric = _metrics()
    make_npbench_reward()(completions=completions, instance=instances, log_metric=log_metric)
    expected_first = 2 if task.canonical(a) == task.canonical(list(reversed(a))) else 3
    assert logged["npbench/distinct_valid_answers"] == [(expected_first + 1) / 2]


def test_conversational_completions_are_scored(knapsack):
    _, instance = knapsack
    message = [{"role": "assistant", "content": f"Answer: {json.loads(instance.solution)}"}]
    assert make_npbench_reward()(completions=[message], instance=[instance.to_json()]) == [pytest.approx(1.1)]


def test_malformed_instance_is_a_data_error():
    with pytest.raises(DmpoError):
        make_npbench_reward()(completions=["Answer: [1]"], instance=["{not json"])
    with pytest.raises(DmpoError):
        make_npbench_reward()(completions=["Answer: [1]", "x"], instance=['{"task": "knapsack"}'])


def test_mean_distinct_per_group():
    assert mean_distinct_per_group(["a", "a", "b", "b"], [1, 1, None, 2]) == 1.0
    assert mean_distinct_per_group(["a", "a", "a"], [None, None, None]) == 0.0
    assert mean_distinct_per_group([], []) == 0.0


def test_call_with_timeout_interrupts_slow_python_code():
    start = time.perf_counter()
    with pytest.raises(RewardTimeout):
        call_with_timeout(time.sleep, 0.05, 5)
    assert time.perf_counter() - start < 2
    assert call_with_timeout(sum, 1.0, [1, 2]) == 3
    assert call_with_timeout(sum, None, [1, 2]) == 3


def test_call_with_timeout_off_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(call_with_timeout, time.sleep, 0.05, 5)
        with pytest.raises(RewardTimeout):
            future.result(timeout=10)
        assert pool.submit(call_with_timeout, sum, 1.0, [1, 2]).result() == 3


def _flaky(completions, **kwargs):
    out = []
    for text in completions:
        if "boom" in text:
            raise RuntimeError("reward crashed")
        if "slow" in text:
            time.sleep(5)
        out.append(float(len(text)))
    return out


def test_safe_reward_costs_only_the_failing_completions():
    guarded = safe_reward(_flaky, timeout_s=0.2)
    logged, log_metric = _metrics()
    completions = ["ab", "boom", "abc", "slow", "a"]
    rewards = guarded(prompts=["p"] * 5, completions=completions, task=["t"] * 5, log_metric=log_metric)
    assert rewards == [2.0, 0.0, 3.0, 0.0, 1.0]
    assert guarded.failures == 2 and guarded.calls == 5
    assert logged == {"reward_failures/_flaky": [0.4]}
    assert guarded.__name__ == "_flaky"
    assert guarded(completions=["ok"], log_metric=log_metric) == [2.0]
    assert logged["reward_failures/_flaky"][-1] == 0.0


def test_safe_reward_lets_configuration_errors_through():
    def misconfigured(completions, **kwargs):
        raise DmpoError("missing column")

    with pytest.raises(DmpoError, match="missing column"):
        safe_reward(misconfigured)(completions=["a"])


def test_safe_reward_rejects_a_wrong_number_of_rewards_item_by_item():
    guarded = safe_reward(lambda completions, **kw: [1.0], name="short")
    assert guarded(completions=["a", "b"]) == [1.0, 1.0]
    assert guarded.failures == 0


def test_npbench_dataset_columns_and_determinism():
    from dmpo.engines.trl.data import build_npbench_dataset

    first = build_npbench_dataset(["knapsack"], count=3, seed=5)
    again = build_npbench_dataset("knapsack", count=3, seed=5)
    assert first.column_names == ["prompt", "instance", "task"]
    assert len(first) == 3 and first.to_dict() == again.to_dict()
    task = npbench.get_task("knapsack")
    inst = npbench.Instance.from_dict(json.loads(first[0]["instance"]))
    assert inst.seed == 5 and first[0]["task"] == "knapsack"
    assert first[0]["prompt"] == task.prompt(inst, style="compact")
    assert task.evaluate(inst, f"Answer: {inst.solution}").quality_ratio == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"tasks": "knapsack", "count": 0}, "count"), ({"tasks": [], "count": 1}, "no tasks"), ({"tasks": "nope"}, "unknown task")],
)
def test_npbench_dataset_errors(kwargs, match):
    from dmpo.engines.trl.data import build_npbench_dataset

    with pytest.raises(DmpoError, match=match):
        build_npbench_dataset(**kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "high", [1.0]])
def test_a_non_finite_or_non_numeric_reward_is_a_failure_of_that_completion(bad):
    def reward(completions, **kwargs):
        return [1.0, bad, None]

    guarded = safe_reward(reward, timeout_s=None)
    logged = {}
    rewards = guarded(completions=["a", "b", "c"], log_metric=lambda key, value: logged.update({key: value}))
    assert rewards == [1.0, 0.0, None]
    assert guarded.failures == 1 and logged["reward_failures/reward"] == pytest.approx(1 / 3)
