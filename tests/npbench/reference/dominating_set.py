"""Independent reference for dominating_set: feasibility written out plainly, and random
answers."""

import random

from tests.npbench.reference._graph import edge_set, is_id_list, vertices


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not is_id_list(answer, len(question)):
        return False, None
    dominated = set(answer)
    for edge in edge_set(question):
        if edge & set(answer):
            dominated |= edge
    if dominated != set(vertices(question)):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """Visit vertices in random order; an undominated one gets itself or a random neighbour
    into the set. Sometimes extra vertices, sometimes one dropped."""
    order = vertices(question)
    rng.shuffle(order)
    edges = edge_set(question)
    chosen: set[int] = set()
    for v in order:
        closed = [v] + [u for u in order if frozenset((u, v)) in edges]
        if not chosen & set(closed):
            chosen.add(rng.choice(closed))
    if rng.random() < 0.3:
        chosen |= set(rng.sample(order, rng.randint(1, 2)))
    answer = sorted(chosen)
    if rng.random() < 0.2:
        answer.pop(rng.randrange(len(answer)))
    rng.shuffle(answer)
    return answer
