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
