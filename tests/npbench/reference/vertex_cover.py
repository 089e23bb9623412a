"""Independent reference for vertex_cover: feasibility written out plainly, and random answers."""

import random

from tests.npbench.reference._graph import edge_set, is_id_list, vertices


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not is_id_list(answer, len(question)):
        return False, None
    if any(not (edge & set(answer)) for edge in edge_set(question)):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """For each edge in random order, one endpoint unless already covered; then sometimes extra
    vertices, sometimes one vertex dropped."""
    edges = [sorted(e) for e in edge_set(question)]
    rng.shuffle(edges)
    cover: set[int] = set()
    for u, v in edges:
        if u not in cover and v not in cover:
            cover.add(rng.choice((u, v)))
    if rng.random() < 0.3:
        cover |= set(rng.sample(vertices(question), rng.randint(1, 3)))
    answer = sorted(cover)
    if answer and rng.random() < 0.2:
        answer.pop(rng.randrange(len(answer)))
    rng.shuffle(answer)
    return answer
