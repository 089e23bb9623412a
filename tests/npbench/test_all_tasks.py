"""Properties every NP-Bench task must have, checked on every task.

Each task has an independent reference in ``tests/npbench/reference/<task>.py``: a plainly
written feasibility check ``feasible(question, answer) -> (ok, value)`` and a random answer
sampler ``random_answer(question, rng)``. The validator must agree with the reference on every
answer, including mutated and random ones.
"""

from __future__ import annotations

import importlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.explore import question_size
from dmpo.npbench.parsing import extract_answer

TASKS = npbench.list_tasks()
UP_TO_MEDIUM = ("tiny", "easy", "medium")
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def reference(name: str):
    return importlib.import_module(f"tests.npbench.reference.{name}")


_CACHE: dict[tuple[str, str, int], npbench.Instance] = {}


def instance(name: str, difficulty: str, seed: int) -> npbench.Instance:
    key = (name, difficulty, seed)
    if key not in _CACHE:
        _CACHE[key] = npbench.get_task(name).generate(seed=seed, difficulty=difficulty)
    return _CACHE[key]


def test_fourteen_tasks():
    assert len(TASKS) == 14 == len(set(TASKS))


@pytest.mark.parametrize("difficulty", UP_TO_MEDIUM)
@pytest.mark.parametrize("name", TASKS)
def test_witness_is_valid_and_optimal(name, difficulty):
    task = npbench.get_task(name)
    for seed in range(3):
        inst = instance(name, difficulty, seed)
        verdict = task.evaluate(inst, f"Answer: {inst.solution}")
        assert verdict.valid, verdict.reason
        assert verdict.value == pytest.approx(inst.optimum)
        assert verdict.quality_ratio == pytest.approx(1.0)
        assert verdict.reward == pytest.approx(1.1)
        ok, value = reference(name).feasible(inst.question, task.parse_answer(inst.solution))
        assert ok and value == pytest.approx(inst.optimum)


@pytest.mark.parametrize("name", TASKS)
def test_brute_force_agrees_with_solver_on_tiny(name):
    task = npbench.get_task(name)
    for seed in range(8):
        inst = instance(name, "tiny", seed)
        assert inst.proved
        assert task.brute_force(inst.question) == pytest.approx(inst.optimum), seed


@pytest.mark.parametrize("name", TASKS)
def test_generation_is_deterministic(name):
    task = npbench.get_task(name)
    a = task.generate(seed=7, difficulty="tiny")
    b = task.generate(seed=7, difficulty="tiny")
    c = task.generate(seed=8, difficulty="tiny")
    assert a.to_dict() == b.to_dict()
    assert a.question != c.question


@pytest.mark.parametrize("name", TASKS)
def test_instance_roundtrips_through_json(name):
    inst = instance(name, "tiny", 0)
    again = npbench.Instance.from_dict(__import__("json").loads(inst.to_json()))
    assert again.to_dict() == inst.to_dict()


@pytest.mark.parametrize("name", TASKS)
def test_prompts(name):
    task = npbench.get_task(name)
    inst = instance(name, "tiny", 0)
    nl = task.prompt(inst, style="nl")
    for section in ("Introduction", "Task description", "Question", "Example Input and Output",
                    "Submission Format", "Instructions", "Response format"):
        assert f"## {section}" in nl
    assert nl.rstrip().endswith("`Answer: YOUR ANSWER`.")
    compact = task.prompt(inst, style="compact")
    assert compact.startswith(name + "\n") and compact.endswith("\n") and compact.isascii()
    assert len(compact) < len(nl)
    with pytest.raises(DmpoError, match="prompt style"):
        task.prompt(inst, style="verbose")


@pytest.mark.parametrize("name", TASKS)
def test_render_png(name, tmp_path):
    task = npbench.get_task(name)
    image = task.render(instance(name, "tiny", 0))
    assert image.size[0] >= 200 and image.size[1] >= 100
    path = tmp_path / "x.png"
    image.save(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Not blank: a drawing has more than one colour.
    assert len(image.getcolors(maxcolors=1 << 16) or [0, 0]) > 1


@pytest.mark.parametrize("name", TASKS)
def test_malformed_question_raises_clear_error(name):
    task = npbench.get_task(name)
    for bad in ({}, [], "x", {"nonsense": 1}):
        with pytest.raises(DmpoError):
            task.evaluate(bad, "Answer: [0]")


def test_unknown_task_and_difficulty():
    with pytest.raises(DmpoError, match="unknown task"):
        npbench.get_task("sudoku")
    with pytest.raises(DmpoError, match="unknown difficulty"):
        npbench.get_task("tsp").generate(seed=0, difficulty="impossible")


# ---- untrusted text ------------------------------------------------------------------------
GARBAGE = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="[](){},-> 0123456789Answer:'\"\n.*`\\boxed", max_size=300),
    st.sampled_from([
        "", "Answer:", "Answer: None", "Answer: [", "Answer: ]]]", "Answer: [[[[[[[[1]]]]]]]]",
        "Answer: [1.5, 2]", "Answer: [True, False]", "Answer: [0]+[1]", "Answer: ℵ₀ → ∞",
        "Answer: " + "[" * 5000, "Answer: " + "1," * 50000, "Answer: 1" + "0" * 5000,
        "Answer: Impossible", "Answer: [(0, 1, 540), (1, 0, 600)]", "Answer: [[0, 1], [2, 3]]",
    ]),
)


@pytest.mark.parametrize("name", TASKS)
@HYPOTHESIS
@given(text=GARBAGE)
def test_parser_never_raises_and_validator_agrees_with_reference(name, text):
    task = npbench.get_task(name)
    inst = instance(name, "tiny", 0)
    verdict = task.evaluate(inst, text)
    _agrees_with_reference(name, task, inst, verdict, text)


def _agrees_with_reference(name, task, inst, verdict, text):
    answer_text = extract_answer(text)
    parsed = None if answer_text is None else task.parse_answer(answer_text)
    if parsed is None:
        assert not verdict.valid and not verdict.well_formed
        return
    ok, value = reference(name).feasible(inst.question, parsed)
    assert verdict.valid == ok, (parsed, verdict.reason)
    if ok:
        assert verdict.value == pytest.approx(value)
        if inst.proved:
            assert verdict.quality_ratio <= 1.0 + 1e-9


def _mutate(value, rng: random.Random, n: int):
    """One random structural edit somewhere in a nested list answer."""
    if not isinstance(value, list):
        return value
    lists = [value]
    stack = [value]
    while stack:
        for child in stack.pop():
            if isinstance(child, list):
                lists.append(child)
                stack.append(child)
    target = rng.choice(lists)
    op = rng.choice(["drop", "duplicate", "swap", "out_of_range", "replace", "insert", "negate"])
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
            target[i] = rng.choice([n, n + 1, -1, 10**6])
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
    return value


def _to_text(value, rng: random.Random) -> str:
    if isinstance(value, list):
        open_, close = rng.choice([("[", "]"), ("(", ")")])
        sep = rng.choice([", ", ",", " , "])
        return open_ + sep.join(_to_text(v, rng) for v in value) + close
    return str(value)


@pytest.mark.parametrize("name", TASKS)
@HYPOTHESIS
@given(seed=st.integers(0, 10**6), edits=st.integers(1, 4),
       wrapper=st.sampled_from(["Answer: {}", "**Answer:**\n`{}`.", "Let me think. Answer: 1\nAnswer: {}",
                                "Answer: \\boxed{{{}}}", "answer: {} — done"]))
def test_mutated_witness_is_judged_like_the_reference(name, seed, edits, wrapper):
    task = npbench.get_task(name)
    difficulty = "tiny" if seed % 2 else "easy"
    inst = instance(name, difficulty, seed % 3)
    rng = random.Random(seed)
    answer = task.parse_answer(inst.solution)
    n = question_size(inst.question)
    for _ in range(edits):
        answer = _mutate(answer, rng, n)
    text = wrapper.format(_to_text(answer, rng))
    verdict = task.evaluate(inst, text)
    _agrees_with_reference(name, task, inst, verdict, text)


@pytest.mark.parametrize("name", TASKS)
def test_random_feasible_answers_never_beat_a_proved_optimum(name):
    task = npbench.get_task(name)
    rng = random.Random(0)
    found = 0
    for seed in range(3):
        for difficulty in ("tiny", "easy"):
            inst = instance(name, difficulty, seed)
            for _ in range(200):
                answer = reference(name).random_answer(inst.question, rng)
                verdict = task.evaluate(inst, f"Answer: {task.format_answer(answer)}")
                ok, value = reference(name).feasible(inst.question, answer)
                assert verdict.valid == ok
                if ok:
                    found += 1
                    assert verdict.value == pytest.approx(value)
                    if inst.proved:
                        assert verdict.quality_ratio <= 1.0 + 1e-9
    assert found > 0, "the random sampler never found a feasible answer: make it smarter"

