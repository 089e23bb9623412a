"""Independent reference for hamiltonian_cycle: feasibility written out plainly, and random
answers."""

import random


def _edges(question: dict) -> set[tuple[int, int]]:
    edges = set()
    for key, neighbours in question.items():
        for u in neighbours:
            edges.add((int(key), u))
            edges.add((u, int(key)))
    return edges


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    n = len(question)
    if not isinstance(answer, list) or any(type(v) is not int for v in answer):
        return False, None
    body = answer[:-1]
    if len(body) < 3 or len(set(body)) != len(body) or answer[-1] != answer[0]:
        return False, None
    if not all(0 <= v < n for v in body):
        return False, None
    edges = _edges(question)
    if any((answer[k], answer[k + 1]) not in edges for k in range(len(body))):
        return False, None
    return True, len(answer)


def random_answer(question: dict, rng: random.Random) -> list[int]:
    """A random walk that stops when it can close a cycle (feasible, of varying length), or a
    corrupted one."""
    n = len(question)
    edges = _edges(question)
    start = rng.randrange(n)
    path = [start]
    while True:
        options = [v for v in question[str(path[-1])] if v not in path]
        can_close = len(path) >= 3 and (path[-1], start) in edges
        if can_close and (not options or rng.random() < 0.3):
            break
        if not options:
            break
        path.append(rng.choice(options))
    answer = [*path, start]
    roll = rng.random()
    if roll < 0.1:
        answer.pop()
    elif roll < 0.2 and len(answer) > 2:
        answer[1] = answer[0]
    elif roll < 0.25:
        answer = [start, rng.randrange(n), start]
    return answer
