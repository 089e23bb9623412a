"""``math:synthetic``: procedurally generated math problems with exactly computed answers, offline.

Three kinds, drawn with equal probability (or one, with ``math:synthetic?kind=fractions``):

- ``arithmetic``: integer expressions with ``+ - *`` and at most one pair of parentheses;
- ``fractions``: ``a/b ∘ c/d`` with ``∘`` one of ``+ - *``; the answer is the reduced fraction;
- ``linear``: ``a·x + b = c`` (or ``a·x + b = c·x + d``), solved for x (an integer or a fraction).

Every answer is computed with :class:`fractions.Fraction` and written as an integer or ``p/q``.
Problem ``seed`` is the same on every machine (its own ``random.Random``). Seeds from
``HELDOUT_SEED_START`` (``dmpo.npbench.splits.EVAL_SEED_START``) draw until they get a held-out
question, other seeds until they get another one (``dmpo.sources.base.fits_split``), so the
held-out problems are disjoint from the training problems, not only their seeds.
"""

from __future__ import annotations

import random
from fractions import Fraction

from dmpo.errors import DmpoError
from dmpo.sources.base import fits_split

KINDS: tuple[str, ...] = ("arithmetic", "fractions", "linear")


def fraction_text(value: Fraction) -> str:
    """``3`` or ``-5/6``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def problem(seed: int, kind: str = "mixed") -> tuple[str, str, str]:
    """(question, answer, kind) of problem ``seed``."""
    if kind != "mixed" and kind not in KINDS:
        raise DmpoError(f"math:synthetic kind must be one of {['mixed', *KINDS]}, got {kind!r}")
    rng = random.Random(f"dmpo/math-synthetic/{kind}/{seed}")
    while True:  # on average 4/3 draws (train) or 4 (held out)
        chosen = rng.choice(KINDS) if kind == "mixed" else kind
        question, answer = _MAKERS[chosen](rng)
        if fits_split(seed, question):
            return question, fraction_text(answer), chosen


def _arithmetic(rng: random.Random) -> tuple[str, Fraction]:
    a, b, c = (rng.randint(1, 20) for _ in range(3))
    op1, op2 = rng.choice("+-*"), rng.choice("+-*")
    shape = rng.randrange(3)
    if shape == 0:
        text, value = f"{a} {op1} {b}", _apply(a, op1, b)
    elif shape == 1:  # a op1 b op2 c with the usual precedence
        text = f"{a} {op1} {b} {op2} {c}"
        if op2 == "*" and op1 != "*":
            value = _apply(a, op1, b * c)
        else:
            value = _apply(_apply(a, op1, b), op2, c)
    else:
        text, value = f"({a} {op1} {b}) {op2} {c}", _apply(_apply(a, op1, b), op2, c)
    return f"Compute {text}.", Fraction(value)


def _apply(x: int | Fraction, op: str, y: int | Fraction) -> int | Fraction:
    return x + y if op == "+" else x - y if op == "-" else x * y


def _fractions(rng: random.Random) -> tuple[str, Fraction]:
    a, c = rng.randint(1, 9), rng.randint(1, 9)
    b, d = rng.randint(2, 12), rng.randint(2, 12)
    op = rng.choice("+-*")
    value = _apply(Fraction(a, b), op, Fraction(c, d))
    return (f"Compute {a}/{b} {op} {c}/{d}. Give the answer as a fraction in lowest "
            "terms.", Fraction(value))


def _linear(rng: random.Random) -> tuple[str, Fraction]:
    a = rng.choice([n for n in range(-9, 10) if n != 0])
    b, c = rng.randint(-20, 20), rng.randint(-20, 20)
    if rng.random() < 0.5:
        return f"Solve for x: {_term(a)} {_signed(b)} = {c}.", Fraction(c - b, a)
    other = rng.choice([n for n in range(-9, 10) if n not in (0, a)])
    d = rng.randint(-20, 20)
    return (f"Solve for x: {_term(a)} {_signed(b)} = {_term(other)} {_signed(d)}.",
            Fraction(d - b, a - other))


def _term(a: int) -> str:
    return "x" if a == 1 else "-x" if a == -1 else f"{a}x"


def _signed(b: int) -> str:
    return f"+ {b}" if b >= 0 else f"- {-b}"


_MAKERS = {"arithmetic": _arithmetic, "fractions": _fractions, "linear": _linear}
