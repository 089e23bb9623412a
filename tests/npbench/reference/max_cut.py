"""Independent reference for max_cut: feasibility written out plainly, and random answers."""

import random


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    n = question["num_vertices"]
    if not isinstance(answer, list) or len(answer) != 2:
        return False, None
    if not all(isinstance(side, list) for side in answer):
        return False, None
    ids = answer[0] + answer[1]
    if any(type(v) is not int for v in ids) or sorted(ids) != list(range(n)):
        return False, None
    first = set(answer[0])
    value = 0
    for key, weight in question["edges"].items():
        u, v = (int(part) for part in key.split("-"))
        if (u in first) != (v in first):
            value += weight
    return True, value


def random_answer(question: dict, rng: random.Random) -> list[list[int]]:
    n = question["num_vertices"]
    bits = [rng.randint(0, 1) for _ in range(n)]
    if rng.random() < 0.5:  # greedy single-vertex moves: good answers, sometimes optimal
        _climb(question, bits)
    answer = [[v for v in range(n) if bits[v] == 0], [v for v in range(n) if bits[v] == 1]]
    roll = rng.random()
    if roll < 0.1:  # a vertex on both sides
        answer[1].append(rng.choice(answer[0] or [0]))
    elif roll < 0.2:  # a vertex missing
        side = answer[0] if answer[0] else answer[1]
        side.pop(rng.randrange(len(side)))
    elif roll < 0.25:  # an id out of range
        answer[0].append(n)
    return answer


def _climb(question: dict, bits: list[int]) -> None:
    edges = [(*map(int, key.split("-")), w) for key, w in question["edges"].items()]
    improved = True
    while improved:
        improved = False
        for v in range(len(bits)):
            gain = sum(w if bits[a] == bits[b] else -w for a, b, w in edges if v in (a, b))
            if gain > 0:
                bits[v] ^= 1
                improved = True
