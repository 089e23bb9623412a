"""Final answers in model text, and the screen for answers too costly to evaluate."""

from __future__ import annotations

import time

import pytest

from dmpo.sources import final_answer, too_costly


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so the result is \\boxed{\\frac{1}{3}}.", "\\frac{1}{3}"),
        ("Answer: 1/3", "1/3"),
        ("**Answer:** $x = 3$.", "x = 3"),
        ("reasoning <answer>35*12 + 99 + 53</answer>", "35*12 + 99 + 53"),
        ("Answer: 2\nthen again \\boxed{3}", "3"),  # the last one wins
        ("\\boxed{1} ... Final answer: 4", "4"),
        ("Answer:\n 42", "42"),
        ("\\boxed{\\frac{a}{b}}", "\\frac{a}{b}"),  # nested braces
    ],
)
def test_final_answer(text, answer):
    assert final_answer(text) == answer


@pytest.mark.parametrize("text", ["no answer here", "\\boxed{unbalanced", "Answer: ", "", None, 3])
def test_no_final_answer(text):
    assert final_answer(text) is None


def test_exact_match_answers_keep_their_punctuation():
    assert final_answer("<answer>The cat sat.</answer>", clean=False) == "The cat sat."
    assert final_answer("<answer>The cat sat.</answer>") == "The cat sat"


def test_a_long_completion_is_read_in_linear_time():
    text = "Answer: " * 200_000 + "x" * 1_000_000 + "\\boxed{" * 10_000
    started = time.perf_counter()
    final_answer(text)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "answer",
    ["9^{9^{9}}", "10^{10^{10}}", "9**9**9**9", "2^{10}^{10}", "(10^{100})^{100000}", "9**999999999",
     "2^{999*999*999}", "1000000!", "\\binom{1000000000}{5}", "\\sum_{k=1}^{1000000000} k"],
)
def test_too_costly_answers_are_refused(answer):
    assert too_costly(answer)


@pytest.mark.parametrize(
    "answer", ["2^{10}", "x^2 + y^2", "x^{n+1}", "e^{i\\pi}", "2^{1000000}", "100000!", "\\binom{10}{5}", "(x+1)^2",
               "\\frac{1}{3}", "35*12 + 99 + 53"],
)
def test_ordinary_answers_pass_the_screen(answer):
    assert too_costly(answer) == ""
