"""max_clique: the §5 rows (quoted/float ids, last Answer wins), format tolerance, a hand-made
instance."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("max_clique")
# K4 on 0..3, a pendant 4 on 3, and a triangle 3-4-5.
GRAPH = {"0": [1, 2, 3], "1": [0, 2, 3], "2": [0, 1, 3], "3": [0, 1, 2, 4, 5], "4": [3, 5], "5": [3, 4]}
INSTANCE = npbench.Instance("max_clique", "unknown", None, GRAPH, 4, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(GRAPH, 10.0)
    assert solution.value == 4 and solution.proved and sorted(solution.answer) == [0, 1, 2, 3]
    assert TASK.brute_force(GRAPH) == 4
    verdict = TASK.evaluate(INSTANCE, "Answer: [3, 1, 0, 2]")
    assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 4, 1.0)
    triangle = TASK.evaluate(INSTANCE, "Answer: [3, 4, 5]")
    assert triangle.valid and triangle.quality_ratio == pytest.approx(0.75)


def test_quoted_id_duplicating_an_int_is_invalid():
    verdict = TASK.evaluate(INSTANCE, "Answer: ['1', 1]")
    assert not verdict.valid and verdict.quality_ratio == 0 and "repeated" in verdict.reason


def test_float_ids_are_invalid():
    verdict = TASK.evaluate(INSTANCE, "Answer: [1.9, 1.2]")
    assert not verdict.valid and verdict.quality_ratio == 0


def test_answer_after_an_earlier_answer_in_the_reasoning_counts():
    completion = "First guess. Answer: [4, 0]\nThat is wrong, 4 and 0 are not adjacent.\nAnswer: [0, 1, 2, 3]"
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 4 and verdict.quality_ratio == 1.0


@pytest.mark.parametrize("answer, reason", [
    ("[0, 4]", "vertices 0 and 4 are not adjacent"),
    ("[0, 1, 2, 3, 4]", "not adjacent"),
    ("[0, 6]", "out of range"),
    ("[-1, 0]", "out of range"),
    ("[0, 1, 1]", "repeated"),
])
def test_infeasible_cliques(answer, reason):
    verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


def test_empty_and_single_vertex_cliques():
    assert TASK.evaluate(INSTANCE, "Answer: []").value == 0
    assert TASK.evaluate(INSTANCE, "Answer: [5]").quality_ratio == pytest.approx(0.25)


@pytest.mark.parametrize("completion", [
    "Answer: 0 -> 1 -> 2 -> 3", "Answer: (0,1,2,3)", "Answer:0,1,2,3", "Answer: \\boxed{[0,1,2,3]}",
    "**Answer:**\n`[\"0\", \"1\", \"2\", \"3\"]`.", "Answer: {3, 2, 1, 0}",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 4, verdict.reason
    assert verdict.answer == (0, 1, 2, 3)
