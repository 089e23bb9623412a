"""The math source: math-verify equivalences, the paper's reward, files of every format, gold
answers that cannot be parsed (skipped and counted), clear errors, and math:synthetic."""

from __future__ import annotations

import csv
import json
import time
from fractions import Fraction

import pytest

pytest.importorskip("math_verify")

from dmpo.errors import DmpoError
from dmpo.npbench.splits import EVAL_SEED_START, TRAIN_SEED_START
from dmpo.sources import Item, MathSource, TaskSource
from dmpo.sources.base import HELDOUT_SEED_START


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = write_jsonl(tmp_path_factory.mktemp("math") / "m.jsonl", [
        {"problem": "What is 2/6?", "answer": "\\frac{1}{3}"},
        {"problem": "Solve x + 1 = 4.", "answer": "3"},
        {"problem": "Half of 1?", "answer": "0.5"},
        {"problem": "A gold answer nobody can read", "answer": "???"},
        {"problem": "MATH-style solution", "answer": "We add them and get $\\boxed{12}$."},
        {"problem": "No gold answer", "answer": None},
    ])
    return MathSource(f"math:{path}")


def item_with(source, item_id):
    return next(i for i in source.items() if i.id == item_id)


@pytest.mark.parametrize(
    ("item_id", "completion"),
    [
        ("0", "Answer: 1/3"),
        ("0", "so \\boxed{\\frac{2}{6}}"),  # the example: \frac{2}{6} = 1/3
        ("0", "Answer: \\dfrac{1}{3}"),
        ("0", "Answer: 0.333333"),
        ("1", "Answer: x = 3"),
        ("1", "Answer: 3.0"),
        ("1", "\\boxed{\\frac{6}{2}}"),
        ("1", "Answer: 3 \\text{ apples}"),
        ("2", "Answer: \\frac{1}{2}"),
        ("2", "Answer: 1/2"),
        ("4", "Answer: 12"),
    ],
)
def test_equivalent_forms_are_correct(source, item_id, completion):
    verdict = source.score(item_with(source, item_id), completion)
    assert verdict.well_formed and verdict.correct and verdict.valid
    assert verdict.reward == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("item_id", "completion"),
    [
        ("0", "Answer: 0.3333"),  # not equal to 6 decimals
        ("0", "Answer: 1/4"),
        ("0", "Answer: 3"),
        ("1", "Answer: -3"),
        ("1", "Answer: \\pi"),
        ("1", "Answer: 3,5"),
        ("2", "Answer: 2"),
        ("4", "Answer: 2^{10}"),
    ],
)
def test_different_values_are_wrong(source, item_id, completion):
    verdict = source.score(item_with(source, item_id), completion)
    assert verdict.well_formed and not verdict.correct
    assert verdict.reward == pytest.approx(0.1)


def test_no_final_answer_scores_zero(source):
    verdict = source.score(item_with(source, "0"), "I think it is 1/3")
    assert not verdict.well_formed and verdict.reward == 0.0 and verdict.value is None


def test_an_answer_too_costly_to_check_is_wrong_at_once(source):
    started = time.perf_counter()
    verdict = source.score(item_with(source, "1"), "Answer: 9^{9^{9}}")
    assert time.perf_counter() - started < 5.0
    assert verdict.well_formed and not verdict.correct and "tower" in verdict.reason


def test_unparseable_gold_answers_are_skipped_and_counted(source):
    assert [i.id for i in source.items()] == ["0", "1", "2", "4"]
    assert set(source.skipped) == {"3", "5"}
    assert "could not be parsed" in source.skipped["3"] and "no gold answer" in source.skipped["5"]


def test_a_bad_gold_answer_given_directly_is_an_error_not_a_zero(source):
    with pytest.raises(DmpoError, match="could not be parsed"):
        source.score(Item(source.name, "x", "?", "???"), "Answer: 1")


def test_distinct_correct_answers_count_equivalent_forms_once(source):
    item = item_with(source, "0")
    forms = {source.score(item, c).answer for c in ("Answer: 1/3", "\\boxed{\\frac{2}{6}}", "Answer: 0.333333")}
    assert len(forms) == 1


def test_repeated_answers_are_judged_once(tmp_path, monkeypatch):
    import dmpo.sources.math as math_module

    rows = [{"problem": "p", "answer": "\\frac{1}{3}"}, {"problem": "q", "answer": "\\sqrt{4}"}]
    fresh = MathSource(f"math:{write_jsonl(tmp_path / 'm.jsonl', rows)}")
    first, second = fresh.items()
    calls = []
    real = math_module._parsed
    monkeypatch.setattr(math_module, "_parsed", lambda mv, text: calls.append(text) or real(mv, text))
    texts = ("Answer: \\frac{2}{6}", "so \\boxed{\\frac{2}{6}}", "Answer: \\frac{2}{6}")
    verdicts = [fresh.score(first, text) for text in texts]
    assert all(v.correct for v in verdicts) and len(calls) == 1  # one final answer, parsed once
    assert fresh.score(second, "Answer: \\frac{2}{6}").correct is False  # another gold answer: judged anew
    assert len(calls) == 2
    assert fresh.score(first, "Answer: \\frac{1}{2}").correct is False and len(calls) == 3


def test_plain_rationals_are_judged_as_math_verify_does_without_it():
    """The fast path (integers and fractions on both sides) against math-verify itself: the same
    correctness and the same canonical answer on every pair."""
    from dmpo.sources.math import _canonical, _rational_verdict, parse_gold

    fresh = MathSource("math:synthetic")
    values = ["0", "-0", "3", "-3", "007", "2/6", "1/3", "-1/12", "-2/24", "7/18", "14/36", "5/1", "10/2",
              "-10/4", "0/5", "123456789012345678901234567890/3", "1/0"]
    checked = 0
    for gold_text in values:
        gold, _ = parse_gold(gold_text)
        if gold is None:
            continue
        for answer in values:
            fast = _rational_verdict(gold_text, answer, lambda gold=gold: _canonical(gold))
            if fast is None:
                assert "/0" in gold_text + answer  # only a zero denominator leaves the fast path
                continue
            slow = fresh._judge(gold, answer)  # no gold text: math-verify
            assert (fast.correct, fast.answer, fast.reward) == (slow.correct, slow.answer, slow.reward), (gold_text, answer)
            checked += 1
    assert checked >= 200
    assert _rational_verdict("1/3", "0.333333", str) is None and _rational_verdict("x", "1", str) is None


def test_is_a_task_source(source):
    assert isinstance(source, TaskSource) and not source.generated and source.kind == "math"
    item = source.items()[0]
    assert source.item_from_json(item.to_json()) == item
    assert source.prompt(item, "compact") == "What is 2/6?\n"
    assert "\\boxed{}" in source.prompt(item, "nl")


# ---- files --------------------------------------------------------------------------------------
ROWS = [{"question": "1+1?", "solution": "2", "uid": "a"}, {"question": "2+2?", "solution": "4", "uid": "b"}]
SPEC = "?problem=question&answer=solution&id=uid"


def _csv(path):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)


def _parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(ROWS), path)


def _datasets(path):
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(path))


@pytest.mark.parametrize(
    ("name", "write"),
    [("m.jsonl", lambda p: write_jsonl(p, ROWS)), ("m.json", lambda p: p.write_text(json.dumps(ROWS))),
     ("m.csv", _csv), ("m.parquet", _parquet), ("folder", _datasets)],
)
def test_every_file_format_with_renamed_columns(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    source = MathSource(f"math:{path}{SPEC}")
    assert [(i.id, i.question, i.answer) for i in source.items()] == [("a", "1+1?", "2"), ("b", "2+2?", "4")]
    assert source.score(source.items()[1], "Answer: 4").correct


@pytest.mark.parametrize(
    ("rows", "spec", "message"),
    [
        (ROWS, "", r"no problem column 'problem'; its columns are \['question', 'solution', 'uid'\]"),
        (ROWS, "?problem=question", "no answer column 'answer'"),
        (ROWS, "?problem=question&answer=nope", "no answer column 'nope'"),
        ([], "", "holds no rows"),
        ([{"problem": "p", "answer": "???"}], "", r"none of its 1 rows can be used \(1 skipped"),
        ([{"problem": "p", "answer": "1", "id": 1}, {"problem": "q", "answer": "2", "id": 1}], "",
         "id '1' appears more than once"),
        (ROWS, "?colour=red", r"unknown option\(s\) \['colour'\]"),
    ],
)
def test_clear_errors_for_bad_files(tmp_path, rows, spec, message):
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DmpoError, match=message):
        MathSource(f"math:{path}{spec}").items()


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DmpoError, match="no such file"):
        MathSource(f"math:{tmp_path / 'nope.jsonl'}")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DmpoError, match="holds no rows"):
        MathSource(f"math:{tmp_path / 'empty.csv'}").items()
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(DmpoError, match="unknown file type"):
        MathSource(f"math:{tmp_path / 'm.txt'}").items()


# ---- math:synthetic ------------------------------------------------------------------------------
def test_synthetic_problems_are_seeded_and_exactly_answered():
    source = MathSource("math:synthetic")
    items = source.items(start=TRAIN_SEED_START, count=60)
    assert items == MathSource("math:synthetic").items(start=TRAIN_SEED_START, count=60)
    assert {i.data["kind"] for i in items} == {"arithmetic", "fractions", "linear"}
    for item in items:
        Fraction(item.answer)  # an integer or p/q
        assert source.score(item, f"Answer: {item.answer}").correct
        assert not source.score(item, f"Answer: {Fraction(item.answer) + 1}").correct
    assert source.item_for_id(items[3].id) == items[3]


def test_synthetic_linear_answers_solve_their_equation():
    import sympy
    from sympy.parsing.sympy_parser import (
        implicit_multiplication,
        parse_expr,
        standard_transformations,
    )

    source = MathSource("math:synthetic?kind=linear")
    x = sympy.Symbol("x")
    for item in source.items(start=0, count=30):
        left, right = item.question.removeprefix("Solve for x: ").rstrip(".").split(" = ")
        sides = [parse_expr(side, transformations=(*standard_transformations, implicit_multiplication))
                 for side in (left, right)]
        assert sympy.solve(sides[0] - sides[1], x) == [sympy.Rational(item.answer)]


def test_synthetic_train_and_heldout_sets_share_no_problem():
    assert HELDOUT_SEED_START == EVAL_SEED_START
    source = MathSource("math:synthetic")
    train = {i.question for i in source.items(start=TRAIN_SEED_START, count=1500)}
    heldout = {i.question for i in source.items(start=EVAL_SEED_START, count=300)}
    assert len(heldout) > 200 and not train & heldout


def test_synthetic_errors():
    with pytest.raises(DmpoError, match="kind must be one of"):
        MathSource("math:synthetic?kind=calculus")
    with pytest.raises(DmpoError, match="positive number"):
        MathSource("math:synthetic").items(start=0, count=0)
    with pytest.raises(DmpoError, match="synthetic-<seed>"):
        MathSource("math:synthetic").item_for_id("7")
