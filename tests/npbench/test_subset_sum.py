"""subset_sum: the public validators' flaw (docs/npbench.md), format tolerance, a hand-made optimum, the generator."""

from __future__ import annotations

import pytest

from dmpo.errors import DmpoError
from dmpo.npbench.base import Instance
from dmpo.npbench.tasks.subset_sum import TASK
from tests.npbench.reference import subset_sum as reference

# Sums of 10: {0, 1, 3} = 5 + 3 + 2 (three numbers, the optimum) and {2, 4} = 4 + 6.
HAND = {"target": 10, "numbers": {"0": 5, "1": 3, "2": 4, "3": 2, "4": 6}}


def hand() -> Instance:
    solution = TASK.solve(HAND, time_limit=10)
    return Instance("subset_sum", "hand", None, HAND, solution.value, solution.proved,
                    TASK.format_answer(solution.answer))


def judge(text: str):
    verdict = TASK.evaluate(hand(), text)
    parsed = TASK.parse_answer(text.split("Answer:")[-1].strip(" *`.\n"))
    if verdict.well_formed and parsed is not None:
        assert reference.feasible(HAND, parsed)[0] == verdict.valid
    return verdict


def test_hand_made_instance():
    inst = hand()
    assert inst.proved and inst.optimum == 3 == TASK.brute_force(HAND)
    assert inst.solution == "[0, 1, 3]"
    assert judge("Answer: [4, 2]").quality_ratio == pytest.approx(2 / 3)


@pytest.mark.parametrize("answer", [
    "[1, 1, 2]",  # public flaw (docs/npbench.md): one index repeated (3 + 3 + 4 = 10)
    "[3, 3, 3, 3, 3]",  # 2 × 5 = 10
    "[0, 1]",  # sums to 8
    "[0, 1, 3, 5]",  # no index 5
    "[0, 1, 3, -1]",
    "[0.0, 1, 3]",
    "[True, 1, 3]",
    "[]",
])
def test_invalid_answers(answer):
    verdict = judge(f"Answer: {answer}")
    assert not verdict.valid and verdict.quality_ratio == 0.0


@pytest.mark.parametrize("text", [
    "Answer: [0, 1, 3]", "Answer: [0,1,3]", "Answer: (3, 0, 1)", "Answer: {0, 1, 3}", "Answer: 0 -> 1 -> 3",
    "Answer: ['0', \"1\", '3']", "Answer: \\boxed{[0, 1, 3]}", "**Answer:**\n`[0, 1, 3]`.",
    "Try Answer: [2, 4]\nAnswer: [0, 1, 3]",
])
def test_format_tolerance(text):
    verdict = judge(text)
    assert verdict.valid and verdict.value == 3 and verdict.quality_ratio == 1.0
    assert verdict.answer == (0, 1, 3)


def test_unreachable_target_is_a_clear_error():
    with pytest.raises(DmpoError, match="no subset"):
        TASK.solve({"target": 1, "numbers": {"0": 2, "1": 3}}, time_limit=10)


def test_zero_target_is_met_by_the_empty_set():
    question = {"target": 0, "numbers": {"0": 2}}
    assert TASK.solve(question, time_limit=10).value == 0
    assert TASK.evaluate(question, "Answer: []").valid


@pytest.mark.parametrize("difficulty", ["tiny", "easy", "medium", "hard", "bench"])
def test_generated_instances_follow_the_spec_sizes(difficulty):
    (n_lo, n_hi), (k_lo, _), largest, _ = TASK.SIZES[difficulty]
    for seed in range(10):
        inst = TASK.generate(seed, difficulty)
        numbers = list(inst.question["numbers"].values())
        assert n_lo <= len(numbers) <= n_hi and all(1 <= v <= largest for v in numbers)
        assert inst.proved and inst.optimum >= min(k_lo, len(numbers))  # a planted solution
        assert TASK.evaluate(inst, f"Answer: {inst.solution}").quality_ratio == 1.0
