"""Vision prompts (``task.vision_prompt``): the ``grid`` images hold the whole instance (a plain
reference decoder reads every task's image back into exactly its question), the ``drawing``
images are 448 px squares with legible text, and the text says what to find, not the instance.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from PIL import Image

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.grid import FORMATS, cell_colour, cell_value, decode_grid, grid_image
from dmpo.npbench.render import MIN_TEXT
from dmpo.npbench.tasks._graph import parse_graph
from dmpo.npbench.vision import DRAWING_LEGENDS, legend

TASKS = npbench.list_tasks()


def question(name: str, difficulty: str, seed: int) -> dict:
    """The question ``task.generate(seed, difficulty)`` would hold, without solving it."""
    task = npbench.get_task(name)
    return task.generate_question(random.Random(f"npbench/{name}/{difficulty}/{seed}"), difficulty)


# ---- grid: the information is in the picture ------------------------------------------------
@pytest.mark.parametrize("name", TASKS)
def test_every_grid_image_decodes_to_exactly_its_question(name):
    task = npbench.get_task(name)
    cases = [("tiny", seed) for seed in range(25)] + [("easy", seed) for seed in range(4)] + [("bench", 0)]
    for difficulty, seed in cases:
        q = question(name, difficulty, seed)
        image = task.vision_prompt(q, "grid").image
        assert image.mode == "RGB" and image.size in {(s, s) for s, _ in FORMATS}
        assert decode_grid(name, image) == q, (difficulty, seed)
        # The decoder reads pixels only: a PNG round trip changes nothing.
        assert decode_grid(task, Image.open(_png(image))) == q


def test_generated_instances_round_trip_through_the_public_api():
    task = npbench.get_task("vertex_cover")
    inst = task.generate(seed=3, difficulty="tiny")
    assert npbench.decode_grid("vertex_cover", task.vision_prompt(inst).image) == inst.question


def test_tiny_grids_are_56_px_and_bench_knapsack_needs_224():
    for name in TASKS:
        for seed in range(10):
            assert grid_image(npbench.get_task(name), question(name, "tiny", seed)).size == (56, 56)
    assert grid_image(npbench.get_task("knapsack"), question("knapsack", "bench", 0)).size == (224, 224)


def test_a_question_in_another_layout_decodes_to_the_same_graph():
    # Public files: integer keys, an edge listed on one side only, dict-of-dicts weights.
    q = {0: [1], 1: [], "2": [0, 3], "3": []}
    decoded = decode_grid("vertex_cover", grid_image(npbench.get_task("vertex_cover"), q))
    assert decoded == {"0": [1, 2], "1": [0], "2": [0, 3], "3": [2]}
    assert parse_graph(decoded, "vertex_cover") == parse_graph(q, "vertex_cover")
    mis = {"0": {"1": 1, "2": 0}, "1": {}, "2": {}}
    assert decode_grid("max_independent_set", grid_image(npbench.get_task("max_independent_set"), mis)) == {
        "0": {"1": 1}, "1": {"0": 1}, "2": {}}


def test_cell_colours_are_hexadecimal_digits():
    assert cell_colour(0) == (0, 0, 0)
    assert cell_colour(15) == (255, 0, 0)
    assert cell_colour(0x123) == (51, 34, 17)
    assert cell_colour(4095) == (255, 255, 255)
    assert all(cell_value(cell_colour(v)) == v for v in range(4096))
    assert cell_value((16, 0, 0)) is None


def test_the_knapsack_layout_pixel_by_pixel():
    q = {"capacity": 300, "items": {"0": {"weight": 7, "value": 21}, "1": {"weight": 16, "value": 0}}}
    image = grid_image(npbench.get_task("knapsack"), q)
    assert image.size == (56, 56)  # 4-px cells

    def cell(r: int, c: int) -> tuple[int, int, int]:
        colours = {image.getpixel((4 * c + dx, 4 * r + dy)) for dx in range(4) for dy in range(4)}
        assert len(colours) == 1
        return colours.pop()

    assert cell(0, 0) == (12 * 17, 2 * 17, 1 * 17)  # 300 = 0x12C
    assert cell(0, 1) == (2 * 17, 0, 0)  # two items
    assert cell(1, 0) == (7 * 17, 0, 0) and cell(1, 1) == (5 * 17, 1 * 17, 0)  # 21 = 0x15
    assert cell(2, 0) == (0, 17, 0) and cell(2, 1) == (0, 0, 0)
    assert cell(3, 0) == cell(0, 2) == cell(13, 13) == (0, 0, 0)


@pytest.mark.parametrize(("name", "q", "message"), [
    ("knapsack", {"capacity": 5000, "items": {"0": {"weight": 1, "value": 1}}}, "0..4095"),
    ("knapsack", {"capacity": 5, "items": {"0": {"weight": 1, "value": 2.5}}}, "value of item 0 is 2.5"),
    ("max_cut", {"num_vertices": 3, "edges": {"0-1": -2}}, "integers 0..4095"),
    ("vertex_cover", {str(v): [] for v in range(120)}, "at most 112 × 112"),
])
def test_what_does_not_fit_the_grid_is_a_clear_error(name, q, message):
    with pytest.raises(DmpoError, match=message):
        npbench.get_task(name).vision_prompt(q, "grid")


def test_an_image_that_is_not_a_grid_image_of_the_task_is_refused():
    tsp = npbench.get_task("tsp")
    image = grid_image(tsp, question("tsp", "tiny", 0))
    with pytest.raises(DmpoError, match="56×56"):
        decode_grid("tsp", image.resize((60, 60)))
    noisy = image.copy()
    noisy.putpixel((30, 30), (1, 2, 3))
    with pytest.raises(DmpoError, match="not one flat cell colour"):
        decode_grid("tsp", noisy)
    extra = image.copy()
    extra.paste((255, 0, 0), (52, 52, 56, 56))  # a cell outside the layout
    with pytest.raises(DmpoError, match="outside the tsp layout"):
        decode_grid("tsp", extra)
    with pytest.raises(DmpoError, match="outside the knapsack layout"):
        decode_grid("knapsack", image)
    with pytest.raises(DmpoError, match="PIL image"):
        decode_grid("tsp", b"png")


# ---- drawing: 448 px, legible, not blank ----------------------------------------------------
@pytest.mark.parametrize("name", TASKS)
def test_drawings_are_448_px_legible_and_not_blank(name):
    task = npbench.get_task(name)
    for difficulty in ("tiny", "easy"):
        image = task.vision_prompt(question(name, difficulty, 0), "drawing").image
        assert image.size == (448, 448) and image.mode == "RGB"
        ink = sum(1 for r, g, b in image.getdata() if r + g + b < 700)
        assert ink > 1000, (difficulty, ink)  # text, lines and vertices, not an empty canvas
        if not (name == "min_cut" and difficulty == "easy"):  # a 42 × 42 weight table
            assert image.info[MIN_TEXT] >= 11, (difficulty, image.info[MIN_TEXT])


def test_drawing_size_none_keeps_the_renderer_size_and_bad_sizes_are_refused():
    task = npbench.get_task("min_cut")
    q = question("min_cut", "easy", 0)
    natural = task.vision_prompt(q, "drawing", size=None).image
    assert natural.size == task.render(q).size and natural.info[MIN_TEXT] == 16
    with pytest.raises(DmpoError, match="drawing size"):
        task.vision_prompt(q, "drawing", size=10)


# ---- the text -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TASKS)
def test_the_text_says_what_to_find_and_the_picture_holds_the_instance(name):
    task = npbench.get_task(name)
    q = question(name, "tiny", 1)
    for render in npbench.RENDERS:
        text = task.vision_prompt(q, render).text
        assert task.answer_format in text and legend(task, render) in text
        assert repr(q) not in text and "adjacency lists" not in text and "maps to its neighbours" not in text
        assert text.endswith("End your response with a final line `Answer: YOUR ANSWER`.")
        with_text = task.vision_prompt(q, render, include_text=True).text
        assert with_text == text.replace(legend(task, render), legend(task, render)
                                         + f"\nThe same instance as text: {q!r}")
    assert task.vision_prompt(q, style="compact").text == f"{name}\n"
    assert task.vision_prompt(q, style="compact", include_text=True).text == task.prompt(q, style="compact")
    assert legend(task, "drawing") == DRAWING_LEGENDS[name]


def test_the_witness_answer_of_a_vision_prompt_scores_with_the_text_validators():
    task = npbench.get_task("max_cut")
    inst = task.generate(seed=2, difficulty="tiny")
    prompt = task.vision_prompt(inst, "drawing")
    assert "`Answer: [[0, 2], [1, 3]]`" in prompt.text  # the same answer format as the text prompt
    assert task.evaluate(inst, f"...\nAnswer: {inst.solution}").quality_ratio == 1.0


def test_bad_arguments_are_clear_errors_and_the_prompt_is_frozen():
    task = npbench.get_task("tsp")
    q = question("tsp", "tiny", 0)
    with pytest.raises(DmpoError, match="unknown render style 'photo'"):
        task.vision_prompt(q, "photo")
    with pytest.raises(DmpoError, match="unknown prompt style"):
        task.vision_prompt(q, style="short")
    with pytest.raises(DmpoError, match="tsp needs at least 3 cities"):
        task.vision_prompt({"0": {}}, "grid")
    prompt = task.vision_prompt(q)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prompt.text = "x"  # type: ignore[misc]


def _png(image: Image.Image):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def test_bench_render_writes_grid_and_drawing_images(tmp_path):
    from dmpo.cli.main import main

    data = tmp_path / "d.jsonl"
    assert main(["bench", "generate", "--tasks", "max_cut,subset_sum", "--difficulty", "tiny", "--count", "2",
                 "-o", str(data)]) == 0
    instances = npbench.load(data)
    assert main(["bench", "render", str(data), "-o", str(tmp_path / "grid"), "--render", "grid"]) == 0
    for inst in instances:
        image = Image.open(tmp_path / "grid" / f"{inst.id}.png")
        assert decode_grid(inst.task, image) == inst.question
    assert main(["bench", "render", str(data), "-o", str(tmp_path / "drawing"), "--render", "drawing"]) == 0
    assert {Image.open(p).size for p in (tmp_path / "drawing").glob("*.png")} == {(448, 448)}
    assert main(["bench", "render", str(data), "-o", str(tmp_path / "plain"), "--limit", "1"]) == 0
    assert Image.open(tmp_path / "plain" / "max_cut-tiny-0.png").size == (640, 680)  # the renderer's own size


def test_docs_describe_every_grid_layout():
    from pathlib import Path

    from dmpo.npbench.grid import LAYOUTS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "vision.md").read_text(encoding="utf-8")
    for name, layout in LAYOUTS.items():
        assert f"`{name}`" in docs and layout.legend in docs, name
