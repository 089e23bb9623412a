"""Independent reference for graph_coloring: feasibility written out plainly, and random answers."""

import random

from tests.npbench.reference._graph import edge_set, vertices


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not isinstance(answer, list) or len(answer) != len(question):
        return False, None
    if not all(type(c) is int and c >= 1 for c in answer):
        return False, None
    for edge in edge_set(question):
        u, v = sorted(edge)
        if answer[u] == answer[v]:
            return False, None
    return True, len(set(answer))


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """A greedy colouring in random vertex order (feasible, of varying quality), colours then
    renamed at random; sometimes one vertex recoloured at random, or a colour ≤ 0."""
    order = vertices(question)
    rng.shuffle(order)
    edges = edge_set(question)
    colour: dict[int, int] = {}
    for v in order:
        taken = {colour[u] for u in colour if frozenset((u, v)) in edges}
        options = [c for c in range(1, len(order) + 1) if c not in taken]
        colour[v] = options[0] if rng.random() < 0.8 else rng.choice(options)
    names = list(range(1, len(order) + 1))
    rng.shuffle(names)
    answer = [names[colour[v] - 1] for v in sorted(colour)]
    roll = rng.random()
    if roll < 0.15:
        answer[rng.randrange(len(answer))] = rng.randint(1, 3)
    elif roll < 0.2:
        answer[rng.randrange(len(answer))] = rng.choice([0, -1])
    return answer
