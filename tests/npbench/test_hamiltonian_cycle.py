"""hamiltonian_cycle (longest simple cycle): the §5 flaws, a hand-made instance, a graph
without a Hamiltonian cycle, and format tolerance."""

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError

TASK = npbench.get_task("hamiltonian_cycle")

# The 5-cycle 0-1-2-3-4 with the chord 0-2: the optimum is the 5-cycle, scored 5 + 1 = 6.
HAND = {"0": [1, 2, 4], "1": [0, 2], "2": [0, 1, 3], "3": [2, 4], "4": [0, 3]}
# Two triangles sharing vertex 0: no Hamiltonian cycle; the longest cycle has 3 vertices.
BOWTIE = {"0": [1, 2, 3, 4], "1": [0, 2], "2": [0, 1], "3": [0, 4], "4": [0, 3]}


def _instance(question=HAND):
    sol = TASK.solve(question, 10.0)
    return npbench.Instance("hamiltonian_cycle", "hand", None, question, sol.value, sol.proved,
                            TASK.format_answer(sol.answer))


def test_hand_made_instance_has_the_hand_computed_optimum():
    inst = _instance()
    assert inst.proved and inst.optimum == 6 == TASK.brute_force(HAND)
    assert TASK.evaluate(inst, "Answer: [0, 1, 2, 3, 4, 0]").value == 6
    triangle = TASK.evaluate(inst, "Answer: [0, 1, 2, 0]")
    assert triangle.valid and triangle.value == 4 and triangle.quality_ratio == pytest.approx(4 / 6)
    assert TASK.evaluate(inst, "Answer: [0, 2, 3, 4, 0]").value == 5


def test_longest_cycle_without_a_hamiltonian_cycle():
    inst = _instance(BOWTIE)
    assert inst.proved and inst.optimum == 4 == TASK.brute_force(BOWTIE)
    assert TASK.evaluate(inst, "Answer: [3, 4, 0, 3]").quality_ratio == 1.0
    assert not TASK.evaluate(inst, "Answer: [0, 1, 2, 0, 3, 4, 0]").valid  # 0 twice


@pytest.mark.parametrize("text", ["Answer: [5]", "Answer: [999]", "Answer: [0, 1, 0]"])
def test_public_flaw_rows_are_invalid(text):  # §5: public verdict "valid"
    verdict = TASK.evaluate(_instance(), text)
    assert not verdict.valid and verdict.quality_ratio == 0


@pytest.mark.parametrize("text", [
    "Answer: [0, 1, 2, 3, 4]",  # not closed
    "Answer: [0, 1, 2, 3, 4, 1]",  # closed at the wrong vertex
    "Answer: [0, 1, 2, 1, 0]",  # repeat before closing
    "Answer: [0, 1, 3, 4, 0]",  # 1-3 is not an edge
    "Answer: [0, 1, 2, 0, 0]",
    "Answer: [0, 1, 2, 5, 0]",
    "Answer: [0, 1, 2.0, 0]",
    "Answer: [0, True, 2, 0]",
    "Answer: []",
])
def test_invalid_cycles(text):
    assert not TASK.evaluate(_instance(), text).valid


@pytest.mark.parametrize("text", [
    "Answer: [0, 1, 2, 3, 4, 0]",
    "Answer: [2, 3, 4, 0, 1, 2]",
    "Answer: [0, 4, 3, 2, 1, 0]",
    "Answer: 0 -> 1 -> 2 -> 3 -> 4 -> 0",
    "Answer: (0, 1, 2, 3, 4, 0)",
    "Answer: [0,1,2,3,4,0]",
    "Answer: [\"0\", \"1\", \"2\", \"3\", \"4\", \"0\"]",
    "Answer: \\boxed{[0, 1, 2, 3, 4, 0]}",
    "**Answer:** `[3, 2, 1, 0, 4, 3]`.",
])
def test_format_tolerance_and_one_canonical_form(text):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.valid and verdict.value == 6 and verdict.quality_ratio == 1.0
    assert verdict.answer == (0, 1, 2, 3, 4, 0)


def test_an_edge_listed_on_one_side_counts_both_ways():
    question = {"0": [1, 2], "1": [2], "2": []}
    inst = _instance(question)
    assert inst.optimum == 4
    assert TASK.evaluate(inst, "Answer: [2, 1, 0, 2]").valid


def test_generated_instances_have_the_planted_optimum():
    for difficulty in ("easy", "medium"):
        inst = TASK.generate(seed=1, difficulty=difficulty)
        assert inst.proved and inst.optimum == len(inst.question) + 1


@pytest.mark.parametrize("bad", [
    {"0": [1], "1": [0]},  # two vertices
    {"0": [0, 1], "1": [0], "2": [1]},  # self-loop
    {"0": [3], "1": [], "2": []},  # no vertex 3
    {"0": ["1"], "1": [0], "2": []},
    {"0": 1, "1": [0], "2": []},
])
def test_malformed_questions(bad):
    with pytest.raises(DmpoError):
        TASK.evaluate(bad, "Answer: [0, 1, 2, 0]")
