"""The reasoning-gym source: seeded items, the tasks' own scorers, a split of the questions,
refused answers, and clear errors."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("reasoning_gym")

from dmpo.errors import DmpoError
from dmpo.npbench.splits import EVAL_SEED_START, TRAIN_SEED_START
from dmpo.sources import ReasoningGymSource, TaskSource

SMALL = "rg:countdown?min_numbers=3&max_numbers=3&min_target=10&max_target=60"


@pytest.fixture(scope="module")
def countdown():
    return ReasoningGymSource(SMALL)


def test_items_are_seeded_and_rebuilt_from_their_ids(countdown):
    items = countdown.items(start=TRAIN_SEED_START, count=4)
    assert all(item.id == f"countdown-{item.seed}" and item.seed >= TRAIN_SEED_START for item in items)
    assert items == ReasoningGymSource(SMALL).items(start=TRAIN_SEED_START, count=4)
    assert countdown.item_for_id(items[2].id) == items[2]
    assert countdown.item_from_json(items[1].to_json()) == items[1]
    assert isinstance(countdown, TaskSource) and countdown.generated and countdown.kind == "rg"


def test_the_tasks_own_scorer_judges(countdown):
    item = countdown.items(start=TRAIN_SEED_START, count=1)[0]
    right = countdown.score(item, f"reasoning... <answer>{item.answer}</answer>")
    assert right.correct and right.reward == pytest.approx(1.1)
    assert countdown.score(item, f"Answer: {item.answer}").correct
    wrong = countdown.score(item, "Answer: 1 + 2")  # countdown's partial credit: 0.05
    assert wrong.well_formed and not wrong.correct and wrong.reward == pytest.approx(0.15)
    none = countdown.score(item, "I give up")
    assert not none.well_formed and none.reward == 0.0


def test_many_valid_answers_count_as_distinct_correct_answers():
    source = ReasoningGymSource("rg:graph_color")
    item = source.items(start=EVAL_SEED_START, count=1)[0]
    puzzle = source._entry(item.seed)[1]["metadata"]["puzzle"]
    colors, edges = puzzle["color_options"], puzzle["edges"]
    n = len(puzzle["vertices"])
    answers = set()
    for shift in range(len(colors)):  # a greedy coloring, and its colours permuted
        coloring: dict[int, int] = {}
        for v in range(n):
            used = {coloring.get(u) for a, b in edges for u in (a, b) if v in (a, b) and u != v}
            coloring[v] = next(c for c in colors if c not in used)
        permuted = {str(v): colors[(colors.index(c) + shift) % len(colors)] for v, c in coloring.items()}
        verdict = source.score(item, f"<answer>{json.dumps(permuted)}</answer>")
        assert verdict.correct
        answers.add(verdict.answer)
    assert len(answers) == len(colors)


def test_train_and_heldout_items_share_no_question(countdown):
    train = {i.question for i in countdown.items(start=TRAIN_SEED_START, count=40)}
    heldout = countdown.items(start=EVAL_SEED_START, count=10)
    assert all(i.seed >= EVAL_SEED_START for i in heldout)
    assert not train & {i.question for i in heldout}


def test_dangerous_and_costly_answers_are_refused_before_the_scorer(countdown):
    item = countdown.items(start=TRAIN_SEED_START, count=1)[0]
    started = time.perf_counter()
    for answer in ("__import__('os').getcwd()", "9**9**9**9", "(10**100)**100000"):
        verdict = countdown.score(item, f"<answer>{answer}</answer>")
        assert verdict.well_formed and not verdict.correct and verdict.reward == pytest.approx(0.1)
    assert time.perf_counter() - started < 5.0


def test_prompts(countdown):
    item = countdown.items(start=TRAIN_SEED_START, count=1)[0]
    _, entry = countdown._entry(item.seed)
    numbers = ", ".join(map(str, entry["metadata"]["numbers"]))
    assert countdown.prompt(item, "compact") == f"countdown: make {entry['metadata']['target']} from {numbers}\n"
    assert str(entry["metadata"]["target"]) in item.question and numbers in item.question
    assert countdown.prompt(item, "nl").endswith("between <answer> and </answer>.")
    with pytest.raises(DmpoError, match="unknown prompt style"):
        countdown.prompt(item, "fancy")


def test_other_tasks_prompt_with_the_question_and_the_countdown_prompt_version_keys_the_warm_start():
    import hashlib
    import json

    from dmpo.pipeline.settings import RECIPE_VERSION, SFTSettings

    colours = ReasoningGymSource("rg:graph_color")
    item = colours.items(start=TRAIN_SEED_START, count=1)[0]
    assert colours.prompt(item, "compact") == item.question + "\n"
    assert colours.prompt_version == 1

    def unversioned(settings):
        payload = json.dumps({"recipe": RECIPE_VERSION, **settings.key_fields()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    # a warm start made on countdown's old (long) compact prompt is not reused; other keys kept
    assert SFTSettings(tasks=("rg:countdown",)).key() != unversioned(SFTSettings(tasks=("rg:countdown",)))
    assert SFTSettings(tasks=("rg:graph_color",)).key() == unversioned(SFTSettings(tasks=("rg:graph_color",)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rg:countdwn", r"unknown reasoning-gym task 'countdwn'; did you mean \['countdown'"),
        ("rg:no_such_task", "unknown reasoning-gym task 'no_such_task'"),
        ("rg:countdown?colour=red", r"countdown's config has no field\(s\) \['colour'\]"),
        ("rg:countdown?min_numbers=1", "invalid config for countdown"),
        ("rg:graph_color?max_num_vertices=6", "graph_color generates no item with this config"),
    ],
)
def test_clear_errors(spec, message):
    with pytest.raises(DmpoError, match=message):
        ReasoningGymSource(spec)


def test_bad_ids(countdown):
    with pytest.raises(DmpoError, match="countdown-<seed>"):
        countdown.item_for_id("graph_color-3")
