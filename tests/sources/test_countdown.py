"""Countdown's exhaustive solver against reasoning-gym's own scorer, and the SFT data it feeds."""

from __future__ import annotations

import contextlib
import itertools
import re
from fractions import Fraction

import pytest

from dmpo.errors import DmpoError
from dmpo.npbench.splits import SFT_SEED_START
from dmpo.sources.countdown import countdown_solutions

pytest.importorskip("reasoning_gym")

from dmpo.pipeline.sources import get_source

SMALL = "rg:countdown?min_numbers=3&max_numbers=3&max_value=20&min_target=10&max_target=60"


def _value(text: str) -> Fraction:
    """The exact value of an expression of integers and + - * / (a check independent of the solver)."""
    wrapped = "".join(f"Fraction({tok})" if tok.isdigit() else tok
                      for tok in re.findall(r"\d+|[-+*/()]", text))
    return eval(wrapped, {"Fraction": Fraction})  # our own expressions of digits and operators only


def _fully_parenthesised_values(numbers):
    """Every value reachable by three numbers in any order, operators and shape (brute force)."""
    ops = "+-*/"
    values = set()
    for a, b, c in itertools.permutations(numbers):
        for o1, o2 in itertools.product(ops, ops):
            for text in (f"(({a}){o1}({b})){o2}({c})", f"({a}){o1}(({b}){o2}({c}))"):
                with contextlib.suppress(ZeroDivisionError):
                    values.add(_value(text))
    return values


def test_hand_worked_instance():
    # 24 from 2, 3, 4: only the six orders of 2*3*4 (no sum, difference or quotient reaches it)
    assert countdown_solutions([2, 3, 4], 24) == ["2*3*4", "2*4*3", "3*2*4", "3*4*2", "4*2*3", "4*3*2"]
    # parentheses only where the meaning needs them
    solutions = countdown_solutions([3, 4, 5], 27)
    assert "3*(4+5)" in solutions and "(4+5)*3" in solutions and "3*4+5" not in solutions
    assert countdown_solutions([3, 4, 5], 17)[:2] == ["3*4+5", "4*3+5"]
    assert "12-(4-5)" in countdown_solutions([12, 4, 5], 13)  # the right operand of - keeps its parentheses
    assert "12-4-5" in countdown_solutions([12, 4, 5], 3)
    assert countdown_solutions([1, 1], 5) == []
    assert countdown_solutions([2, 3, 4], 24, limit=2) == ["2*3*4", "2*4*3"]


@pytest.mark.parametrize("numbers", [(4, 10, 5), (19, 9, 3), (6, 6, 14), (1, 1, 12), (7, 2, 20), (8, 8, 8)])
def test_solutions_are_exact_and_complete(numbers):
    reachable = _fully_parenthesised_values(numbers)
    for target in range(0, 80):
        solutions = countdown_solutions(numbers, target)
        assert bool(solutions) == (Fraction(target) in reachable), target
        for text in solutions:
            assert _value(text) == target
            assert sorted(int(t) for t in re.findall(r"\d+", text)) == sorted(numbers)
        assert len(solutions) == len(set(solutions))


def test_too_many_numbers_is_a_clear_error():
    with pytest.raises(DmpoError, match="at most 5"):
        countdown_solutions([1, 2, 3, 4, 5, 6], 10)


def test_source_answers_are_all_scored_correct_by_reasoning_gym():
    source = get_source(SMALL)
    items = source.items(start=SFT_SEED_START, count=12)
    for item in items:
        answers = source.answers(item)
        assert answers, item.id
        assert item.answer.replace(" ", "") in answers or _value(item.answer) == _value(answers[0])
        for text in answers:
            verdict = source.score(item, f"Answer: {text}")
            assert verdict.correct and verdict.reward == pytest.approx(1.1)
    assert len(source.answers(items[0], limit=1)) == 1


def test_sft_examples_of_a_source_are_correct_answers():
    from dmpo.pipeline.sft import build_sft_examples

    data = build_sft_examples([SMALL], instances_per_task=6, answers_per_instance=3, progress=False)
    source = get_source(SMALL)
    stats = data.stats["tasks"][SMALL]
    assert stats["items"] == 6 and stats["items_with_answers"] == 6 and stats["examples"] == 18
    assert stats["distinct_answers_per_item"] >= 1
    by_prompt = {source.prompt(item): item for item in source.items(start=SFT_SEED_START, count=6)}
    for example in data.examples:
        assert example["completion"].startswith("Answer: ")
        assert source.score(by_prompt[example["prompt"]], example["completion"]).correct


def test_sft_settings_take_source_specs():
    from dmpo.pipeline.settings import SFTSettings

    assert SFTSettings(tasks=(SMALL,)).tasks == (SMALL,)
    with pytest.raises(DmpoError, match="unknown reasoning-gym task"):
        SFTSettings(tasks=("rg:no_such_task",))
