"""vertex_cover: strict checks, format tolerance, a hand-made instance."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("vertex_cover")
# A star on centre 0 with leaves 1..3, plus the edge 2-3: {0, 2} or {0, 3} cover it.
GRAPH = {"0": [1, 2, 3], "1": [0], "2": [0, 3], "3": [0, 2]}
INSTANCE = npbench.Instance("vertex_cover", "unknown", None, GRAPH, 2, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(GRAPH, 10.0)
    assert (solution.value, solution.proved) == (2, True)
    assert TASK.brute_force(GRAPH) == 2
    verdict = TASK.evaluate(INSTANCE, "Answer: [2, 0]")
    assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 2, 1.0)
    everything = TASK.evaluate(INSTANCE, "Answer: [0, 1, 2, 3]")
    assert everything.valid and everything.quality_ratio == pytest.approx(0.5)


@pytest.mark.parametrize("answer, reason", [
    ("[0]", "edge 2-3 is not covered"),
    ("[2, 3]", "edge 0-1 is not covered"),
    ("[]", "not covered"),
    ("[0, 0, 2]", "repeated"),
    ("[0, 4]", "out of range"),
])
def test_infeasible_covers(answer, reason):
    verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


@pytest.mark.parametrize("completion", [
    "Answer: 0 -> 2", "Answer: (0,2)", "Answer:0,2", "Answer: \\boxed{[2, 0]}", "**Answer:** ['0', '2'].",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 2, verdict.reason
    assert verdict.answer == (0, 2)


def test_floats_and_expressions_are_not_answers():
    for text in ("Answer: [0.0, 2.0]", "Answer: [0]+[2]", "Answer: [True, 2]"):
        assert not TASK.evaluate(INSTANCE, text).valid
