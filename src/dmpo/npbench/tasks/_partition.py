"""Answers that split the vertices 0..n-1 into two sides, ``[[side A], [side B]]``: parsing,
the strict partition check, the cut weight, formatting and a canonical form; shared by
min_cut and max_cut.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from dmpo.npbench.parsing import MAX_DIGITS, parse_structure

# The usual well-formed answer, "[[0, 2], [1, 3]]", is read with one regex and str.split
# (the general tokenizer costs ~1 µs per id); anything else, or anything the split cannot
# read ("[1 2]", "[1,,2]", quoted ids, arrows), goes through parse_structure.
_TWO_SIDES = re.compile(r"\[\s*+\[([0-9\s,]*+)\]\s*+,\s*+\[([0-9\s,]*+)\]\s*+\]")
_TOO_LONG = re.compile(rf"[0-9]{{{MAX_DIGITS + 1}}}")


def split_ids(text: str) -> list[int]:
    """``"0, 2 ,1"`` as ``[0, 2, 1]``, ``""`` as ``[]``; ValueError for anything else."""
    return list(map(int, text.split(","))) if text.strip() else []


def parse_sides(text: str) -> list[list[int]] | None:
    """``[[0, 2], [1, 3]]`` (or ``(0, 2), (1, 3)``, quoted ids, ...) as a list of sides, each a
    flat list of ints; None for any other shape. The number of sides is left to the check, so
    that a three-sided answer reads as well formed but invalid."""
    if isinstance(text, str):
        match = _TWO_SIDES.fullmatch(text)
        if match and not _TOO_LONG.search(text):
            try:
                return [split_ids(match[1]), split_ids(match[2])]
            except ValueError:
                pass
    value = parse_structure(text)
    if not value or not all(isinstance(side, list) for side in value):
        return None
    if any(isinstance(v, list) for side in value for v in side):
        return None
    return value


def partition_reason(answer: Any, n: int) -> str:
    """'' if ``answer`` is two lists of real int ids that together hold every vertex 0..n-1
    exactly once (a side may be empty), else the reason it is not."""
    if isinstance(answer, list) and len(answer) == 2 and all(isinstance(side, list) for side in answer):
        ids = answer[0] + answer[1]
        # n distinct ints from 0..n-1 are exactly the vertices.
        if len(ids) == n and set(map(type, ids)) == {int} and len(set(ids)) == n and min(ids) == 0 and max(ids) == n - 1:
            return ""
    return _why_not_a_partition(answer, n)


def _why_not_a_partition(answer: Any, n: int) -> str:
    if not isinstance(answer, list) or len(answer) != 2:
        return "answer must be exactly two sides [[...], [...]]"
    if not all(isinstance(side, list) for side in answer):
        return "each side must be a list of vertex ids"
    seen: set[int] = set()
    for v in answer[0] + answer[1]:
        if type(v) is not int:
            return f"{v!r} is not an integer id"
        if not 0 <= v < n:
            return f"id {v} out of range 0..{n - 1}"
        if v in seen:
            return f"id {v} appears more than once"
        seen.add(v)
    return f"vertices {sorted(set(range(n)) - seen)[:10]} are on neither side"


def cut_weight(weights: np.ndarray, side_a: list[int]) -> int:
    """Total weight of the edges between ``side_a`` and the other vertices: xᵀ W (1 - x) for
    the indicator x of side A and a symmetric float64 weight matrix W (exact for integer
    weights below 2⁵³)."""
    x = np.zeros(len(weights))
    x[side_a] = 1.0
    return int(x @ weights @ (1.0 - x))


def format_sides(answer: list[list[int]]) -> str:
    return "[" + ", ".join("[" + ", ".join(str(v) for v in side) + "]" for side in answer) + "]"


def canonical_sides(answer: list[list[int]]) -> tuple:
    """Order-free form: each side sorted, and the sides as an unordered (sorted) pair."""
    return tuple(sorted(tuple(sorted(side)) for side in answer))
