"""min_cut (balanced minimum bisection): the §5 flaws, format tolerance, a hand-made instance,
and the fast partition parser agreeing with the general one."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.parsing import parse_structure
from dmpo.npbench.tasks._partition import parse_sides

TASK = npbench.get_task("min_cut")


def _question(n: int, edges: dict[tuple[int, int], int]) -> dict:
    weights = {str(i): {str(j): 0 for j in range(n)} for i in range(n)}
    for (i, j), w in edges.items():
        weights[str(i)][str(j)] = weights[str(j)][str(i)] = w
    return weights


# Two heavy triangles {0,1,2} and {3,4,5} joined by 2-3 (weight 1) and 0-5 (weight 2).
HAND = _question(6, {(0, 1): 5, (0, 2): 5, (1, 2): 5, (3, 4): 5, (3, 5): 5, (4, 5): 5, (2, 3): 1, (0, 5): 2})


def _instance(question=HAND):
    sol = TASK.solve(question, 10.0)
    return npbench.Instance("min_cut", "hand", None, question, sol.value, sol.proved, TASK.format_answer(sol.answer))


def test_hand_made_instance_has_the_hand_computed_optimum():
    inst = _instance()
    assert inst.proved and inst.optimum == 3 == TASK.brute_force(HAND)
    assert TASK.evaluate(inst, "Answer: [[0, 1, 2], [3, 4, 5]]").value == 3
    # {0,1,3} | {2,4,5}: 0-2, 1-2, 0-5, 3-4, 3-5 cross (5+5+2+5+5); 2-3 is cut too (1).
    verdict = TASK.evaluate(inst, "Answer: [[0, 1, 3], [2, 4, 5]]")
    assert verdict.valid and verdict.value == 23
    assert verdict.quality_ratio == pytest.approx(3 / 23)


@pytest.mark.parametrize("text", [
    "Answer: [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]",
    "Answer: [[0.5, 1.5, 2], [3, 4, 5]]",
    "Answer: [[True, False, True], [False, True, False]]",
    "Answer: [[true, false], [false, true]]",
])
def test_floats_and_bools_are_not_ids(text):  # §5: public verdict "valid, cut 0"
    verdict = TASK.evaluate(_instance(), text)
    assert not verdict.valid and verdict.quality_ratio == 0


def test_floats_and_bools_rejected_by_check_itself():
    prepared = TASK.prepare(HAND)
    assert not TASK.check(prepared, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])[0]
    assert not TASK.check(prepared, [[True, 1, 2], [3, 4, 5]])[0]


@pytest.mark.parametrize("text", [
    "Answer: [[0, 0, 1], [3, 4, 5]]",  # §5: duplicate id inside a side
    "Answer: [[0, 1, 2, 2], [3, 4, 5]]",
    "Answer: [[0, 1, 2], [2, 4, 5]]",  # a vertex on both sides, 3 missing
])
def test_duplicates_are_invalid(text):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.well_formed and not verdict.valid


@pytest.mark.parametrize("text", [
    "Answer: [[0, 1], [2, 3, 4, 5]]",  # unbalanced
    "Answer: [[0, 1, 2, 3, 4, 5], []]",
    "Answer: [[0, 1, 2], [3, 4, 6]]",  # out of range
    "Answer: [[0, 1, 2], [3, 4]]",  # 5 missing
    "Answer: [[0, 1], [2, 3], [4, 5]]",  # three sides
    "Answer: [0, 1, 2]",  # not two sides
])
def test_other_infeasible_answers(text):
    assert not TASK.evaluate(_instance(), text).valid


@pytest.mark.parametrize("text", [
    "Answer: [[0, 1, 2], [3, 4, 5]]",
    "Answer: [[3, 4, 5], [2, 1, 0]]",  # either order
    "Answer: [[0,1,2],[3,4,5]]",
    "Answer: ((0, 1, 2), (3, 4, 5))",
    "Answer: [(0, 1, 2), (3, 4, 5)]",
    "Answer: [['0', '1', '2'], [\"3\", \"4\", \"5\"]]",
    "Answer: \\boxed{[[0, 1, 2], [3, 4, 5]]}",
    "**Answer:**\n`[[0, 1, 2], [3, 4, 5]]`.",
    "Answer: [0, 1, 2], [3, 4, 5]",
    "Answer: [[0 ,1 ,2] , [ 3,4,5 ]]",
])
def test_format_tolerance(text):
    verdict = TASK.evaluate(_instance(), text)
    assert verdict.valid and verdict.value == 3 and verdict.quality_ratio == 1.0
    assert verdict.answer == ((0, 1, 2), (3, 4, 5))


def test_odd_n_accepts_either_side_larger():
    question = _question(5, {(0, 1): 4, (1, 2): 4, (3, 4): 4, (2, 3): 1})
    inst = _instance(question)
    assert inst.optimum == 1 == TASK.brute_force(question)
    assert TASK.evaluate(inst, "Answer: [[0, 1, 2], [3, 4]]").value == 1
    assert TASK.evaluate(inst, "Answer: [[3, 4], [0, 1, 2]]").value == 1
    assert not TASK.evaluate(inst, "Answer: [[0, 1, 2, 3], [4]]").valid


def test_public_sizes_and_planted_structure():
    assert [TASK.SIZES[d][0] for d in ("easy", "medium", "hard", "bench")] == [(42, 42), (45, 45), (45, 45), (50, 50)]
    inst = TASK.generate(seed=0, difficulty="easy")
    assert len(inst.question) == 42 and inst.proved
    assert sorted(len(side) for side in TASK.parse_answer(inst.solution)) == [21, 21]


def test_compact_question_lists_each_edge_once():
    assert TASK.compact_question(HAND).splitlines() == [
        "n 6", "0-1 5", "0-2 5", "0-5 2", "1-2 5", "2-3 1", "3-4 5", "3-5 5", "4-5 5"]


@pytest.mark.parametrize("bad", [
    {"0": {"1": 2}, "1": {"0": 3}},  # asymmetric
    {"0": {"0": 1, "1": 2}, "1": {"0": 2}},  # non-zero diagonal
    {"0": {"1": 2.5}, "1": {"0": 2.5}},  # float weight
    {"0": {"1": -1}, "1": {"0": -1}},  # negative weight
    {"0": {"7": 1}, "1": {}},  # unknown vertex
])
def test_malformed_questions(bad):
    with pytest.raises(DmpoError):
        TASK.evaluate(bad, "Answer: [[0], [1]]")


def _general(text):
    value = parse_structure(text)
    if not value or not all(isinstance(s, list) for s in value) or any(isinstance(v, list) for s in value for v in s):
        return None
    return value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]0123456789, \n", max_size=40))
def test_fast_partition_parser_agrees_with_the_general_one(text):
    assert parse_sides(text) == _general(text)
