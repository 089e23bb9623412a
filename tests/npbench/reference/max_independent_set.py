"""Independent reference for max_independent_set: feasibility written out plainly, and random
answers."""

import itertools
import random

from tests.npbench.reference._graph import edge_set, is_id_list, vertices


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not is_id_list(answer, len(question)):
        return False, None
    edges = edge_set(question)
    if any(frozenset(pair) in edges for pair in itertools.combinations(answer, 2)):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """A greedy independent set in random order, sometimes cut short, sometimes with an
    intruder."""
    order = vertices(question)
    rng.shuffle(order)
    edges = edge_set(question)
    chosen: list[int] = []
    for v in order:
        if all(frozenset((u, v)) not in edges for u in chosen):
            chosen.append(v)
    chosen = chosen[: rng.randint(0, len(chosen))]
    if rng.random() < 0.2:
        chosen.append(rng.choice([v for v in order if v not in chosen] or order))
    return chosen
