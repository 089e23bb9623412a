"""Independent reference for feedback_vertex_set: feasibility written out plainly (a graph is a
forest iff repeatedly deleting vertices of degree ≤ 1 deletes everything), and random answers."""

import random

from tests.npbench.reference._graph import edge_set, is_id_list, vertices


def _acyclic(kept: set[int], edges: set[frozenset[int]]) -> bool:
    kept = set(kept)
    live = {e for e in edges if e <= kept}
    while kept:
        leaf = next((v for v in kept if sum(v in e for e in live) <= 1), None)
        if leaf is None:
            return False
        kept.discard(leaf)
        live = {e for e in live if leaf not in e}
    return True


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    if not is_id_list(answer, len(question)):
        return False, None
    if not _acyclic(set(vertices(question)) - set(answer), edge_set(question)):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """Keep vertices in random order while the kept graph stays acyclic, remove the rest; then
    sometimes extra vertices removed, sometimes one put back."""
    order = vertices(question)
    rng.shuffle(order)
    edges = edge_set(question)
    kept: set[int] = set()
    for v in order:
        if _acyclic(kept | {v}, edges):
            kept.add(v)
    removed = [v for v in order if v not in kept]
    if rng.random() < 0.3:
        removed += rng.sample(sorted(kept), min(len(kept), rng.randint(1, 2)))
    if removed and rng.random() < 0.2:
        removed.pop(rng.randrange(len(removed)))
    return removed
