"""feedback_vertex_set: strict checks, format tolerance, hand-made instances, and the CP-SAT
ordering model against brute force beyond tiny."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("feedback_vertex_set")
# Two triangles sharing vertex 0 (a bowtie), a 4-cycle 5-6-7-8 hanging off 4 by the bridge 4-5,
# and a pendant 9 on 8: removing 0 and one of 5..8 leaves a forest.
GRAPH = {"0": [1, 2, 3, 4], "1": [0, 2], "2": [0, 1], "3": [0, 4], "4": [0, 3, 5],
         "5": [4, 6, 8], "6": [5, 7], "7": [6, 8], "8": [5, 7, 9], "9": [8]}
INSTANCE = npbench.Instance("feedback_vertex_set", "unknown", None, GRAPH, 2, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(GRAPH, 10.0)
    assert (solution.value, solution.proved) == (2, True)
    assert TASK.brute_force(GRAPH) == 2
    for answer in ("[0, 5]", "[7, 0]"):
        verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
        assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 2, 1.0)
    worse = TASK.evaluate(INSTANCE, "Answer: [1, 3, 6]")
    assert worse.valid and worse.quality_ratio == pytest.approx(2 / 3)


def test_complete_graph_keeps_two_vertices():
    k5 = {str(v): [u for u in range(5) if u != v] for v in range(5)}
    assert TASK.solve(k5, 10.0).value == 3 == TASK.brute_force(k5)
    assert not TASK.evaluate(k5, "Answer: [0, 1]").valid


def test_forest_needs_nothing():
    tree = {"0": [1, 2], "1": [0], "2": [0, 3], "3": [2]}
    solution = TASK.solve(tree, 10.0)
    assert (solution.value, solution.answer, solution.proved) == (0, [], True)
    assert TASK.evaluate(tree, "Answer: []").valid


@pytest.mark.parametrize("answer, reason", [
    ("[0]", "still has a cycle"),
    ("[5]", "still has a cycle"),
    ("[9, 1]", "still has a cycle"),
    ("[0, 5, 5]", "repeated"),
    ("[0, 10]", "out of range"),
])
def test_infeasible_sets(answer, reason):
    verdict = TASK.evaluate(INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


@pytest.mark.parametrize("completion", [
    "Answer: 0 -> 5", "Answer: (0,5)", "Answer:0,5", "Answer: \\boxed{[5, 0]}", "**Answer:** ['0', '5'].",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(INSTANCE, completion)
    assert verdict.valid and verdict.value == 2, verdict.reason
    assert verdict.answer == (0, 5)


@pytest.mark.parametrize("seed", range(4))
def test_solver_matches_brute_force_on_easy(seed):
    inst = TASK.generate(seed=seed, difficulty="easy")
    assert inst.proved and TASK.brute_force(inst.question) == inst.optimum
