"""Independent reference for set_cover: feasibility written out plainly, and random answers."""

import random


def _union_of_all(question: dict) -> set:
    everything = set()
    for subset in question["S"].values():
        everything.update(subset)
    return everything


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    universe = set(question["U"])
    if isinstance(answer, str):
        if answer.lower() != "impossible":
            return False, None
        return (True, 0) if not universe <= _union_of_all(question) else (False, None)
    if not isinstance(answer, list) or any(type(v) is not int for v in answer):
        return False, None
    if len(set(answer)) != len(answer) or any(str(v) not in question["S"] for v in answer):
        return False, None
    covered = set()
    for v in answer:
        covered.update(question["S"][str(v)])
    if not universe <= covered:
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.05:
        return "Impossible"
    ids = list(range(len(question["S"])))
    if roll < 0.2:  # an arbitrary pick, usually not a cover
        return rng.sample(ids, rng.randint(0, len(ids)))
    # Add random subsets until U is covered, then drop some redundant ones.
    rng.shuffle(ids)
    chosen, covered = [], set()
    for v in ids:
        if set(question["U"]) <= covered:
            break
        chosen.append(v)
        covered.update(question["S"][str(v)])
    for v in list(chosen):
        if rng.random() < 0.5:
            rest = [w for w in chosen if w != v]
            if set(question["U"]) <= {e for w in rest for e in question["S"][str(w)]}:
                chosen = rest
    return chosen
