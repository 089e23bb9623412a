"""Independent reference for subset_sum: feasibility written out plainly, and random answers."""

import random


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    numbers = question["numbers"]
    if not isinstance(answer, list) or any(type(v) is not int for v in answer):
        return False, None
    if len(set(answer)) != len(answer) or any(str(v) not in numbers for v in answer):
        return False, None
    if sum(numbers[str(v)] for v in answer) != question["target"]:
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """Random orders of the numbers, greedily kept while they fit under the target: often
    exactly the target (with varying counts), otherwise short of it."""
    ids = list(range(len(question["numbers"])))
    if rng.random() < 0.2:
        return rng.sample(ids, rng.randint(0, len(ids)))
    rng.shuffle(ids)
    chosen, total = [], 0
    for v in ids:
        if total + question["numbers"][str(v)] <= question["target"]:
            chosen.append(v)
            total += question["numbers"][str(v)]
    return chosen
