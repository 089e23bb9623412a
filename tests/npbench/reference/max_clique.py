"""Independent reference for max_clique: feasibility written out plainly, and random answers."""

import itertools
import random

from tests.npbench.reference._graph import edge_set, is_id_list, vertices


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not is_id_list(answer, len(question)):
        return False, None
    edges = edge_set(question)
    if any(frozenset(pair) not in edges for pair in itertools.combinations(answer, 2)):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """A greedy clique grown in random order, sometimes cut short, sometimes with an intruder."""
    order = vertices(question)
    rng.shuffle(order)
    edges = edge_set(question)
    clique: list[int] = []
    for v in order:
        if all(frozenset((u, v)) in edges for u in clique):
            clique.append(v)
    clique = clique[: rng.randint(1, len(clique))]
    if rng.random() < 0.2:
        clique.append(rng.choice([v for v in order if v not in clique] or order))
    rng.shuffle(clique)
    return clique
