"""Independent reference for tsp: feasibility written out plainly, and random answers."""

import random


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    n = len(question)
    if not isinstance(answer, list) or any(type(v) is not int for v in answer):
        return False, None
    if len(answer) != n + 1 or answer[0] != answer[-1]:
        return False, None
    if sorted(answer[:n]) != list(range(n)):
        return False, None
    length = 0
    for k in range(n):
        length += question[str(answer[k])][str(answer[k + 1])]
    return True, length


def random_answer(question: dict, rng: random.Random) -> list[int]:
    n = len(question)
    order = list(range(n))
    rng.shuffle(order)
    if rng.random() < 0.5:  # 2-opt: good tours, sometimes optimal
        _two_opt(question, order)
    tour = [*order, order[0]]
    roll = rng.random()
    if roll < 0.1:  # not closed
        tour.pop()
    elif roll < 0.2:  # a city twice
        tour[rng.randrange(1, n)] = tour[0]
    elif roll < 0.25:  # closed at the wrong city
        tour[-1] = tour[1]
    return tour


def _two_opt(question: dict, order: list[int]) -> None:
    def d(a: int, b: int) -> int:
        return question[str(a)][str(b)]

    n = len(order)
    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            for j in range(i + 2, n if i else n - 1):
                a, b, c, e = order[i], order[i + 1], order[j], order[(j + 1) % n]
                if d(a, c) + d(b, e) < d(a, b) + d(c, e):
                    order[i + 1 : j + 1] = reversed(order[i + 1 : j + 1])
                    improved = True
