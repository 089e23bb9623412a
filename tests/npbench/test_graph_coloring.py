"""graph_coloring: the §5 rows (colour 0 or negative), format tolerance, a hand-made instance."""

import pytest

from dmpo import npbench

TASK = npbench.get_task("graph_coloring")
# A 5-cycle 0-1-2-3-4-0: odd, so three colours and no fewer.
C5 = {"0": [1, 4], "1": [0, 2], "2": [1, 3], "3": [2, 4], "4": [3, 0]}
C5_INSTANCE = npbench.Instance("graph_coloring", "unknown", None, C5, 3, True)


def test_hand_made_instance_is_solved_exactly():
    solution = TASK.solve(C5, 10.0)
    assert (solution.value, solution.proved) == (3, True)
    assert TASK.brute_force(C5) == 3
    verdict = TASK.evaluate(C5_INSTANCE, "Answer: [1, 2, 1, 2, 3]")
    assert (verdict.valid, verdict.value, verdict.quality_ratio) == (True, 3, 1.0)
    worse = TASK.evaluate(C5_INSTANCE, "Answer: [1, 2, 3, 4, 5]")
    assert (worse.valid, worse.value) == (True, 5) and worse.quality_ratio == pytest.approx(0.6)


@pytest.mark.parametrize("answer", ["[0, 1, 0, 1, 2]", "[1, 2, 1, 2, 0]", "[-1, 2, 1, 2, 3]",
                                    "[1, -2, 1, -2, 3]"])
def test_colour_zero_or_negative_is_invalid(answer):
    verdict = TASK.evaluate(C5_INSTANCE, f"Answer: {answer}")
    assert not verdict.valid and verdict.quality_ratio == 0
    assert "positive" in verdict.reason


@pytest.mark.parametrize("answer, reason", [
    ("[1, 2, 1, 2, 1]", "adjacent vertices 0 and 4 share colour 1"),
    ("[1, 2, 1, 2]", "exactly 5 colours"),
    ("[1, 2, 1, 2, 3, 1]", "exactly 5 colours"),
    ("[]", "exactly 5 colours"),
])
def test_infeasible_colourings(answer, reason):
    verdict = TASK.evaluate(C5_INSTANCE, f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid and reason in verdict.reason


@pytest.mark.parametrize("answer", ["[1.0, 2, 1, 2, 3]", "[True, 2, 1, 2, 3]", "[1, 2, 1, 2, 3]+[4]",
                                    "one, two", None])
def test_non_integer_colours_do_not_parse(answer):
    verdict = TASK.evaluate(C5_INSTANCE, answer if answer is None else f"Answer: {answer}")
    assert not verdict.valid and not verdict.well_formed


@pytest.mark.parametrize("completion", [
    "Answer: 1 -> 2 -> 1 -> 2 -> 3", "Answer: (1,2,1,2,3)", "Answer:1,2,1,2,3",
    "**Answer:** `[1, 2, 1, 2, 3]`.", "Answer: \\boxed{[1, 2, 1, 2, 3]}", "Answer: ['1', '2', '1', '2', '3']",
    "Answer: [\"1\",\"2\",\"1\",\"2\",\"3\"]", "Answer:\n{1, 2, 1, 2, 3}",
    "Try Answer: [1, 1, 1, 1, 1] no.\nAnswer: [1, 2, 1, 2, 3]",
])
def test_format_tolerance(completion):
    verdict = TASK.evaluate(C5_INSTANCE, completion)
    assert verdict.valid and verdict.value == 3, verdict.reason


def test_canonical_renames_colours_by_first_appearance():
    assert TASK.canonical([7, 3, 7, 3, 9]) == TASK.canonical([1, 2, 1, 2, 3]) == (1, 2, 1, 2, 3)
    assert TASK.canonical([2, 1, 2, 1, 3]) == (1, 2, 1, 2, 3)


def test_large_colour_numbers_count_as_colours():
    verdict = TASK.evaluate(C5_INSTANCE, "Answer: [10, 20, 10, 20, 999999]")
    assert verdict.valid and verdict.value == 3


def test_generated_optimum_never_exceeds_planted_colours():
    for seed in range(5):
        inst = TASK.generate(seed=seed, difficulty="medium")
        assert inst.proved and 1 <= inst.optimum <= 6
