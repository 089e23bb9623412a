"""Independent reference for meeting_schedule: feasibility written out plainly (availability
checked minute by minute), and random answers."""

import random


def _available(question: dict, person: int, minute: int) -> bool:
    return any(lo <= minute < hi for lo, hi in question["attendee_availability"][str(person)])


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    meetings, rooms = question["meetings"], question["rooms"]
    if not isinstance(answer, list):
        return False, None
    for entry in answer:
        if not isinstance(entry, list) or len(entry) != 3 or any(type(v) is not int for v in entry):
            return False, None
    ids = [entry[0] for entry in answer]
    if len(set(ids)) != len(ids):
        return False, None
    for meeting, room, start in answer:
        if str(meeting) not in meetings or str(room) not in rooms:
            return False, None
        people = meetings[str(meeting)]["attendees"]
        if rooms[str(room)] < len(people):
            return False, None
        for minute in range(start, start + meetings[str(meeting)]["duration"]):
            if not all(_available(question, person, minute) for person in people):
                return False, None
    for i, (m1, r1, s1) in enumerate(answer):
        e1 = s1 + meetings[str(m1)]["duration"]
        for m2, r2, s2 in answer[i + 1:]:
            e2 = s2 + meetings[str(m2)]["duration"]
            if max(s1, s2) < min(e1, e2):
                common = set(meetings[str(m1)]["attendees"]) & set(meetings[str(m2)]["attendees"])
                if r1 == r2 or common:
                    return False, None
    return True, sum(len(meetings[str(m)]["attendees"]) for m, _, _ in answer)


def random_answer(question: dict, rng: random.Random) -> list[list[int]]:
    """Meetings in random order, each placed at a random half-hour start in a random room if
    that keeps the schedule feasible (sometimes placed regardless, to make infeasible ones)."""
    meetings, rooms = question["meetings"], question["rooms"]
    careless = rng.random() < 0.15
    order = list(meetings)
    rng.shuffle(order)
    schedule: list[list[int]] = []
    for m in order:
        if rng.random() < 0.2:
            continue
        entry = [int(m), rng.randrange(len(rooms)), rng.randrange(480, 1080, 30)]
        if careless or feasible(question, [*schedule, entry])[0]:
            schedule.append(entry)
    return schedule
