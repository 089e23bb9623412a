"""Tolerant parsing of untrusted model text, in linear time. Nothing here raises on any input.

A model's answer is the text after the **last** ``Answer:`` of its completion (the word in any
letter case, then optional spaces and ``*``, then ``:`` or ``：``).

Forgiven: markdown around the answer (``**Answer:** **[1, 2]**``, backticks, quotes, ``$``), a
newline or any Unicode space (no-break, em, ideographic; zero-width characters are dropped)
after the colon or inside the list, ``\\boxed{...}``, a trailing period, quoted ids,
``a -> b -> c`` arrows, ``[...]``/``(...)``/``{...}``, bare tuples ``(0, 1), (2, 3)`` (also
across lines after the comma), a list that spans several lines, prose on the same line before
the list (``Answer: the best I found is [0, 2, 1, 0]``) and after it (``[3, 5, 6] (this is
optimal)``, ``[3, 5, 6] - total 42``, ``[3, 5, 6], which ...``), and ``Impossible`` followed by
punctuation and prose (not ``Impossible to say``).

Refused, never evaluated: floats, bools, words and expressions as ids (``[0]+[3,3]``,
``[1]*2``, ``1+2``, ``[0] - 3``, ``[1].5``): an operator after the list followed by a number,
a sign, a quote or a bracket keeps the whole line, which the strict parser then rejects (so
``[1, 2] - 5 vertices`` is refused too: write prose after a dash as words). Repeated or
out-of-range ids are the validators' business.

Bounds: every step is one pass over the text, with no regex that can backtrack over the same
characters twice (the marker search is one greedy match that gives characters back one at a
time; every other quantifier is possessive or followed by a character it cannot match, and
bracket groups are matched by one regex of bounded depth). Only the ``MAX_ANSWER_CHARS``
characters after the last marker are read: an answer that does not begin and end within them
is refused, and so is one with more than ``MAX_NUMBERS`` numbers or ``MAX_GROUPS`` bracketed
groups, nesting deeper than ``MAX_DEPTH`` or an id longer than ``MAX_DIGITS`` digits. Judging a
completion therefore costs time linear in its length for the marker search (a few ms per MB)
and at most a constant for everything after it; ``benchmarks/parse_worst.py`` measures the
worst cases (BENCHMARKS.md §7).
"""

from __future__ import annotations

import re
from typing import Any

# Past these the text is not a plausible answer for any instance we generate: the longest
# answer of a ``bench`` instance is a few hundred characters.
MAX_ANSWER_CHARS = 20_000
MAX_NUMBERS = 1_000  # numbers in one answer (a bench answer has at most about 60)
MAX_GROUPS = 300  # bracketed groups in one answer (a bench schedule has at most 11)
MAX_DEPTH = 4
MAX_DIGITS = 12

# The last marker: one match on a lower-cased copy of the text; ``.*`` runs to the end, then
# gives back one character at a time until the marker matches there (the marker's own
# quantifiers are possessive), so each position is tried once.
_LAST_MARKER_RE = re.compile(r"(?s:.*)answer\s*+\**+\s*+[:：]")

_OPEN = {"[": "]", "(": ")", "{": "}"}
_OPEN_RE = re.compile(r"[\[\(\{]")

# A bracketed group nested at most _GROUP_DEPTH deep (brackets of any kind; the structure
# parser checks that they pair up), as one regex built level by level: possessive throughout,
# so one pass, in C.
_GROUP_DEPTH = MAX_DEPTH + 2  # room for \\boxed{} and a remark's own brackets


def _group_pattern(depth: int) -> str:
    other, opener, closer = r"[^\[\]\(\)\{\}]", r"[\[\(\{]", r"[\]\)\}]"
    inner = other + "*+"
    for _ in range(depth):
        inner = "(?:" + other + "++|" + opener + inner + closer + ")*+"
    return opener + inner + closer


_GROUP_RE = re.compile(_group_pattern(_GROUP_DEPTH - 1))
SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # every Unicode space
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters, deleted
# Markdown and quoting around an answer.
_TRIM = SPACES + "*`\"'$"
_LEAD_RE = re.compile(rf"[{re.escape(_TRIM)}]*+")
# After a list: spaces on the same line, then closing markdown ("**", "`", quotes, "$", "_", "~").
_AFTER_RE = re.compile(r"[^\S\n]*+[*`\"'$_~]*+[^\S\n]*+")
_SPACES_RE = re.compile(r"\s*+")
# What a further group of the same answer may hold (bare tuples "(0, 1) (2, 3)"); a group with
# anything else ("(this is optimal)", "(3 vertices)") is a remark.
_STRUCTURAL_RE = re.compile(r"[0-9\s,;\[\](){}'\"+\-=>→⟶]*+")
# An operator after the list continues it when a number, a sign, a quote or a bracket follows.
_OPERATOR_RE = re.compile(r"[+\-*/%^&|=<>→⟶.]++[^\S\n]*+")
_CONTINUES = frozenset("0123456789+-\"'[({")
_WORD_RE = re.compile(r"[^\W\d_]++")
_AFTER_IMPOSSIBLE = frozenset(".,!;:(—–-")

# Fast path for the common case, a flat list of plain ints: "[0, 2, 1]", "(3,4)", "{1 2}".
_FLAT_RE = re.compile(
    r"([\[\(\{]?+)\s*+(?:[+-]?+[0-9]{1,12}+(?:\s*+[,;]\s*+|\s++))*+"
    r"(?:[+-]?+[0-9]{1,12}+\s*+[,;]?+)?+\s*+([\]\)\}]?+)")
_BRACKET_PAIRS = {"[": "]", "(": ")", "{": "}", "": ""}
_INT_RE = re.compile(r"[+-]?[0-9]+")
# The general parser: first two C-speed refusals (a character that cannot be part of an
# answer: letters, ".", "*", ...; a sign glued to a value before it, "1+2", "[0]-[1]", or not
# followed by a digit, and "=" or ">" outside an arrow), then one findall of tokens (spaces
# separate like commas).
_BAD_CHAR_RE = re.compile(r"[^0-9\s,;\[\](){}'\"+\-=>→⟶]")
_BAD_SIGN_RE = re.compile(r"""[0-9'")\]}](?:\+|-(?!>))|\+(?![0-9])|-(?![0-9>])|=(?!>)|(?<![-=])>""")
_TOKEN_RE = re.compile(r"""[+-]?+[0-9]++|"[+-]?+[0-9]++"|'[+-]?+[0-9]++'|->|=>|\S""")
_CLOSERS = frozenset("])}")
_SEPARATORS = frozenset([",", ";", "->", "→", "=>", "⟶"])
_DIGITS = frozenset("0123456789")
# Matches when the text holds more than MAX_NUMBERS runs of digits (stops at the one too many).
_TOO_MANY_NUMBERS_RE = re.compile(r"(?:[^0-9]*+[0-9]++){" + str(MAX_NUMBERS + 1) + "}")


def extract_answer(text: Any) -> str | None:
    """The answer text after the last ``Answer:``, cleaned of markdown and prose; None if there
    is none or it is past the bounds (``within_bounds``; it must also begin and end within
    ``MAX_ANSWER_CHARS`` characters of the marker)."""
    if not isinstance(text, str):
        return None
    end = _last_marker_end(text)
    if end is None:
        return None
    window = text[end : end + MAX_ANSWER_CHARS + 1]
    truncated = len(window) > MAX_ANSWER_CHARS
    if not window.isascii():
        for char in _INVISIBLE:
            if char in window:
                window = window.replace(char, "")
    answer = _answer_in(window, truncated)
    if not answer or not within_bounds(answer):
        return None
    return answer


def within_bounds(answer: str) -> bool:
    """Whether an answer text is short enough to be read: at most MAX_ANSWER_CHARS characters,
    MAX_NUMBERS numbers and MAX_GROUPS bracketed groups. One C-speed pass."""
    return (len(answer) <= MAX_ANSWER_CHARS
            and answer.count("[") + answer.count("(") + answer.count("{") <= MAX_GROUPS
            and not _TOO_MANY_NUMBERS_RE.match(answer))


def _last_marker_end(text: str) -> int | None:
    lower = text.lower()
    if len(lower) != len(text):  # "İ" is the one character whose lower case is two long
        lower = text.replace("\u0130", "I").lower()
    match = _LAST_MARKER_RE.match(lower)
    return match.end() if match else None


def _answer_in(s: str, truncated: bool, boxed: bool = False) -> str | None:
    """The answer at the start of ``s`` (the text after the marker); ``boxed`` once inside a
    ``\\boxed{}`` (which is opened at most once, so this recurses at most twice)."""
    s = s[_LEAD_RE.match(s).end() :]
    if not boxed and s.startswith("\\boxed{"):  # one box holds the whole answer
        end = _balanced_end(s, 6)
        if end:
            return _answer_in(s[7 : end - 1], False, boxed=True)
    if not s:
        return None
    if s[0] in _OPEN:
        return _group_answer(s, 0, truncated)
    line_end = s.find("\n")
    if line_end < 0:
        if truncated:
            return None
        line_end = len(s)
    word = _WORD_RE.match(s, 0, line_end)
    if word:
        rest = s[word.end() : line_end].lstrip(_TRIM)
        if word.group().lower() == "impossible" and (not rest or rest[0] in _AFTER_IMPOSSIBLE):
            return word.group()  # "Impossible.", "Impossible (no set has 7)"; not "Impossible to say"
        # Prose before the list on the same line: the answer is the first bracketed group.
        opener = _OPEN_RE.search(s, word.end(), line_end)
        if opener:
            k = opener.start()
            if not boxed and s.endswith("\\boxed", 0, k):
                return _answer_in(s[k - 6 :], truncated, boxed=False)
            return _group_answer(s, k, truncated)
    return _clean(s[:line_end])


def _group_answer(s: str, start: int, truncated: bool) -> str | None:
    """The answer that starts with the bracket at ``s[start]``: that group, together with any
    further groups of bare tuples, or the whole line when an operator follows (an expression,
    which the strict parser rejects); prose and markdown after it are dropped."""
    end = _balanced_end(s, start)
    if not end:
        return _line_from(s, start, truncated)
    n = len(s)
    for _ in range(MAX_GROUPS):
        j = _AFTER_RE.match(s, end).end()
        if j >= n:
            return None if truncated else s[start:end]
        c = s[j]
        if c == "\n":
            return s[start:end]
        if c in ",;":
            k = _SPACES_RE.match(s, j + 1).end()  # bare tuples may continue on the next line
            if k < n and s[k] in _OPEN:
                j = k
                c = s[j]
            else:
                return s[start:end]
        if c in _OPEN:
            group_end = _balanced_end(s, j)
            if group_end and _STRUCTURAL_RE.fullmatch(s, j, group_end):
                end = group_end  # "(0, 1), (2, 3)": one answer
                continue
            return s[start:end]  # "(this is optimal)": a remark
        if c.isdigit():
            return _line_from(s, start, truncated)  # "[0] 3": not a list followed by prose
        operator = _OPERATOR_RE.match(s, j)
        if operator:
            k = operator.end()
            if k >= n:
                return None if truncated else s[start:end]
            if s[k] in _CONTINUES:
                return _line_from(s, start, truncated)  # "[0]+[3,3]", "[1]*2", "[0] -> [1]"
        return s[start:end]  # prose: "[3, 5, 6] - total 42", "[1, 2] is optimal"
    return None  # more groups than any answer has


def _line_from(s: str, start: int, truncated: bool) -> str | None:
    """From ``start`` to the end of the line on which the group at ``start`` ends or, if it
    never closes, to the end of its first line; None if that line runs past the window."""
    end = _balanced_end(s, start) or start
    line_end = s.find("\n", end)
    if line_end < 0:
        return None if truncated else _clean(s[start:])
    return _clean(s[start:line_end])


def _clean(s: str) -> str:
    return s.lstrip(_TRIM).rstrip(_TRIM + ".")


def _balanced_end(s: str, start: int) -> int:
    """Index just past the bracket that closes ``s[start]``, or 0 if it never closes or nests
    deeper than ``_GROUP_DEPTH`` (no answer does)."""
    match = _GROUP_RE.match(s, start)
    return match.end() if match else 0


def parse_structure(answer: Any) -> list | None:
    """Parse ``[1, 2]``, ``(1, 2)``, ``1 -> 2``, ``[[0, 1], [2]]`` or ``[(0, 1, 540)]`` into
    nested lists of ints; a bare sequence at the top level is a list. None when anything else
    appears (floats, bools, words, operators, unbalanced or mismatched brackets), when the text
    is longer than ``MAX_ANSWER_CHARS``, nests deeper than ``MAX_DEPTH`` or has an id longer
    than ``MAX_DIGITS`` digits. Linear time."""
    if not isinstance(answer, str) or not within_bounds(answer):
        return None
    flat = _FLAT_RE.fullmatch(answer)
    if flat and _BRACKET_PAIRS.get(flat.group(1)) == flat.group(2):
        return [int(v) for v in _INT_RE.findall(answer)]
    if _BAD_CHAR_RE.search(answer) or _BAD_SIGN_RE.search(answer):
        return None
    root: list = []
    stack: list[tuple[list, str]] = []
    current = root
    expect_value = True  # after a value, a separator or a close must come (spaces also separate)
    for token in _TOKEN_RE.findall(answer):
        first = token[0]
        if first in _DIGITS:  # a plain int: the token is all digits
            if len(token) > MAX_DIGITS:
                return None
            current.append(int(token))
            expect_value = False
        elif token in _SEPARATORS:
            if expect_value:  # a separator after another or after an opening bracket
                return None
            expect_value = True
        elif first in _OPEN:
            if len(stack) >= MAX_DEPTH:
                return None
            child: list = []
            current.append(child)
            stack.append((current, _OPEN[first]))
            current = child
            expect_value = True
        elif first in _CLOSERS:
            if not stack or stack[-1][1] != first:
                return None
            current = stack.pop()[0]
            expect_value = False
        else:  # a signed or quoted int; else a lone sign, quote, "=" or ">"
            digits = token.strip("\"'")
            if not digits or digits[-1] not in _DIGITS or len(digits.lstrip("+-")) > MAX_DIGITS:
                return None
            current.append(int(digits))
            expect_value = False
    if stack or not root:
        return None
    # "[1, 2]" parses as [[1, 2]]: unwrap a single bracketed top-level value.
    if len(root) == 1 and isinstance(root[0], list):
        return root[0]
    return root


def parse_int_list(answer: Any) -> list[int] | None:
    """A flat list of ints (``[0, 2, 1]``, ``0 -> 2 -> 1``, ``(0, 2)``), else None."""
    value = parse_structure(answer)
    if value is None or list in map(type, value):
        return None
    return value


def is_int_id(value: Any) -> bool:
    """True for real ints only: bools and floats are not ids."""
    return type(value) is int
