"""Independent reference for knapsack: feasibility written out plainly, and random answers."""

import random


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    items = question["items"]
    if not isinstance(answer, list) or any(type(v) is not int for v in answer):
        return False, None
    if len(set(answer)) != len(answer) or any(str(v) not in items for v in answer):
        return False, None
    if sum(items[str(v)]["weight"] for v in answer) > question["capacity"]:
        return False, None
    return True, sum(items[str(v)]["value"] for v in answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    ids = list(range(len(question["items"])))
    return rng.sample(ids, rng.randint(0, len(ids)))
