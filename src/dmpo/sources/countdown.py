"""Every solution of a small countdown instance, by exhaustive search.

Countdown (reasoning-gym's ``countdown``): combine *all* the given numbers, each once, with
``+ - * /`` and parentheses into an expression equal to the target. Its scorer accepts any
such expression, so an instance has many correct answers: the source of an SFT warm start
that teaches several of them (``dmpo.pipeline.sft``) and of the distinct-correct-answers
metric's ceiling.

:func:`countdown_solutions` enumerates every binary expression tree over the numbers (every
order, every operator, every shape), evaluates it exactly with fractions (a division by zero
discards the tree), and writes each solution with the fewest parentheses its meaning needs:
``3*(4+5)``, ``3*4+5``, ``12-(4-5)``. Expressions with different text are different answers,
as the distinct-answer metrics count them (``3+4`` and ``4+3`` are two).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction

from dmpo.errors import DmpoError

MAX_NUMBERS = 5  # 5 numbers: 120 orders × 4^4 operators × 14 shapes ≈ 430,000 trees
OPERATORS = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _trees(values: Sequence[tuple[Fraction, str, int]]):
    """(value, text, precedence) of every expression over ``values`` in this order (a leaf has
    precedence 3)."""
    if len(values) == 1:
        yield values[0]
        return
    for split in range(1, len(values)):
        lefts = list(_trees(values[:split]))
        rights = list(_trees(values[split:]))
        for (lv, lt, lp), (rv, rt, rp) in itertools.product(lefts, rights):
            for op in OPERATORS:
                if op == "/" and rv == 0:
                    continue
                value = {"+": lv + rv, "-": lv - rv, "*": lv * rv, "/": lv / rv if rv else None}[op]
                prec = _PRECEDENCE[op]
                left = lt if lp >= prec else f"({lt})"
                # the right operand of - and / (and any lower-precedence one) needs its parentheses
                right = rt if rp > prec or (rp == prec and op in "+*") else f"({rt})"
                yield value, f"{left}{op}{right}", prec


def countdown_solutions(numbers: Sequence[int], target: int, *, limit: int | None = None) -> list[str]:
    """Distinct expressions that use every number of ``numbers`` once and equal ``target``, in
    a fixed order (sorted by length, then text); at most ``limit`` of them."""
    numbers = [int(n) for n in numbers]
    if not numbers:
        raise DmpoError("countdown needs at least one number")
    if len(numbers) > MAX_NUMBERS:
        raise DmpoError(f"countdown_solutions searches at most {MAX_NUMBERS} numbers, got {len(numbers)}")
    goal = Fraction(int(target))
    found: set[str] = set()
    for order in set(itertools.permutations(numbers)):
        leaves = [(Fraction(n), str(n), 3) for n in order]
        found.update(text for value, text, _ in _trees(leaves) if value == goal)
    solutions = sorted(found, key=lambda text: (len(text), text))
    return solutions if limit is None else solutions[:limit]
