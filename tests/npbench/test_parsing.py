"""The tolerant parser: what it accepts, what it refuses, and that it never raises."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmpo.npbench.parsing import extract_answer, parse_int_list, parse_structure


@pytest.mark.parametrize("text, expected", [
    ("Answer: [0, 2, 1]", [0, 2, 1]),
    ("**Answer:** [3,4]", [3, 4]),
    ("Answer:\n`[3, 4]`.", [3, 4]),
    ("Answer: \\boxed{[1, 2]}", [1, 2]),
    ("Answer: 0 -> 1 -> 2 -> 0", [0, 1, 2, 0]),
    ("Answer: 0 → 1 → 2", [0, 1, 2]),
    ("Answer: (1, 2)", [1, 2]),
    ("Answer: {1, 2}", [1, 2]),
    ("Answer: ['1', \"2\"]", [1, 2]),
    ("Answer: [1,2,]", [1, 2]),
    ("Answer: []", []),
    ("Answer: [[0,1],[2,3]]", [[0, 1], [2, 3]]),
    ("Answer: [(0, 1, 540),(1,0,600)]", [[0, 1, 540], [1, 0, 600]]),
    ("Answer: (0, 0, 540), (1, 1, 600)", [[0, 0, 540], [1, 1, 600]]),
    ("Answer: [1, 2] is my final answer", [1, 2]),
    ("answer: 5", [5]),
    ("Answer: 1\nmore reasoning\nAnswer: [7, 8]", [7, 8]),  # the last Answer: counts
])
def test_accepted_forms(text, expected):
    assert parse_structure(extract_answer(text)) == expected


@pytest.mark.parametrize("text", [
    "Answer: [1.9, 1.2]", "Answer: [True, 1]", "Answer: [0]+[3,3]", "Answer: [1,,2]", "Answer: [,1]",
    "Answer: (1,2]", "Answer: [[[[[[1]]]]]]", "Answer: " + "9" * 40, "Answer: Impossible",
    "Answer: [1, 2", "Answer: [a, b]", "no answer here", "", "Answer:",
])
def test_refused_forms(text):
    assert parse_structure(extract_answer(text)) is None


def test_flat_list_only():
    assert parse_int_list("[1, 2]") == [1, 2]
    assert parse_int_list("[[1], 2]") is None


@pytest.mark.parametrize("value", [None, 3, 2.5, b"Answer: [1]", ["Answer: [1]"], {"a": 1}])
def test_non_text_is_no_answer(value):
    assert extract_answer(value) is None
    assert parse_structure(value) is None


def test_huge_inputs_are_refused_quickly():
    assert parse_structure(extract_answer("Answer: [" + "1, " * 100_000 + "1]")) is None
    assert parse_structure(extract_answer("Answer: " + "[" * 100_000)) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_never_raises(text):
    answer = extract_answer(text)
    assert answer is None or isinstance(answer, str)
    result = parse_structure(answer)
    assert result is None or isinstance(result, list)


# ---- issue 9: what is forgiven, what is refused, and the bounds ----------------------------
@pytest.mark.parametrize("text, expected", [
    # a remark after the answer on the same line
    ("Answer: [0, 1, 3, 2, 4, 0] (this is optimal)", [0, 1, 3, 2, 4, 0]),
    ("Answer: [3, 5, 6] - total 42", [3, 5, 6]),
    ("Answer: [3, 5, 6] — total 42", [3, 5, 6]),
    ("Answer: [3, 5, 6], which covers every edge", [3, 5, 6]),
    ("Answer: [3, 5, 6]. Done.", [3, 5, 6]),
    ("Answer: [3, 5, 6] (3 vertices)", [3, 5, 6]),
    ("Answer: [1, 2] -> optimal", [1, 2]),
    # prose before the list on the same line
    ("Answer: the best I found is [0, 1, 3, 2, 4, 0]", [0, 1, 3, 2, 4, 0]),
    ("Answer: my tour is (0, 2, 1, 0).", [0, 2, 1, 0]),
    ("Answer: it is \\boxed{[4, 5]} I think", [4, 5]),
    # markdown around a list that spans lines: the trailing ** is not an operator
    ("**Answer:** **[\n2,\n3,\n5\n]**", [2, 3, 5]),
    ("**Answer:** **[2, 3, 5]** (optimal)", [2, 3, 5]),
    ("Answer: `[2, 3]`", [2, 3]),
    ("Answer: $[2, 3]$", [2, 3]),
    # Unicode spaces
    ("Answer:\u00a0[2, 3, 5]", [2, 3, 5]),
    ("Answer:\u2003[2,\u00a03,\u30005]\u2003", [2, 3, 5]),
    ("Answer: 2,\u00a03", [2, 3]),
    ("Answer: [2,\u200b3]", [2, 3]),
    ("ANSWER：[2, 3]", [2, 3]),
    # nested answers: partitions and schedules, bare tuples also over lines
    ("Answer: [[0, 2], [1, 3]] (cut weight 7)", [[0, 2], [1, 3]]),
    ("Answer: the sides are [[0, 2], [1, 3]]", [[0, 2], [1, 3]]),
    ("Answer: [0, 2], [1, 3]", [[0, 2], [1, 3]]),
    ("Answer: [(0, 1, 540), (1, 0, 600)] - that is 5 attendees", [[0, 1, 540], [1, 0, 600]]),
    ("Answer: (0, 1, 540),\n(1, 0, 600)\nThat is all.", [[0, 1, 540], [1, 0, 600]]),
    ("Answer: (0, 1, 540) (1, 0, 600)", [[0, 1, 540], [1, 0, 600]]),
    ("Answer: [0] -> [1]", [[0], [1]]),
    ("Answer: {1 2 3}", [1, 2, 3]),
    ("Answer: [1; 2]", [1, 2]),
    ("Answer: [-1, +2]", [-1, 2]),
])
def test_forgiven_forms(text, expected):
    assert parse_structure(extract_answer(text)) == expected


@pytest.mark.parametrize("text", [
    # expressions: an operator then a number or a bracket keeps the whole line, which fails
    "Answer: [0]+[3,3]", "Answer: [0] + [3, 3]", "Answer: [1]*2", "Answer: [1] ** 2", "Answer: [1]**[2]",
    "Answer: [0]-[1]", "Answer: [0] - 3", "Answer: [1].5", "Answer: [1]|[2]", "Answer: [1] & 2",
    "Answer: [1, 2] - 5 attendees",  # a number right after an operator reads as an expression
    "Answer: [1, 2] = [2, 1]", "Answer: [1+2]", "Answer: [1-2]", "Answer: 1+2", "Answer: [0]+(3)",
    # floats, bools, words, None as ids
    "Answer: [1.0, 2]", "Answer: [1e3]", "Answer: [False]", "Answer: [None]", "Answer: [one, two]",
    "Answer: the answer is one two", "Answer: x 1" + "\u2003" * 50,
    # quotes and signs that are not ids
    "Answer: ['1\", 2]", "Answer: [', 1]", "Answer: [+]", "Answer: [1, -]", "Answer: [=> 1]",
    # unbalanced, mismatched, too deep, too long
    "Answer: [[1, 2]", "Answer: [1, 2)", "Answer: [[[[[1]]]]]", "Answer: [1234567890123]",
    "Answer: [" + " " * 1000 + "x]", "Answer: [" + "1" * 1000 + ".5]",
    "Answer: Impossible to say",
])
def test_refused_forms_issue9(text):
    assert parse_structure(extract_answer(text)) is None


@pytest.mark.parametrize("text, expected", [
    ("Answer: Impossible", "Impossible"), ("Answer: Impossible\u00a0", "Impossible"),
    ("Answer: **Impossible**.", "Impossible"), ("Answer: impossible (no subset holds 7)", "impossible"),
    ("Answer: Impossible - element 7 is in no subset", "Impossible"), ("Answer: Impossible to say", None),
])
def test_impossible_with_prose(text, expected):
    answer = extract_answer(text)
    assert (answer if answer == expected else None) == expected


def test_bounds_are_documented_constants():
    from dmpo.npbench import parsing

    ids = ", ".join(["1"] * parsing.MAX_NUMBERS)
    assert parse_structure(f"[{ids}]") == [1] * parsing.MAX_NUMBERS
    assert parse_structure(f"[{ids}, 1]") is None  # one number too many
    assert parse_structure(extract_answer(f"Answer: [{ids}, 1]")) is None
    groups = ", ".join(["[1]"] * (parsing.MAX_GROUPS - 1))
    assert parse_structure(f"[{groups}]") == [[1]] * (parsing.MAX_GROUPS - 1)
    assert parse_structure(f"[{groups}, [1]]") is None  # one group too many
    # The answer must begin and end within MAX_ANSWER_CHARS characters of the last marker.
    pad = " " * (parsing.MAX_ANSWER_CHARS - 10)
    assert extract_answer(f"Answer:{pad}[1, 2]") == "[1, 2]"
    assert extract_answer("Answer:" + " " * parsing.MAX_ANSWER_CHARS + "[1, 2]") is None
    assert extract_answer("Answer: [0]" + " " * parsing.MAX_ANSWER_CHARS + "+[3, 3]") is None
    assert extract_answer("Answer: 5 " + "x" * parsing.MAX_ANSWER_CHARS) is None
    assert extract_answer("Answer: [1, 2] " + "x" * parsing.MAX_ANSWER_CHARS) == "[1, 2]"


def test_the_last_marker_wins_and_needs_a_colon():
    assert extract_answer("Answer: [1]\nanswer is [2]") == "[1]"
    assert extract_answer("Final ANSWER ** : [3]") == "[3]"
    assert extract_answer("İ answer: [4]") == "[4]"  # İ lower-cases to two characters
    assert extract_answer("answer " * 1000) is None


def test_no_dead_code():
    from dmpo.npbench import parsing

    assert not hasattr(parsing, "_CLOSE")
