"""tsp: a hand-made instance, closed tours from any start, and format tolerance."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.parsing import parse_int_list
from dmpo.npbench.tasks._cycle import parse_walk

TASK = npbench.get_task("tsp")


def _question(dist: list[list[int]]) -> dict:
    return {str(i): {str(j): d for j, d in enumerate(row)} for i, row in enumerate(dist)}


# The ring 0-1-2-3 costs 10 a step; the diagonals 0-2 and 1-3 cost 50. By hand: the ring is
# 40; 0-2-1-3-0 is 50 + 10 + 50 + 10 = 120; 0-1-3-2-0 is 10 + 50 + 10 + 50 = 120.
HAND = _question([[0, 10, 50, 10], [10, 0, 10, 50], [50, 10, 0, 10], [10, 50, 10, 0]])


def _instance(question=HAND):
    sol = TASK.solve(question, 10.0)
    return npbench.Instance("tsp", "hand", None, question, sol.value, sol.proved, TASK.format_answer(sol.answer))


def test_hand_made_instance_has_the_hand_computed_optimum():
    inst = _instance()
    assert inst.proved and inst.optimum == 40 == TASK.brute_force(HAND)
    verdict = TASK.evaluate(inst, "Answer: [0, 2, 1, 3, 0]")
    assert verdict.valid and verdict.value == 120 and verdict.quality_ratio == pytest.approx(40 / 120)


@pytest.mark.parametrize("text", [
    "Answer: [0, 1, 2, 3, 0]",
    "Answer: [2, 3, 0, 1, 2]",  # any start
    "Answer: [0, 3, 2, 1, 0]",  # either direction
    "Answer: 0 -> 1 -> 2 -> 3 -> 0",
    "Answer: 0→1→2→3→0",
    "Answer: (0, 1, 2, 3, 0)",
    "Answer: [0,1,2,3,0]",
    "Answer: ['0', '1', '2', '3', '0']",
    "Answer: \\boxed{[0, 1, 2, 3, 0]}",
    "**Answer:**\n`[1, 0, 3, 2, 1]`.",
])
def test_format_tolerance_and_one_canonical_form(text):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.valid and verdict.value == 40 and verdict.quality_ratio == 1.0
    assert verdict.answer == (0, 1, 2, 3, 0)


@pytest.mark.parametrize("text", [
    "Answer: [0, 1, 2, 3]",  # not closed
    "Answer: [0, 1, 2, 3, 1]",  # closed at the wrong city
    "Answer: [0, 1, 1, 3, 0]",  # a city twice
    "Answer: [0, 1, 2, 3, 0, 1, 0]",  # too long
    "Answer: [0, 1, 2, 4, 0]",  # no city 4
    "Answer: [0, 1, 2, -3, 0]",
    "Answer: [0, 1, 2, 3.0, 0]",
    "Answer: [0, True, 2, 3, 0]",
    "Answer: [[0, 1], [2, 3]]",
    "Answer: [0]",
    "Answer: []",
])
def test_invalid_tours(text):
    verdict = TASK.evaluate(_instance(), text)
    assert not verdict.valid and verdict.quality_ratio == 0


def test_generated_easy_instance():
    inst = TASK.generate(seed=3, difficulty="easy")
    n = len(inst.question)
    assert 10 <= n <= 20 and inst.proved
    tour = TASK.parse_answer(inst.solution)
    assert tour[0] == tour[-1] == 0 and sorted(tour[:-1]) == list(range(n))
    assert all(10 <= inst.question[str(i)][str(j)] <= 100 for i in range(n) for j in range(n) if i != j)


@pytest.mark.parametrize("bad", [
    _question([[0, 10, 20], [11, 0, 30], [20, 30, 0]]),  # asymmetric
    _question([[1, 10, 20], [10, 0, 30], [20, 30, 0]]),  # non-zero diagonal
    _question([[0, 10.5, 20], [10.5, 0, 30], [20, 30, 0]]),
    {"0": {"1": 10}, "1": {"0": 10, "2": 5}, "2": {"1": 5}},  # 0-2 missing
    _question([[0, 1], [1, 0]]),  # two cities
])
def test_malformed_questions(bad):
    with pytest.raises(DmpoError):
        TASK.evaluate(bad, "Answer: [0, 1, 2, 0]")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]0123456789, \n", max_size=40))
def test_fast_walk_parser_agrees_with_the_general_one(text):
    assert parse_walk(text) == parse_int_list(text)
