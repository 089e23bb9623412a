"""Final answers in untrusted model text, in linear time, and a screen for answers too costly to
check. Nothing here raises on any input.

A final answer is whichever comes **last** of: ``\\boxed{...}`` (or ``\\fbox{...}``, braces
balanced), ``<answer>...</answer>``, and the rest of the line after ``Answer:`` (the word in any
letter case, markdown around it forgiven). ``$...$``, ``**``, backticks and a trailing period
around it are removed. Only the ``MAX_ANSWER_CHARS`` characters after the marker are read.

:func:`too_costly` refuses answers whose evaluation could run for minutes inside a single C call
that no time limit interrupts (``9^{9^{9}}``, ``10^{10^{10}}``, ``(10^{9})!``,
``\\binom{10^{9}}{5}``): sympy and reasoning-gym's scorers would compute them exactly.
"""

from __future__ import annotations

import math
import re

MAX_ANSWER_CHARS = 2_000
# Largest power / factorial / binomial an answer may ask for, in bits of the result.
MAX_RESULT_BITS = 4_000_000

_ANSWER_MARKER_RE = re.compile(r"(?s:.*)answer\s*+\**+\s*+[:：]")
_BOX_MARKERS = ("\\boxed{", "\\fbox{", "\\boxed {")
_TRIM = " \t\r\n*`\"'$"


def final_answer(text: object, *, clean: bool = True) -> str | None:
    """The final answer of a completion (see the module doc), or None when there is none.
    ``clean=False`` strips only white space around it (for exact-match scorers)."""
    if not isinstance(text, str) or not text:
        return None
    candidates: list[tuple[int, str | None]] = []
    lower = text.lower()
    for marker in _BOX_MARKERS:
        at = text.rfind(marker)
        if at >= 0:
            candidates.append((at, _braced(text, at + len(marker))))
    close = lower.rfind("</answer>")
    if close >= 0:
        opening = lower.rfind("<answer>", 0, close)
        if opening >= 0 and close - opening - 8 <= MAX_ANSWER_CHARS:
            candidates.append((opening, text[opening + 8:close]))
    if len(lower) == len(text):
        match = _ANSWER_MARKER_RE.match(lower)
        if match:
            end = match.end()
            line = text[end:end + MAX_ANSWER_CHARS + 1].lstrip(" \t*")
            line = line.split("\n", 1)[0] if not line.startswith("\n") else line.lstrip("\n").split("\n", 1)[0]
            candidates.append((match.end(), line))
    if not candidates:
        return None
    _, answer = max(candidates, key=lambda c: c[0])
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return None
    answer = _clean(answer) if clean else answer.strip()
    return answer or None


def _braced(text: str, start: int) -> str | None:
    """The text from ``start`` up to the brace that closes an opening one just before it."""
    depth = 1
    end = min(len(text), start + MAX_ANSWER_CHARS + 1)
    for i in range(start, end):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _clean(answer: str) -> str:
    answer = answer.strip(_TRIM)
    if answer.endswith(".") and not answer.endswith(".."):
        answer = answer[:-1].rstrip(_TRIM)
    if answer.startswith("\\(") and answer.endswith("\\)"):
        answer = answer[2:-2].strip()
    return answer


# ---- answers too costly to evaluate ----------------------------------------------------------
_INT_RE = re.compile(r"\d+")
_POWER_RE = re.compile(r"\^|\*\*")
_FACTORIAL_RE = re.compile(r"!")
_BINOM_RE = re.compile(r"\\[dt]?binom|\\choose|binomial|comb\(")


def _exponent(text: str, at: int) -> tuple[str, int]:
    """The exponent after a power operator ending at ``at``: a brace group, a parenthesised
    group, or a run of digits/letters; (its text, where it ends)."""
    while at < len(text) and text[at] == " ":
        at += 1
    if at < len(text) and text[at] in "{(":
        opening, closing = text[at], "}" if text[at] == "{" else ")"
        depth = 0
        for i in range(at, min(len(text), at + MAX_ANSWER_CHARS)):
            if text[i] == opening:
                depth += 1
            elif text[i] == closing:
                depth -= 1
                if depth == 0:
                    return text[at + 1:i], i + 1
        return text[at + 1:], len(text)
    end = at
    while end < len(text) and (text[end].isalnum() or text[end] in "."):
        end += 1
    return text[at:end], end


def _base_bits(text: str, at: int) -> float | None:
    """log2 of the integer literal just before a power operator at ``at``; None when the base
    is not a plain literal (a group, a symbol)."""
    end = at
    while end > 0 and text[end - 1] in " {}":
        end -= 1
    start = end
    while start > 0 and text[start - 1].isdigit():
        start -= 1
    if start == end:
        return None
    return math.log2(max(2, int(text[start:end][:400])))


def _literal_bound(text: str) -> float:
    """An upper bound of an expression made of integer literals and + - * / (the product of
    the literals, or their sum if larger)."""
    values = [int(v[:400]) for v in _INT_RE.findall(text)]
    if not values:
        return 0.0
    product = 1.0
    for v in values:
        product *= max(v, 1)
        if product > 1e300:
            return math.inf
    return max(product, float(sum(values)))


def too_costly(answer: str) -> str:
    """'' if evaluating ``answer`` exactly is cheap enough, else the reason it is refused.

    Refused: a power whose exponent holds or is followed by another power, or holds a factorial
    (a tower); a power whose
    result would exceed ``MAX_RESULT_BITS`` bits (a numeric exponent, bounded by its literals,
    times the bits of a literal base; a non-literal base counts as 64 bits); a factorial or
    binomial of a number above 10⁵ (or of anything holding a power)."""
    for match in _POWER_RE.finditer(answer):
        exponent, end = _exponent(answer, match.end())
        chained = _POWER_RE.match(answer[end:].lstrip())  # 9**9**9: right-associative tower
        if chained or _POWER_RE.search(exponent) or "!" in exponent:
            return "a power tower is too costly to check"
        if re.search(r"[a-zA-Z\\]", exponent.replace("\\cdot", "*").replace("\\times", "*")):
            continue  # symbolic exponent: sympy keeps it unevaluated
        bound = _literal_bound(exponent)
        base = _base_bits(answer, match.start())
        if bound * (base if base is not None else 64.0) > MAX_RESULT_BITS:
            return "a power too large to check"
    for match in _FACTORIAL_RE.finditer(answer):
        before = answer[:match.start()].rstrip()
        if before.endswith((")", "}")) and ("^" in before or "**" in before):
            return "a factorial of an expression is too costly to check"
        digits = re.search(r"\d+$", before)
        if digits and int(digits.group(0)[:400]) > 100_000:
            return "a factorial too large to check"
    if _BINOM_RE.search(answer) and ("^" in answer or "**" in answer
                                     or any(int(v[:400]) > 100_000 for v in _INT_RE.findall(answer))):
        return "a binomial too large to check"
    return ""
