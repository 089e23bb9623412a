"""The feasible-answer explorer returns only valid, distinct answers with honest QR."""

import random

import pytest

from dmpo import npbench
from dmpo.npbench.explore import explore_answers


@pytest.mark.parametrize("name", npbench.list_tasks())
def test_explored_answers_are_valid_distinct_and_scored(name):
    task = npbench.get_task(name)
    spread = 0
    for seed in range(3):
        inst = task.generate(seed=seed, difficulty="tiny")
        found = explore_answers(task, inst, rng=random.Random(seed), steps=300)
        assert found, "the witness itself is always found"
        assert found[0].quality_ratio == pytest.approx(1.0)
        assert len({a.canonical for a in found}) == len(found)
        for answer in found:
            verdict = task.evaluate(inst, f"Answer: {answer.text}")
            assert verdict.valid
            assert verdict.quality_ratio == pytest.approx(answer.quality_ratio)
            assert verdict.answer == answer.canonical
        spread += any(a.quality_ratio < 1 for a in found) or len(found) > 1
    assert spread >= 1, f"{name}: the explorer found nothing beyond the witness on 3 instances"


def test_deterministic_for_a_seed():
    task = npbench.get_task("knapsack")
    inst = task.generate(seed=2, difficulty="tiny")
    a = explore_answers(task, inst, rng=random.Random(5))
    b = explore_answers(task, inst, rng=random.Random(5))
    assert a == b
