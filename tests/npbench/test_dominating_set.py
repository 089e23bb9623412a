"""dominating_set: strict checks, format tolerance, a hand-made instance."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("dominating_set")
# Path 0-1-2-3-4-5 and an isolated vertex 6: {1, 4, 6} dominates, and no two vertices do.
GRAPH = {"0": [1], "1": [0, 2], "2": [1, 3], "3": [2, 4], "4": [3, 5], "5": [4], "6": []}
INSTANCE = npbench.Instance("dominating_set", "unknown", None, GRAPH, 3, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(GRAPH, 10.0)
    assert (solution.value, solution.proved) == (3, True)
    assert TASK.brute_force(GRAPH) == 3
    verdict = TASK.evaluate(INSTANCE, "Answer: [6, 4, 1]")
    assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 3, 1.0)
    worse = TASK.evaluate(INSTANCE, "Answer: [0, 2, 4, 6]")
    assert worse.valid and worse.quality_ratio == pytest.approx(0.75)


@pytest.mark.parametrize("answer, reason", [
    ("[1, 4]", "vertex 6 is not dominated"),
    ("[2, 5, 6]", "vertex 0 is not dominated"),
    ("[]", "not dominated"),
    ("[1, 4, 6, 6]", "repeated"),
    ("[1, 4, 7]", "out of range"),
])
def test_infeasible_sets(answer, reason):
    verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


@pytest.mark.parametrize("completion", [
    "Answer: 1 -> 4 -> 6", "Answer: (1,4,6)", "Answer:1,4,6", "Answer: \\boxed{[6, 4, 1]}",
    "**Answer:** ['1', '4', '6'].",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 3, verdict.reason
    assert verdict.answer == (1, 4, 6)
