"""Tolerant parsing of untrusted model text. Nothing here raises on any input.

A model's answer is the text after the **last** ``Answer:`` of its completion. Formatting is
forgiven (``**Answer:**``, a newline after the colon, backticks, ``\\boxed{...}``, a trailing
period, quoted ids, ``a -> b -> c`` arrows, ``[...]``/``(...)``/``{...}``); nothing is ever
evaluated. The structure parser returns nested lists of ``int`` or ``None``: floats, bools,
expressions and words are not ids.
"""

from __future__ import annotations

import re
from typing import Any

# Past these the text is not a plausible answer for any instance we generate.
MAX_ANSWER_CHARS = 200_000
MAX_DEPTH = 4
MAX_DIGITS = 12

_ANSWER_RE = re.compile(r"answer\s*\**\s*[:：]", re.IGNORECASE)
_OPEN = {"[": "]", "(": ")", "{": "}"}
_CLOSE = set(_OPEN.values())
_BRACKET_RE = re.compile(r"[\[\]\(\)\{\}]")
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<open>[\[\(\{])
      | (?P<close>[\]\)\}])
      | (?P<sep>,|;|->|→|=>|⟶)
      | (?P<int>[+-]?\d+(?![\d.])|"[+-]?\d+"|'[+-]?\d+')
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
# Fast path for the common case, a flat bracketed list of plain ints: "[0, 2, 1]", "(3,4)".
_FLAT_RE = re.compile(r"([\[\(]?)\s*(?:[+-]?\d{1,12}\s*,\s*)*(?:[+-]?\d{1,12}\s*,?)?\s*([\]\)]?)")
_BRACKET_PAIRS = {"[": "]", "(": ")", "": ""}
_INT_RE = re.compile(r"[+-]?\d+")
_STRIP_CHARS = " \t\r\n*`\"'"
# After a bracketed group, these continue the answer on the same line: an operator (an
# expression, rejected later), another group, or ", (" (bare tuples "(0, 1), (2, 3)").
_CONTINUES_RE = re.compile(r"\s*(?:[-+*/%^&|\[\(\{\d]|[,;]\s*[\[\(\{])")


def extract_answer(text: Any) -> str | None:
    """The answer text after the last ``Answer:``, cleaned of markdown; None if there is none."""
    if not isinstance(text, str):
        return None
    last = _last_answer_marker(text)
    if last is None:
        return None
    rest = text[last.end() :].lstrip(_STRIP_CHARS)
    rest = _unbox(rest)
    if rest[:1] in _OPEN:
        end = _balanced_end(rest)
        line_rest = rest[end:].split("\n", 1)[0] if end else ""
        # "[0]+[3,3]" is an expression, not an answer followed by prose: keep it whole so
        # that it fails to parse instead of scoring as "[0]".
        if end and not _CONTINUES_RE.match(line_rest):
            rest = rest[:end]
        else:
            rest = rest.split("\n", 1)[0]
    else:
        rest = rest.split("\n", 1)[0]
    rest = rest.strip(_STRIP_CHARS).rstrip(".").strip(_STRIP_CHARS)
    if not rest or len(rest) > MAX_ANSWER_CHARS:
        return None
    return rest


def _last_answer_marker(text: str) -> re.Match | None:
    # Scanning backwards from the end is much cheaper than finding every match in a long
    # completion; the validator runs inside the training loop.
    end = len(text)
    while end > 0:
        idx = max(text.rfind("nswer", 0, end), text.rfind("NSWER", 0, end))
        if idx < 1:
            return None
        if text[idx - 1] in "Aa":
            match = _ANSWER_RE.match(text, idx - 1)
            if match:
                return match
        end = idx + 4  # the next search ends before this "nswer"'s last letter
    return None


def _unbox(s: str) -> str:
    if s.startswith("$"):
        s = s.lstrip("$ ")
    if s.startswith("\\boxed{"):
        inner = s[len("\\boxed") :]
        end = _balanced_end(inner)
        if end:
            return inner[1 : end - 1].strip()
    return s


def _balanced_end(s: str) -> int:
    """Index just past the bracket that closes ``s[0]``, or 0 if it never closes."""
    depth = 0
    for match in _BRACKET_RE.finditer(s, 0, MAX_ANSWER_CHARS + 1):  # jump bracket to bracket
        if match.group() in _OPEN:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    return 0


def parse_structure(answer: Any) -> list | None:
    """Parse ``[1, 2]``, ``(1, 2)``, ``1 -> 2``, ``[[0, 1], [2]]`` or ``[(0, 1, 540)]`` into
    nested lists of ints; a bare sequence at the top level is a list. None when anything else
    appears (floats, bools, words, operators, unbalanced or mismatched brackets)."""
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None
    flat = _FLAT_RE.fullmatch(answer)
    if flat and _BRACKET_PAIRS.get(flat.group(1)) == flat.group(2):
        return [int(v) for v in _INT_RE.findall(answer)]
    tokens = _TOKEN_RE.findall(answer)
    if not tokens:
        return None
    root: list = []
    stack: list[tuple[list, str]] = []
    current = root
    expect_value = True  # after a value, a separator or a close must come (spaces also separate)
    for open_, close, _sep, integer, bad in tokens:
        if bad:
            return None
        if integer:
            digits = integer.strip("\"'")
            if len(digits.lstrip("+-")) > MAX_DIGITS:
                return None
            current.append(int(digits))
            expect_value = False
        elif open_:
            if len(stack) >= MAX_DEPTH:
                return None
            child: list = []
            current.append(child)
            stack.append((current, _OPEN[open_]))
            current = child
            expect_value = True
        elif close:
            if not stack or stack[-1][1] != close:
                return None
            current = stack.pop()[0]
            expect_value = False
        else:  # separator
            if expect_value:  # a separator after another or after an opening bracket
                return None
            expect_value = True
    if stack:
        return None
    # "[1, 2]" parses as [[1, 2]]: unwrap a single bracketed top-level value.
    if len(root) == 1 and isinstance(root[0], list):
        return root[0]
    return root


def parse_int_list(answer: Any) -> list[int] | None:
    """A flat list of ints (``[0, 2, 1]``, ``0 -> 2 -> 1``, ``(0, 2)``), else None."""
    value = parse_structure(answer)
    if value is None or any(isinstance(v, list) for v in value):
        return None
    return value


def is_int_id(value: Any) -> bool:
    """True for real ints only: bools and floats are not ids."""
    return type(value) is int
