"""max_independent_set: the §5 rows (repeats, expressions, integer adjacency lists), format
tolerance, a hand-made instance."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("max_independent_set")
# Path 0-1-2-3 plus an isolated vertex 4, in the public dict-of-dicts layout.
PATH = {"0": {"1": 1}, "1": {"0": 1, "2": 1}, "2": {"1": 1, "3": 1}, "3": {"2": 1}, "4": {}}
INSTANCE = npbench.Instance("max_independent_set", "unknown", None, PATH, 3, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(PATH, 10.0)
    assert (solution.value, solution.proved) == (3, True)
    assert TASK.brute_force(PATH) == 3
    for answer in ("[0, 2, 4]", "[0, 3, 4]", "[1, 3, 4]"):
        verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
        assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 3, 1.0)
    assert TASK.evaluate(INSTANCE, "Answer: [4]").quality_ratio == pytest.approx(1 / 3)


def test_repeated_vertices_are_invalid():
    verdict = TASK.evaluate(INSTANCE, "Answer: [0,0,0,3,3]")
    assert not verdict.valid and verdict.quality_ratio == 0 and "repeated" in verdict.reason


def test_an_expression_is_never_evaluated():
    verdict = TASK.evaluate(INSTANCE, "Answer: [0]+[3,3]")
    assert not verdict.valid and not verdict.well_formed and verdict.quality_ratio == 0


@pytest.mark.parametrize("question", [
    {"0": [1], "1": [0, 2], "2": [1, 3], "3": [2], "4": []},  # public vision layout
    {0: [1], 1: [0, 2], 2: [1, 3], 3: [2], 4: []},
    {0: {1: 1}, 1: {0: 1, 2: 1}, 2: {1: 1, 3: 1}, 3: {2: 1}, 4: {}},
    {"0": [1], "1": [2], "2": [3], "3": [], "4": []},  # each edge listed on one side only
])
def test_all_vertices_are_invalid_whatever_the_layout(question):
    verdict = TASK.evaluate(npbench.Instance("max_independent_set", "unknown", None, question, 3, True),
                            "Answer: [0, 1, 2, 3, 4]")
    assert not verdict.valid and "adjacent" in verdict.reason
    assert TASK.solve(question, 10.0).value == 3


def test_zero_weight_is_no_edge():
    question = {"0": {"1": 0}, "1": {"0": 0}}
    assert TASK.evaluate(question, "Answer: [0, 1]").valid


@pytest.mark.parametrize("answer, reason", [
    ("[0, 1]", "vertices 0 and 1 are adjacent"),
    ("[0, 5]", "out of range"),
    ("[0, -4]", "out of range"),
])
def test_infeasible_sets(answer, reason):
    verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


@pytest.mark.parametrize("completion", [
    "Answer: 0 -> 2 -> 4", "Answer: (0,2,4)", "Answer:0,2,4", "Answer: \\boxed{[4, 2, 0]}",
    "**Answer:** ['0', '2', '4'].", "Answer: {0, 2, 4}", "answer: [0, 2, 4] — done",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 3, verdict.reason
    assert verdict.answer == (0, 2, 4)


def test_generated_question_uses_the_public_layout():
    question = TASK.generate(seed=0, difficulty="easy").question
    assert all(isinstance(row, dict) and all(w == 1 for w in row.values()) for row in question.values())
    assert all(str(v) in question[str(u)] for u in question for v in question[u])
