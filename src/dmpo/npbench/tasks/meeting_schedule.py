"""Meeting scheduling: place meetings in rooms and times, maximising the total attendees of
the meetings scheduled.

Question: ``{"meetings": {"0": {"attendees": [0, 2], "duration": 60}, ...},
"attendee_availability": {"0": [[540, 720], [780, 1020]], ...}, "rooms": {"0": 4, ...}}``
(minutes from midnight; a room maps to its capacity).
Answer: ``[(meeting_id, room_id, start), ...]``; the empty schedule ``[]`` is valid with value 0.

A meeting occupies the half-open interval [start, start + duration). Valid: each meeting at
most once; the room exists and holds all its attendees; no two meetings overlap in a room; no
attendee is in two overlapping meetings; every attendee is available for the whole interval,
where a window ``[a, b]`` means available during [a, b) (touching windows join up).

Start times: any integer, in the validator and in the solver alike. CP-SAT decides one
integer start per meeting over exactly the starts whose interval fits every attendee's
availability, so its optimum is over the same feasible set as the validator (no grid).
The brute force instead enumerates a finite candidate set, which loses nothing: in a feasible
schedule with the least sum of starts no meeting can move one minute earlier, so each start is
either the left end of the meeting's common availability or the end of another meeting of the
same room or attendee; following those ends back, every start is a left end of some meeting's
common availability plus the durations of a set of other meetings.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ortools.sat.python import cp_model

from dmpo.npbench.base import Solution, Task, int_keys, require
from dmpo.npbench.parsing import is_int_id, parse_structure
from dmpo.npbench.render import draw_table
from dmpo.npbench.tasks._cpsat import cp_solver

PUBLIC_WINDOWS = ((540, 720), (780, 1020))
# The usual answer shape, "[(0, 1, 540), (2, 0, 600)]" or with [..] triples, read without the
# general tokenizer (most of the cost of judging an answer); anything else goes through it.
_INT = r" *+(\d{1,12}+) *+"
_TRIPLE = rf"\({_INT},{_INT},{_INT}\)|\[{_INT},{_INT},{_INT}\]"
_PLAIN_TRIPLE = re.compile(_TRIPLE)
_PLAIN_SCHEDULE = re.compile(rf"\[ *+(?:(?:{_TRIPLE})(?: *+, *+(?:{_TRIPLE}))*+)? *+\]")
DURATIONS = (30, 60, 90)


@dataclass(frozen=True)
class Prepared:
    size: list[int]  # attendees per meeting
    duration: list[int]
    starts: list[list[tuple[int, int]]]  # per meeting: feasible start ranges [lo, hi], inclusive
    shares_attendee: list[frozenset[int]]  # per meeting: the other meetings with a common attendee
    capacity: list[int]


class MeetingSchedule(Task):
    name = "meeting_schedule"
    public_name = "meeting-schedule"
    category = "schedule"
    vision_group = None
    sense = "max"
    description = (
        "Given meetings (each with its attendees and a duration in minutes), the times each "
        "attendee is available (intervals of minutes from midnight) and rooms with capacities, "
        "schedule a set of meetings, each at most once, in a room and at a start time, so that "
        "the total number of attendees of the scheduled meetings is as large as possible. A "
        "meeting occupies [start, start + duration); its room must hold all its attendees; two "
        "meetings in one room may not overlap; no attendee may be in two overlapping meetings; "
        "and every attendee must be available for the whole meeting."
    )
    answer_format = (
        "A list of (meeting_id, room_id, start) tuples, e.g. `Answer: [(0, 1, 540), (2, 0, 600)]`; "
        "the empty schedule `[]` is allowed."
    )

    # (meetings, attendees, rooms, most attendees per meeting). ``tiny`` gives each attendee
    # shorter windows so that conflicts decide the optimum; the others use the public windows.
    SIZES: ClassVar[dict[str, tuple]] = {
        "tiny": ((3, 4), (3, 4), (1, 2), 3),
        "easy": ((4, 5), (3, 5), (3, 4), 3),
        "medium": ((5, 6), (4, 6), (4, 5), 4),
        "hard": ((6, 7), (5, 7), (5, 6), 4),
        "bench": ((8, 10), (7, 9), (6, 7), 5),
    }

    def generate_question(self, rng: random.Random, difficulty: str) -> dict:
        (m_lo, m_hi), (a_lo, a_hi), (r_lo, r_hi), most = self.difficulty_params(difficulty)
        n_attendees = rng.randint(a_lo, a_hi)
        meetings = {}
        for m in range(rng.randint(m_lo, m_hi)):
            people = rng.sample(range(n_attendees), rng.randint(1, min(most, n_attendees)))
            meetings[str(m)] = {"attendees": sorted(people), "duration": rng.choice(DURATIONS)}
        availability = {}
        for a in range(n_attendees):
            if difficulty == "tiny":
                availability[str(a)] = [[start, start + rng.choice((60, 90, 120))] for start, _ in PUBLIC_WINDOWS]
            else:
                availability[str(a)] = [list(window) for window in PUBLIC_WINDOWS]
        rooms = {str(r): rng.randint(2, most + 1) for r in range(rng.randint(r_lo, r_hi))}
        return {"meetings": meetings, "attendee_availability": availability, "rooms": rooms}

    def validate_question(self, question: Any) -> None:
        require(isinstance(question, dict), "meeting_schedule question must be a JSON object")
        people = int_keys(question.get("attendee_availability"), "meeting_schedule 'attendee_availability'")
        for a in people:
            windows = question["attendee_availability"][str(a)]
            require(isinstance(windows, list) and all(
                isinstance(w, list) and len(w) == 2 and is_int_id(w[0]) and is_int_id(w[1]) and w[0] <= w[1]
                for w in windows), f"availability of attendee {a} must be a list of [start, end] integer pairs")
        for m in int_keys(question.get("meetings"), "meeting_schedule 'meetings'"):
            meeting = question["meetings"][str(m)]
            require(isinstance(meeting, dict), f"meeting {m} must be a JSON object")
            attendees = meeting.get("attendees")
            require(isinstance(attendees, list) and len(attendees) > 0
                    and all(is_int_id(a) and 0 <= a < len(people) for a in attendees)
                    and len(set(attendees)) == len(attendees),
                    f"meeting {m} needs 'attendees', a non-empty list of distinct attendee ids")
            require(is_int_id(meeting.get("duration")) and meeting["duration"] > 0,
                    f"meeting {m} needs a positive integer 'duration'")
        for r in int_keys(question.get("rooms"), "meeting_schedule 'rooms'"):
            require(is_int_id(question["rooms"][str(r)]) and question["rooms"][str(r)] >= 0,
                    f"room {r} must map to a non-negative integer capacity")

    def prepare(self, question: dict) -> Prepared:
        availability = question["attendee_availability"]
        free = [_merge(availability[str(a)]) for a in range(len(availability))]
        meetings = [question["meetings"][str(m)] for m in range(len(question["meetings"]))]
        starts = []
        for meeting in meetings:
            common = free[meeting["attendees"][0]]
            for a in meeting["attendees"][1:]:
                common = _intersect(common, free[a])
            d = meeting["duration"]
            starts.append([(lo, hi - d) for lo, hi in common if hi - lo >= d])
        shares = [
            frozenset(j for j, other in enumerate(meetings)
                      if j != i and set(meeting["attendees"]) & set(other["attendees"]))
            for i, meeting in enumerate(meetings)
        ]
        return Prepared(
            size=[len(meeting["attendees"]) for meeting in meetings],
            duration=[meeting["duration"] for meeting in meetings],
            starts=starts,
            shares_attendee=shares,
            capacity=[question["rooms"][str(r)] for r in range(len(question["rooms"]))],
        )

    def parse_answer(self, answer: str) -> list[list[int]] | None:
        """A list of (meeting, room, start) triples of ints; None for any other shape."""
        if isinstance(answer, str) and _PLAIN_SCHEDULE.fullmatch(answer):
            return [[int(m or m2), int(r or r2), int(t or t2)]
                    for m, r, t, m2, r2, t2 in _PLAIN_TRIPLE.findall(answer)]
        return triples(parse_structure(answer))

    def format_answer(self, answer: list) -> str:
        return "[" + ", ".join(f"({m}, {r}, {s})" for m, r, s in answer) + "]"

    def canonical(self, answer: list) -> tuple[tuple[int, ...], ...]:
        return tuple(sorted(tuple(triple) for triple in answer))

    def check(self, prepared: Prepared, answer: Any) -> tuple[bool, float | None, str]:
        p = prepared
        if not isinstance(answer, list):
            return False, None, "answer is not a list"
        placed: list[tuple[int, int, int, int]] = []  # (meeting, room, start, end)
        value = 0
        for triple in answer:
            if type(triple) is not list or len(triple) != 3:
                return False, None, f"{triple!r} is not a (meeting, room, start) triple"
            m, r, start = triple
            if not (is_int_id(m) and is_int_id(r) and is_int_id(start)):
                return False, None, f"{triple!r} is not a triple of integers"
            if not 0 <= m < len(p.size):
                return False, None, f"meeting {m} does not exist"
            if not 0 <= r < len(p.capacity):
                return False, None, f"room {r} does not exist"
            if p.capacity[r] < p.size[m]:
                return False, None, f"room {r} holds {p.capacity[r]}, meeting {m} has {p.size[m]} attendees"
            for lo, hi in p.starts[m]:
                if lo <= start <= hi:
                    break
            else:
                return False, None, f"an attendee of meeting {m} is not available for all of it at {start}"
            end = start + p.duration[m]
            for m2, r2, start2, end2 in placed:
                if m2 == m:
                    return False, None, f"meeting {m} scheduled more than once"
                if start < end2 and start2 < end:
                    if r2 == r:
                        return False, None, f"meetings {m2} and {m} overlap in room {r}"
                    if m2 in p.shares_attendee[m]:
                        return False, None, f"meetings {m2} and {m} overlap and share an attendee"
            placed.append((m, r, start, end))
            value += p.size[m]
        return True, value, ""

    def solve(self, question: dict, time_limit: float) -> Solution:
        p = self.prepare(question)
        model = cp_model.CpModel()
        room_intervals: list[list] = [[] for _ in p.capacity]
        person_intervals: dict[int, list] = {}
        chosen: dict[int, tuple] = {}  # meeting -> (start var, {room: bool var}, present var)
        for m, ranges in enumerate(p.starts):
            rooms = [r for r, cap in enumerate(p.capacity) if cap >= p.size[m]]
            if not ranges or not rooms:
                continue
            start = model.NewIntVarFromDomain(cp_model.Domain.FromIntervals([list(x) for x in ranges]), f"s{m}")
            present = model.NewBoolVar(f"present{m}")
            in_room = {r: model.NewBoolVar(f"m{m}r{r}") for r in rooms}
            model.Add(sum(in_room.values()) == present)
            for r, var in in_room.items():
                room_intervals[r].append(model.NewOptionalFixedSizeIntervalVar(start, p.duration[m], var, f"m{m}in{r}"))
            interval = model.NewOptionalFixedSizeIntervalVar(start, p.duration[m], present, f"m{m}")
            for a in question["meetings"][str(m)]["attendees"]:
                person_intervals.setdefault(a, []).append(interval)
            chosen[m] = (start, in_room, present)
        for intervals in [*room_intervals, *person_intervals.values()]:
            if len(intervals) > 1:
                model.AddNoOverlap(intervals)
        model.Maximize(sum(p.size[m] * present for m, (_, _, present) in chosen.items()))
        solver = cp_solver(time_limit)
        status = solver.Solve(model)
        schedule = []
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            for m, (start, in_room, present) in chosen.items():
                if solver.Value(present):
                    room = next(r for r, var in in_room.items() if solver.Value(var))
                    schedule.append([m, room, solver.Value(start)])
        value = sum(p.size[m] for m, _, _ in schedule)
        return Solution(value=value, answer=schedule, proved=status == cp_model.OPTIMAL)

    def brute_force(self, question: dict) -> float:
        p = self.prepare(question)
        n = len(p.size)
        lefts = {lo for ranges in p.starts for lo, _ in ranges}
        shifts = {sum(p.duration[j] for j in subset)
                  for k in range(n) for subset in itertools.combinations(range(n), k)}
        options = []  # per meeting: every (room, start) it could take alone
        for m in range(n):
            starts = sorted({a + s for a in lefts for s in shifts
                             if any(lo <= a + s <= hi for lo, hi in p.starts[m])})
            rooms = [r for r, cap in enumerate(p.capacity) if cap >= p.size[m]]
            options.append([(r, s) for r in rooms for s in starts])
        best = 0

        def place(m: int, schedule: list, value: int) -> None:
            nonlocal best
            best = max(best, value)
            if m == n or value + sum(p.size[m:]) <= best:
                return
            for room, start in options[m]:
                answer = [*schedule, [m, room, start]]
                if self.check(p, answer)[0]:
                    place(m + 1, answer, value + p.size[m])
            place(m + 1, schedule, value)

        place(0, [], 0)
        return best

    def compact_question(self, question: dict) -> str:
        lines = []
        for m in range(len(question["meetings"])):
            meeting = question["meetings"][str(m)]
            lines.append(f"m{m}: {' '.join(map(str, meeting['attendees']))} d{meeting['duration']}")
        for a in range(len(question["attendee_availability"])):
            windows = question["attendee_availability"][str(a)]
            lines.append(f"a{a}: " + " ".join(f"{lo}-{hi}" for lo, hi in windows))
        lines.append("rooms " + " ".join(f"{r}:{question['rooms'][str(r)]}" for r in range(len(question["rooms"]))))
        return "\n".join(lines)

    def render(self, instance: Any) -> Any:
        question = getattr(instance, "question", instance)
        rows = [[m, ", ".join(map(str, meeting["attendees"])), meeting["duration"]]
                for m, meeting in ((m, question["meetings"][str(m)]) for m in range(len(question["meetings"])))]
        notes = [f"attendee {a} free: " + ", ".join(f"{lo}-{hi}" for lo, hi in question["attendee_availability"][str(a)])
                 for a in range(len(question["attendee_availability"]))]
        notes.append("room capacities: " + ", ".join(f"room {r}: {question['rooms'][str(r)]}"
                                                    for r in range(len(question["rooms"]))))
        return draw_table(["meeting", "attendees", "minutes"], rows, title="Meeting schedule",
                          notes=notes)


def triples(value: list | None) -> list[list[int]] | None:
    """``value`` if it is a list of (meeting, room, start) triples of ints, else None."""
    if value is None:
        return None
    for triple in value:
        if not isinstance(triple, list) or len(triple) != 3 or any(isinstance(v, list) for v in triple):
            return None
    return value


def _merge(windows: list[list[int]]) -> list[tuple[int, int]]:
    """Sorted disjoint half-open intervals covering the union of ``windows``."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(tuple(w) for w in windows if w[0] < w[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intersection of two sorted disjoint interval lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


TASK = MeetingSchedule()
