"""max_cut: a hand-made instance, strict partitions, and format tolerance."""

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError

TASK = npbench.get_task("max_cut")

# A 4-cycle 0-1-2-3 (weights 1, 2, 3, 4) with the chord 0-2 (weight 5). By hand: {0,1}|{2,3}
# cuts 1-2, 3-0 and 0-2 = 2 + 4 + 5 = 11; every other split cuts at most 10.
HAND = {"num_vertices": 4, "edges": {"0-1": 1, "1-2": 2, "2-3": 3, "3-0": 4, "0-2": 5}}


def _instance(question=HAND):
    sol = TASK.solve(question, 10.0)
    return npbench.Instance("max_cut", "hand", None, question, sol.value, sol.proved, TASK.format_answer(sol.answer))


def test_hand_made_instance_has_the_hand_computed_optimum():
    inst = _instance()
    assert inst.proved and inst.optimum == 11 == TASK.brute_force(HAND)
    assert TASK.evaluate(inst, f"Answer: {inst.solution}").quality_ratio == 1.0
    verdict = TASK.evaluate(inst, "Answer: [[0, 2], [1, 3]]")  # the 4-cycle is cut, the chord is not
    assert verdict.valid and verdict.value == 10 and verdict.quality_ratio == pytest.approx(10 / 11)


@pytest.mark.parametrize(("text", "value"), [
    ("Answer: [[0, 1, 2, 3], []]", 0),  # a side may be empty
    ("Answer: [[], [3, 2, 1, 0]]", 0),
    ("Answer: [[1], [0, 2, 3]]", 3),
])
def test_empty_and_singleton_sides_are_valid(text, value):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.valid and verdict.value == value


@pytest.mark.parametrize("text", [
    "Answer: [[0, 1], [1, 2, 3]]",  # a vertex on both sides
    "Answer: [[0, 0, 1], [2, 3]]",  # duplicate inside a side
    "Answer: [[0, 1], [2]]",  # 3 on neither side
    "Answer: [[0, 1], [2, 3, 4]]",  # no vertex 4
    "Answer: [[0, 1], [2, -3]]",
    "Answer: [[0], [1], [2, 3]]",  # three sides
    "Answer: [[0.0, 1.0], [2.0, 3.0]]",
    "Answer: [[True, 1], [2, 3]]",
    "Answer: [0, 1]",
    "Answer: [[0, 1]+[2], [3]]",
])
def test_invalid_answers(text):
    verdict = TASK.evaluate(_instance(), text)
    assert not verdict.valid and verdict.quality_ratio == 0


@pytest.mark.parametrize("text", [
    "Answer: [[0, 1], [2, 3]]",
    "Answer: [[3, 2], [1, 0]]",
    "Answer: [[0,1],[2,3]]",
    "Answer: ((0, 1), (2, 3))",
    "Answer: [('0', '1'), ('2', '3')]",
    "Answer: \\boxed{[[0, 1], [2, 3]]}",
    "I think so.\n**Answer:** `[[0, 1], [2, 3]]`.",
])
def test_format_tolerance(text):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.valid and verdict.value == 11
    assert verdict.answer == ((0, 1), (2, 3))


def test_reversed_edge_key_and_compact_form():
    assert TASK.compact_question(HAND) == "n 4\n0-1 1\n1-2 2\n2-3 3\n3-0 4\n0-2 5"


@pytest.mark.parametrize("bad", [
    {"num_vertices": 3, "edges": {"0-1": 1, "1-0": 2}},  # the same edge twice
    {"num_vertices": 3, "edges": {"0-3": 1}},  # no vertex 3
    {"num_vertices": 3, "edges": {"1-1": 1}},  # self-loop
    {"num_vertices": 3, "edges": {"0-1": 1.5}},
    {"num_vertices": 3, "edges": {"0,1": 1}},
    {"num_vertices": True, "edges": {}},
])
def test_malformed_questions(bad):
    with pytest.raises(DmpoError):
        TASK.evaluate(bad, "Answer: [[0], [1, 2]]")


def test_bench_instances_are_proved_quickly():
    inst = TASK.generate(seed=0, difficulty="bench", time_limit=10.0)
    assert inst.proved and 30 <= inst.question["num_vertices"] <= 40
