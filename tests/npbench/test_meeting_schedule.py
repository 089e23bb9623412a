"""meeting_schedule: the public validators' flaws (docs/npbench.md), format tolerance, availability edges, hand-made optima."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmpo.npbench.parsing import parse_structure
from dmpo.npbench.tasks.meeting_schedule import TASK, triples
from tests.npbench.reference import meeting_schedule as reference

PUBLIC = [[540, 720], [780, 1020]]
# Public layout: everyone free 540-720 and 780-1020. Attendee 1 is in meetings 0 and 1.
QUESTION = {
    "meetings": {
        "0": {"attendees": [0, 1], "duration": 60},
        "1": {"attendees": [1, 2], "duration": 60},
        "2": {"attendees": [0, 2], "duration": 30},
    },
    "attendee_availability": {"0": PUBLIC, "1": PUBLIC, "2": PUBLIC},
    "rooms": {"0": 3, "1": 2},
}


def judge(text: str, question: dict = QUESTION):
    verdict = TASK.evaluate(question, text)
    parsed = TASK.parse_answer(text.split("Answer:")[-1].strip())
    if verdict.well_formed and parsed is not None:
        assert reference.feasible(question, parsed)[0] == verdict.valid
    return verdict


# ---- public validators' flaws (docs/npbench.md) ----------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [
    "[(0, 0, 540), (0, 0, 540), (0, 0, 540)]",
    "[(0, 0, 540), (0, 0, 600), (0, 1, 780)]",  # no overlap at all: only the repeat is wrong
])
def test_same_meeting_k_times_is_invalid(answer):
    verdict = judge(f"Answer: {answer}")
    assert verdict.well_formed and not verdict.valid
    assert "more than once" in verdict.reason


def test_attendee_in_two_overlapping_meetings_is_invalid():
    verdict = judge("Answer: [(0, 0, 540), (1, 1, 570)]")  # attendee 1 in both, different rooms
    assert not verdict.valid and "share an attendee" in verdict.reason
    back_to_back = judge("Answer: [(0, 0, 540), (1, 1, 600)]")  # half-open: 540-600, 600-660
    assert back_to_back.valid and back_to_back.value == 4


def test_tuples_without_space_after_comma_are_all_parsed():
    tight = judge("Answer: [(0,0,540),(1,1,600),(2,0,780)]")
    spaced = judge("Answer: [(0, 0, 540), (1, 1, 600), (2, 0, 780)]")
    assert tight.valid and tight.value == spaced.value == 6
    assert tight.answer == spaced.answer


# ---- format tolerance -------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "Answer: [[0, 0, 540], [1, 1, 600]]",
    "**Answer:**\n`[(0, 0, 540), (1, 1, 600)]`.",
    "Answer: \\boxed{[(0, 0, 540), (1, 1, 600)]}",
    "Answer: [('0', '0', '540'), (\"1\", \"1\", \"600\")]",
    "Answer: (0, 0, 540) -> (1, 1, 600)",
    "Answer: {(0, 0, 540), (1, 1, 600)}",
    "Answer: [\n  (0, 0, 540),\n  (1, 1, 600)\n]",
    "Answer: [(0 , 0 , 540) , [1,1,600]]",
    "Answer: [(1, 1, 600), (0, 0, 540)]",
    "I first tried Answer: [(0, 0, 0)]\nAnswer: [(0, 0, 540), (1, 1, 600)]",
])
def test_format_tolerance(text):
    verdict = judge(text)
    assert verdict.valid, verdict.reason
    assert verdict.value == 4
    assert verdict.answer == ((0, 0, 540), (1, 1, 600))


@pytest.mark.parametrize("answer", [
    "(0, 0, 540)",  # flat: one tuple without the list around it
    "0, 0, 540",
    "[(0, 0)]",
    "[(0, 0, 540, 1)]",
    "[[(0, 0, 540)]]",
    "[(0, 0, 540.0)]",
    "[(True, 0, 540)]",
    "[(0, 0, 540)]+[(0, 0, 600)]",
    "[(0, 0, 540], (1, 1, 600)]",
    "[(0, 0, 1234567890123)]",
])
def test_wrong_shapes_are_not_well_formed(answer):
    verdict = TASK.evaluate(QUESTION, f"Answer: {answer}")
    assert not verdict.well_formed and not verdict.valid


def test_empty_schedule_is_valid_with_value_zero():
    verdict = judge("Answer: []")
    assert verdict.valid and verdict.value == 0


@pytest.mark.parametrize(("answer", "valid"), [
    ("[(0, 0, 660)]", True),  # ends exactly at 720: the window is half-open
    ("[(0, 0, 661)]", False),  # runs one minute past 720
    ("[(0, 0, 700)]", False),  # across the lunch break
    ("[(2, 0, 990)]", True),
    ("[(2, 0, 991)]", False),
    ("[(0, 0, 539)]", False),
    ("[(0, 0, -60)]", False),
    ("[(0, 0, 547)]", True),  # any integer start, not only a grid
    ("[(0, 2, 540)]", False),  # no room 2
    ("[(3, 0, 540)]", False),  # no meeting 3
    ("[(0, 0, 540), (2, 0, 570)]", False),  # same room, overlapping
    ("[(0, 0, 540), (2, 1, 600)]", True),  # attendee 0 in both, but 540-600 and 600-630 only touch
])
def test_availability_rooms_and_overlaps(answer, valid):
    assert judge(f"Answer: {answer}").valid is valid


def test_room_capacity():
    question = {**QUESTION, "rooms": {"0": 1, "1": 2}}
    assert not judge("Answer: [(0, 0, 540)]", question).valid
    assert judge("Answer: [(0, 1, 540)]", question).valid


def test_touching_windows_join_up():
    question = {**QUESTION, "attendee_availability": {"0": [[600, 660], [540, 600]], "1": PUBLIC, "2": PUBLIC}}
    assert judge("Answer: [(0, 0, 570)]", question).valid
    assert not judge("Answer: [(0, 0, 601)]", question).valid


# ---- hand-made optima -------------------------------------------------------------------
HAND = {
    "meetings": {
        "0": {"attendees": [0, 1], "duration": 60},
        "1": {"attendees": [1, 2], "duration": 60},
        "2": {"attendees": [0], "duration": 90},
        "3": {"attendees": [0, 1, 2], "duration": 30},
    },
    "attendee_availability": {"0": [[540, 660]], "1": [[540, 720]], "2": [[600, 720]]},
    "rooms": {"0": 2, "1": 3},
}


def test_hand_made_instance():
    # Attendee 0 has 120 free minutes but meetings 0, 2, 3 need 180: drop meeting 2 (value 1).
    # 0 at 540 in room 0, 3 at 600 in room 1 (the only room for 3 people), 1 at 630: value 7.
    solution = TASK.solve(HAND, time_limit=10)
    assert solution.proved and solution.value == 7
    assert TASK.brute_force(HAND) == 7
    assert judge(f"Answer: {TASK.format_answer(solution.answer)}", HAND).value == 7
    verdict = judge("Answer: [(0, 0, 540), (3, 1, 600), (1, 0, 630)]", HAND)
    assert verdict.valid and verdict.value == 7
    assert not judge("Answer: [(0, 0, 540), (3, 0, 600), (1, 0, 630)]", HAND).valid  # room 0 holds 2


def test_solver_uses_starts_off_any_grid():
    question = {
        "meetings": {"0": {"attendees": [0, 1], "duration": 60}},
        "attendee_availability": {"0": [[545, 700]], "1": [[517, 605]]},
        "rooms": {"0": 2},
    }
    solution = TASK.solve(question, time_limit=10)
    assert solution.value == 2 and solution.answer == [[0, 0, 545]]


def _random_question(rng: random.Random) -> dict:
    people = rng.randint(2, 4)
    return {
        "meetings": {str(m): {"attendees": sorted(rng.sample(range(people), rng.randint(1, people))),
                              "duration": rng.choice((25, 30, 45, 60))} for m in range(rng.randint(2, 4))},
        "attendee_availability": {str(a): [[lo, lo + rng.randint(20, 110)] for lo in
                                           sorted(rng.sample(range(500, 700, 7), rng.randint(1, 2)))]
                                  for a in range(people)},
        "rooms": {str(r): rng.randint(1, 4) for r in range(rng.randint(1, 2))},
    }


def test_solver_agrees_with_brute_force_on_irregular_windows():
    rng = random.Random(5)
    for _ in range(25):
        question = _random_question(rng)
        solution = TASK.solve(question, time_limit=10)
        assert solution.proved
        assert TASK.brute_force(question) == solution.value, question
        assert reference.feasible(question, solution.answer) == (True, solution.value)


_SPACE = st.sampled_from(["", "", " ", " ", "  ", "\n"])
_NUMBER = st.one_of(st.integers(0, 2000).map(str), st.integers(0, 2000).map(str),
                    st.sampled_from(["-1", "'3'", "1.5", "x", "0" * 13, "1" * 12]))
_BRACKETS = st.sampled_from([("(", ")")] * 4 + [("[", "]")] * 3 + [("(", "]"), ("{", "}")])


@st.composite
def _schedule_text(draw) -> str:
    """Schedule-like text, mostly well formed, sometimes with triples of the wrong length,
    mismatched brackets, odd spacing or odd numbers: both parsing paths get exercised."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        length = draw(st.sampled_from([3, 3, 3, 2, 4]))
        numbers = draw(st.lists(_NUMBER, min_size=length, max_size=length))
        inner = draw(st.sampled_from([",", ", ", ", ", " , ", " "])).join(numbers)
        open_, close = draw(_BRACKETS)
        parts.append(open_ + draw(_SPACE) + inner + draw(_SPACE) + close)
    open_, close = draw(st.sampled_from([("[", "]")] * 4 + [("(", ")"), ("", ""), ("[", "")]))
    separator = draw(st.sampled_from([",", ", ", ", ", " , ", " ", ",\n"]))
    return open_ + draw(_SPACE) + separator.join(parts) + draw(_SPACE) + close


@settings(max_examples=400, deadline=None)
@given(st.one_of(_schedule_text(), st.text(alphabet="[](), 0123456789\n'-", max_size=60)))
def test_fast_path_parses_like_the_general_parser(text):
    assert TASK.parse_answer(text) == triples(parse_structure(text))
