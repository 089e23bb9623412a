"""Independent reference for min_cut: feasibility written out plainly, and random answers."""

import random


def feasible(question: dict, answer: object) -> tuple[bool, float | None]:
    n = len(question)
    if not isinstance(answer, list) or len(answer) != 2:
        return False, None
    if not all(isinstance(side, list) for side in answer):
        return False, None
    first, second = answer
    if any(type(v) is not int for v in first + second):
        return False, None
    if sorted(first + second) != list(range(n)):
        return False, None
    if sorted([len(first), len(second)]) != [n // 2, n - n // 2]:
        return False, None
    cut = 0
    for u in first:
        for v in second:
            cut += question[str(u)].get(str(v), 0)
    return True, cut


def random_answer(question: dict, rng: random.Random) -> list[list[int]]:
    n = len(question)
    order = list(range(n))
    rng.shuffle(order)
    first, second = order[: n // 2], order[n // 2 :]
    if rng.random() < 0.5:  # improving swaps: good answers, sometimes optimal
        _swap_down(question, first, second)
    answer = [first, second] if rng.random() < 0.5 else [second, first]
    roll = rng.random()
    if roll < 0.1:  # unbalanced
        answer[1].append(answer[0].pop())
    elif roll < 0.2:  # a vertex on both sides
        answer[0][0] = answer[1][0]
    elif roll < 0.25:  # an id out of range
        answer[1][-1] = n
    return answer


def _swap_down(question: dict, first: list[int], second: list[int]) -> None:
    """Kernighan-Lin style: swap a pair across while that lowers the cut."""
    n = len(question)
    w = [[question[str(u)].get(str(v), 0) for v in range(n)] for u in range(n)]
    side = {v: 0 for v in first} | {v: 1 for v in second}
    # gain[v]: how much the cut drops if v alone changes side (external - internal weight)
    gain = [sum(w[v][x] if side[x] != side[v] else -w[v][x] for x in range(n) if x != v) for v in range(n)]
    improved = True
    while improved:
        improved = False
        for a in range(len(first)):
            for b in range(len(second)):
                u, v = first[a], second[b]
                if gain[u] + gain[v] - 2 * w[u][v] > 0:
                    first[a], second[b] = v, u
                    side[u], side[v] = 1, 0
                    for x in range(n):
                        if x not in (u, v):
                            # x's edge to u and to v each flipped between internal and external
                            gain[x] += 2 * w[x][u] if side[x] == 0 else -2 * w[x][u]
                            gain[x] += 2 * w[x][v] if side[x] == 1 else -2 * w[x][v]
                    gain[u] = -gain[u] + 2 * w[u][v]
                    gain[v] = -gain[v] + 2 * w[u][v]
                    improved = True
