"""set_cover: the public validators' flaw (docs/npbench.md), Impossible, format tolerance, a hand-made optimum, generator."""

from __future__ import annotations

import pytest

from dmpo.npbench.base import Instance
from dmpo.npbench.tasks.set_cover import TASK
from tests.npbench.reference import set_cover as reference

# Optimum 2 ({0, 1, 2} and {3, 4, 5}); the three pairs {0,3}, {1,4}, {2,5} also cover U.
HAND = {"U": [0, 1, 2, 3, 4, 5], "S": {"0": [0, 1, 2], "1": [3, 4, 5], "2": [0, 3], "3": [1, 4], "4": [2, 5]}}
# Nothing holds 4.
UNCOVERABLE = {"U": [0, 1, 2, 3, 4], "S": {"0": [0, 1], "1": [2, 3], "2": [1, 3]}}


def instance(question: dict) -> Instance:
    solution = TASK.solve(question, time_limit=10)
    assert solution.proved
    return Instance("set_cover", "hand", None, question, solution.value, True, TASK.format_answer(solution.answer))


def judge(inst: Instance, text: str):
    verdict = TASK.evaluate(inst, text)
    parsed = TASK.parse_answer(text.split("Answer:")[-1].strip(" *`.\n"))
    if verdict.well_formed and parsed is not None:
        assert reference.feasible(inst.question, parsed)[0] == verdict.valid
    return verdict


def test_subsets_with_elements_outside_u_still_cover():
    question = {"U": [0, 1, 2, 3], "S": {"0": [0, 1, 7, 9], "1": [2, 3, 8], "2": [0, 2]}}
    inst = instance(question)
    assert inst.optimum == 2 == TASK.brute_force(question)
    verdict = judge(inst, "Answer: [0, 1]")
    assert verdict.valid and verdict.value == 2 and verdict.quality_ratio == 1.0
    assert not judge(inst, "Answer: [0, 2]").valid  # 3 uncovered


def test_hand_made_instance():
    inst = instance(HAND)
    assert inst.optimum == 2 == TASK.brute_force(HAND)
    assert judge(inst, "Answer: [1, 0]").quality_ratio == 1.0
    verdict = judge(inst, "Answer: [2, 3, 4]")
    assert verdict.valid and verdict.value == 3 and verdict.quality_ratio == pytest.approx(2 / 3)
    assert not judge(inst, "Answer: [2, 3]").valid  # 2 and 5 uncovered


@pytest.mark.parametrize("answer", ["[0, 0, 1]", "[0, 5]", "[-1, 0, 1]", "[0.0, 1]", "[True, 1]", "[0]+[1]", "[]"])
def test_invalid_answers(answer):
    assert not judge(instance(HAND), f"Answer: {answer}").valid


@pytest.mark.parametrize("text", [
    "Answer: Impossible", "Answer: impossible", "**Answer:** IMPOSSIBLE.", "Answer: `Impossible`",
    "Answer: \\boxed{Impossible}", "Answer: 'Impossible'",
])
def test_impossible_is_valid_only_when_u_cannot_be_covered(text):
    inst = instance(UNCOVERABLE)
    assert inst.optimum == 0 and inst.solution == "Impossible" and TASK.brute_force(UNCOVERABLE) == 0
    verdict = judge(inst, text)
    assert verdict.valid and verdict.value == 0 and verdict.quality_ratio == 1.0 and verdict.reward == 1.1
    assert verdict.answer == "Impossible"
    wrong = judge(instance(HAND), text)
    assert wrong.well_formed and not wrong.valid


def test_no_list_is_valid_when_u_cannot_be_covered():
    inst = instance(UNCOVERABLE)
    assert not judge(inst, "Answer: [0, 1, 2]").valid
    assert not judge(inst, "Answer: Impossible to say").well_formed


@pytest.mark.parametrize("text", [
    "Answer: [0, 1]", "Answer: [0,1]", "Answer: (0, 1)", "Answer: {0, 1}", "Answer: 0 -> 1", "Answer: 0, 1",
    "Answer: ['0', '1']", "Answer: \\boxed{[0, 1]}", "**Answer:**\n`[1, 0]`.",
    "First guess. Answer: [2]\nAnswer: [0, 1]",
])
def test_format_tolerance(text):
    verdict = judge(instance(HAND), text)
    assert verdict.valid and verdict.value == 2
    assert verdict.answer == (0, 1)


@pytest.mark.parametrize("difficulty", ["tiny", "easy", "medium", "hard", "bench"])
def test_generated_instances_are_coverable_and_sized_per_spec(difficulty):
    (u_lo, u_hi), (s_lo, s_hi) = TASK.SIZES[difficulty]
    for seed in range(10):
        inst = TASK.generate(seed, difficulty)
        question = inst.question
        assert u_lo <= len(question["U"]) <= u_hi and s_lo <= len(question["S"]) <= s_hi
        assert set(question["U"]) <= {e for subset in question["S"].values() for e in subset}
        assert inst.solution != "Impossible" and inst.proved
        assert judge(inst, f"Answer: {inst.solution}").quality_ratio == 1.0
