"""Adversarial completions for the NP-Bench parser and validators, shared by
``tests/npbench/test_adversarial.py``, ``benchmarks/parse_worst.py`` and ``benchmarks/fuzz.py``.

``WORST_CASES``: families of inputs of a given length aimed at the parser's worst cases
(backtracking regexes, rescans, deep or long structures). ``random_case``: one random
completion for an instance, from a mix of garbage, mutated witnesses and decorated answers;
``forgiven_forms`` and ``exploit_forms``: texts that must be accepted as the witness and texts
that must be refused.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from dmpo import npbench
from dmpo.npbench.base import Instance


def _repeat(unit: str, n: int, prefix: str = "", suffix: str = "") -> str:
    return prefix + unit * max(1, (n - len(prefix) - len(suffix)) // len(unit)) + suffix


def _pad(text: str, n: int) -> str:
    return text + "\n" + "x" * max(0, n - len(text) - 1)


def _capped(prefix: str, unit: str, suffix: str, n: int, most: int) -> str:
    """``unit`` repeated as often as fits in n characters but at most ``most`` times, then a
    new line and padding up to n."""
    count = max(1, min(most, (n - len(prefix) - len(suffix) - 1) // len(unit)))
    return _pad(prefix + unit * count + suffix, n)


# name -> generator of a completion of about n characters.
WORST_CASES: dict[str, Callable[[int], str]] = {
    "spaces after 'Answer'": lambda n: _repeat(" ", n, "Answer", "x"),
    "digits then '.5]'": lambda n: _repeat("1", n, "Answer: [", ".5]"),
    "spaces inside a list": lambda n: _repeat(" ", n, "Answer: [", "x]"),
    "em spaces after an id": lambda n: _repeat("\u2003", n, "Answer: x 1"),
    "'answer ' repeated": lambda n: _repeat("answer ", n),
    "'Answer:' repeated": lambda n: _repeat("Answer:", n),
    "'ANSWER' after an İ": lambda n: _repeat("ANSWER ", n, "İ"),
    "'Answer:**' repeated": lambda n: _repeat("Answer:**", n),
    "open brackets": lambda n: _repeat("[", n, "Answer: "),
    "close brackets": lambda n: _repeat("]", n, "Answer: ["),
    "alternating opens": lambda n: _repeat("[(", n, "Answer: "),
    "nested pairs": lambda n: _repeat("[]", n, "Answer: ["),
    "long flat list": lambda n: _repeat("1, ", n, "Answer: [", "1]"),
    "space-separated ids": lambda n: _repeat("1 ", n, "Answer: {", "}"),
    "quoted ids": lambda n: _repeat("'1', ", n, "Answer: [", "'1']"),
    "bare groups": lambda n: _repeat("[1] ", n, "Answer: "),
    "bare tuples over lines": lambda n: _repeat("(0, 1, 540),\n", n, "Answer: ", "(1, 0, 600)"),
    "pairs of sides": lambda n: _repeat("[0], ", n, "Answer: [", "[1]]"),
    "schedule triples": lambda n: _repeat("(0, 0, 540), ", n, "Answer: [", "(1, 1, 600)]"),
    "remark groups": lambda n: _repeat(" (x)", n, "Answer: [1]"),
    "prose then a list": lambda n: _repeat("word ", n, "Answer: ", "[1, 2]"),
    "prose, no list": lambda n: _repeat("word ", n, "Answer: "),
    "boxes": lambda n: _repeat("\\boxed{", n, "Answer: "),
    "prose boxes": lambda n: _repeat("x \\boxed{", n, "Answer: "),
    "stars after a list": lambda n: _repeat("*", n, "Answer: [1]", "2"),
    "operators after a list": lambda n: _repeat("+", n, "Answer: [1]", "x"),
    "markdown before": lambda n: _repeat("*`", n, "Answer:", "[1]"),
    "newlines before": lambda n: _repeat("\n", n, "Answer:", "[1]"),
    "zero-width spaces": lambda n: _repeat("\u200b", n, "Answer: [", "1]"),
    "no-break spaces": lambda n: _repeat("\u00a0", n, "Answer: [1,", "2]"),
    "long number": lambda n: _repeat("9", n, "Answer: "),
    "signs": lambda n: _repeat("+-", n, "Answer: [", "1]"),
    "arrows": lambda n: _repeat("0 -> ", n, "Answer: ", "0"),
    "periods": lambda n: _repeat(". ", n, "Answer: [1]"),
    "Impossible + spaces": lambda n: _repeat(" ", n, "Answer: Impossible", "."),
    "reasoning then answer": lambda n: _repeat("Let me think about it. ", n, "", "\nAnswer: [0, 1, 2]"),
    # Up to the bounds (MAX_NUMBERS ids, MAX_GROUPS groups), then padding: the most work an
    # answer can ask of the general parser and the validators.
    "up to 1000 quoted ids": lambda n: _capped("Answer: [", "'1', ", "'1']", n, 999),
    "up to 1000 ids as a walk": lambda n: _capped("Answer: ", "1 -> ", "1", n, 999),
    "up to 1000 distinct ids": lambda n: _pad(
        "Answer: [" + ", ".join(map(str, range(min(1000, n // 6)))) + "]", n),
    "up to 300 triples": lambda n: _capped("Answer: ", "(1, 2, 540), ", "(1, 2, 540)", n, 299),
    "up to 300 groups of ids": lambda n: _capped("Answer: [", "[1, 2, 3], ", "[1]]", n, 298),
    "random structural": lambda n: "Answer: " + "".join(
        random.Random(n).choice("[](){},; 0123456789-+>'\"\n") for _ in range(n)),
}


# ---- instances -----------------------------------------------------------------------------
# Set cover whose universe cannot be covered: the one instance whose answer is "Impossible".
UNCOVERABLE = {"U": [0, 1, 2, 3, 4], "S": {"0": [0, 1], "1": [2, 3], "2": [1, 3]}}
_POOL: dict[str, list[Instance]] = {}


def instance_pool(name: str) -> list[Instance]:
    """Instances to attack: tiny and easy, seeds 0 and 1 (in that order), and for set_cover
    also one whose answer is ``Impossible``. Every optimum here is proved."""
    if name not in _POOL:
        task = npbench.get_task(name)
        pool = [task.generate(seed=s, difficulty=d) for d in ("tiny", "easy") for s in range(2)]
        if name == "set_cover":
            sol = task.solve(UNCOVERABLE, 10)
            pool.append(Instance(name, "hand", None, UNCOVERABLE, sol.value, sol.proved,
                                 task.format_answer(sol.answer)))
        assert all(inst.proved for inst in pool)
        _POOL[name] = pool
    return _POOL[name]


# ---- random completions ------------------------------------------------------------------
_ALPHABET = "[](){},;:-+>*=. 0123456789\n'\"`$\\Answeransw\u00a0\u2003ℵ→"
_WRAPPERS = (
    "Answer: {}", "**Answer:** {}", "**Answer:**\n`{}`.", "Answer:\n{}\n", "answer: {} — done",
    "Let me think. Answer: 1\nAnswer: {}", "Answer: \\boxed{{{}}}", "Answer: ${}$",
    "Answer: the best I found is {}", "Answer: {} (this is optimal)", "Answer: {} - total 42",
    "**Answer:** **{}**", "Answer:\u00a0{}", "ANSWER：{}", "Answer: {}.", "Answer: {}+[0]",
    "Answer: {}*2", "Answer: {} {}", "Answer: {}, {}", "Final answer: {}\u2003",
)


def to_text(value: object, rng: random.Random) -> str:
    """A parsed answer written back as text, with random brackets, separators and spacing."""
    if isinstance(value, list):
        open_, close = rng.choice([("[", "]"), ("(", ")"), ("[", "]"), ("{", "}")])
        sep = rng.choice([", ", ",", " , ", ",\n", " ", ", "])
        return open_ + sep.join(to_text(v, rng) for v in value) + close
    if isinstance(value, int) and rng.random() < 0.03:
        return rng.choice([f"'{value}'", f"{value}.0", f"+{value}", "True", f"{value}.5"])
    return str(value)


def mutate(value: object, rng: random.Random, n: int) -> object:
    """One random structural edit somewhere in a nested list answer (in place)."""
    if not isinstance(value, list):
        return value
    lists, stack = [value], [value]
    while stack:
        for child in stack.pop():
            if isinstance(child, list):
                lists.append(child)
                stack.append(child)
    target = rng.choice(lists)
    op = rng.choice(["drop", "duplicate", "swap", "out_of_range", "replace", "insert", "negate", "wrap"])
    if op == "drop" and target:
        target.pop(rng.randrange(len(target)))
    elif op == "duplicate" and target:
        target.insert(rng.randrange(len(target) + 1), rng.choice(target))
    elif op == "swap" and len(target) > 1:
        i, j = rng.sample(range(len(target)), 2)
        target[i], target[j] = target[j], target[i]
    elif op == "out_of_range" and target:
        i = rng.randrange(len(target))
        if not isinstance(target[i], list):
            target[i] = rng.choice([n, n + 1, -1, 10**6, 10**13])
    elif op == "replace" and target:
        i = rng.randrange(len(target))
        if not isinstance(target[i], list):
            target[i] = rng.randrange(max(n, 1))
    elif op == "insert":
        target.insert(rng.randrange(len(target) + 1), rng.randrange(max(n, 1) + 2))
    elif op == "negate" and target:
        i = rng.randrange(len(target))
        if not isinstance(target[i], list):
            target[i] = -target[i]
    elif op == "wrap" and target:
        i = rng.randrange(len(target))
        target[i] = [target[i]]
    return value


def random_case(rng: random.Random, task: npbench.Task, inst: npbench.Instance, n: int) -> str:
    """One random completion for ``inst`` (``n`` = its size, for out-of-range ids)."""
    roll = rng.random()
    if roll < 0.2:  # garbage from an alphabet of answer-like characters
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(80)))
    if roll < 0.3:  # a worst-case family at a small size
        return rng.choice(list(WORST_CASES.values()))(rng.randrange(1, 300))
    answer = task.parse_answer(inst.solution)
    if not isinstance(answer, list):  # set_cover's "Impossible"
        answer = rng.choice([answer, [], [0]])
    for _ in range(rng.randrange(4) if roll < 0.8 else 0):
        answer = mutate(answer, rng, n)
    text = rng.choice(_WRAPPERS).replace("{}", to_text(answer, rng), 1).replace("{}", to_text(answer, rng))
    if rng.random() < 0.2:  # a random edit of the text itself
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(_ALPHABET) * rng.randrange(1, 4) + text[i + rng.randrange(3):]
    return text


# ---- must accept / must refuse -----------------------------------------------------------
def forgiven_forms(answer: str) -> list[str]:
    """Completions that state the answer ``answer`` (a canonical answer string) and must be
    read as exactly it."""
    forms = [
        f"Answer: {answer}",
        f"Answer: {answer} (this is optimal)",
        f"Answer: {answer} - total 42",
        f"**Answer:** **{answer}**",
        f"**Answer:** `{answer}`.",
        f"Answer:\u00a0{answer}\u00a0",
        f"Answer:\u2003{answer}\u3000",
        f"Answer: \\boxed{{{answer}}}",
        f"Answer: ${answer}$",
        f"Answer: {answer}. It is optimal.",
        f"Answer: {answer}, which I checked",
        f"Answer: 1\nAnswer: {answer}\n",
        f"ANSWER：{answer}",
    ]
    if answer.startswith(("[", "(")):
        forms.append(f"Answer: the best I found is {answer}")
    if answer.startswith("["):
        forms.append("**Answer:** **" + answer.replace(", ", ",\n") + "**")
        forms.append("Answer:\n" + answer.replace(", ", ",\u00a0"))
    return forms


def exploit_forms(answer: str) -> list[str]:
    """Completions around the answer ``answer`` that are not a plain answer and must be
    refused (not well formed), whatever ``answer`` is."""
    return [
        f"Answer: {answer}+{answer}",
        f"Answer: {answer} + [0]",
        f"Answer: {answer}*2",
        f"Answer: {answer} ** 2",
        f"Answer: {answer}-[0]",
        f"Answer: {answer} - 1",
        f"Answer: {answer}.5",
        f"Answer: {answer} 7",
        f"Answer: {answer}|{answer}",
    ]
