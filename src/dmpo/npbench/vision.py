"""Vision prompts: the question text plus a picture of the instance, for vision-language models.

In a vision prompt the structure is in the picture; the text says what to find and how to
answer, in the same answer format as the text prompts, so that the same parsers and validators
score the completions. ``include_text=True`` adds the text encoding as well (for ablations).

Two renderings (``RENDERS``):

- ``drawing``: what a person or a pretrained VLM reads, the task's own renderer (labelled
  vertices and edges with their weights, item tables) fitted onto a white ``size × size``
  square (448 px by default);
- ``grid``: a compact pixel encoding for a small model trained from scratch, 56, 112 or 224 px
  (``dmpo.npbench.grid``, layouts in docs/vision.md), with a reference decoder.

Two text styles, as for text prompts: ``nl`` (the benchmark's sections, with a legend of the
picture) and ``compact`` (the task name on one line, for the built-in character model; with
``include_text`` it is exactly the compact text prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from dmpo.errors import DmpoError
from dmpo.npbench.grid import LAYOUTS, grid_image
from dmpo.npbench.render import MIN_TEXT

if TYPE_CHECKING:
    from dmpo.npbench.base import Instance, Task

RENDERS: tuple[str, ...] = ("grid", "drawing")
STYLES: tuple[str, ...] = ("nl", "compact")
DRAWING_SIZE = 448
# Phrases of the task descriptions that name the text encoding; the picture replaces it.
_TEXT_ENCODING_PHRASES = (" as adjacency lists", " (each vertex maps to its neighbours)")

_GRAPH = ("The image draws the graph: each vertex is a blue circle labelled with its id, each edge "
          "a grey line between two circles.")
_WEIGHTED = ("The image draws the graph: each vertex is a blue circle labelled with its id, each "
             "edge a grey line with its weight in red at its middle.")
DRAWING_LEGENDS: dict[str, str] = {
    "graph_coloring": _GRAPH,
    "max_clique": _GRAPH,
    "max_independent_set": _GRAPH,
    "vertex_cover": _GRAPH,
    "dominating_set": _GRAPH,
    "feedback_vertex_set": _GRAPH,
    "hamiltonian_cycle": _GRAPH,
    "max_cut": _WEIGHTED,
    "min_cut": _WEIGHTED[:-1] + "; or, for more than 12 vertices, a table of the weights (row i, "
                                "column j: the weight between i and j; 0 means no edge).",
    "tsp": ("The image draws the cities as blue circles labelled with their ids and the distance of "
            "every pair in red on the line between them; or, for more than 8 cities, a table of the "
            "distances (row i, column j: the distance between cities i and j)."),
    "knapsack": ("The image is a table with one row per item: its id, weight and value; the capacity "
                 "is written below the table."),
    "subset_sum": ("The image is a table with one row per number: its index and value; the target is "
                   "written below the table."),
    "set_cover": ("The image is a table with one row per subset: its id and its elements; the universe "
                  "U is written below the table."),
    "meeting_schedule": ("The image is a table with one row per meeting: its id, its attendees and its "
                         "duration in minutes; below it, the times each attendee is free (minutes from "
                         "midnight, start-end) and the capacity of each room."),
}
GRID_PREAMBLE = (
    "The image is a grid of square cells, row 0 at the top and column 0 at the left (56 px with "
    "4-px cells, 112 px or 224 px with 2-px cells). Each cell holds a number v from 0 to 4095 in its "
    "colour: red = 17·(v mod 16), green = 17·(v div 16 mod 16), blue = 17·(v div 256); 0 is black, "
    "15 is pure red. "
)


@dataclass(frozen=True)
class VisionPrompt:
    """A prompt for a vision-language model: ``text`` (what to find and how to answer) and
    ``image`` (an RGB PIL image of the instance)."""

    text: str
    image: Image.Image


def check_render(render: str) -> str:
    if render not in RENDERS:
        raise DmpoError(f"unknown render style {render!r}; valid: {list(RENDERS)}")
    return render


def vision_prompt(task: Task, instance: Instance | dict, render: str = "grid", *,
                  include_text: bool = False, style: str = "nl", size: int | None = DRAWING_SIZE) -> VisionPrompt:
    """The vision prompt of ``instance`` (see the module docstring). ``size``: the side of a
    ``drawing`` in pixels (None keeps the renderer's own size); grid images have fixed sizes."""
    check_render(render)
    if style not in STYLES:
        raise DmpoError(f"unknown prompt style {style!r}; valid: {list(STYLES)}")
    question = instance.question if hasattr(instance, "question") else instance
    task.validate_question(question)
    if render == "grid":
        image = grid_image(task, question)
    else:
        image = fit_drawing(task.render(question), size)
    if style == "compact":
        text = task.prompt(question, style="compact") if include_text else f"{task.name}\n"
    else:
        text = _nl_text(task, question, render, include_text)
    return VisionPrompt(text, image)


def vision_description(task: Task) -> str:
    """The task description without the phrases that name the text encoding."""
    text = task.description
    for phrase in _TEXT_ENCODING_PHRASES:
        text = text.replace(phrase, "")
    return text


def legend(task: Task, render: str) -> str:
    """How the picture shows the instance, in a few sentences."""
    check_render(render)
    if render == "drawing":
        return DRAWING_LEGENDS[task.name]
    return GRID_PREAMBLE + LAYOUTS[task.name].legend


def _nl_text(task: Task, question: dict, render: str, include_text: bool) -> str:
    title = task.name.replace("_", " ")
    also = f"\nThe same instance as text: {question!r}" if include_text else ""
    return (
        f"## Introduction\nYou are an expert in combinatorial optimisation, in particular the "
        f"{title} problem.\n\n"
        f"## Task description\n{vision_description(task)}\n\n"
        f"## Question\nThe instance is shown in the image. {legend(task, render)}{also}\n\n"
        f"## Submission Format\n{task.answer_format}\n\n"
        "## Instructions\nThink step by step, check that your answer satisfies every constraint, "
        "and do not repeat yourself.\n\n"
        "## Response format\nEnd your response with a final line `Answer: YOUR ANSWER`."
    )


def fit_drawing(image: Image.Image, size: int | None) -> Image.Image:
    """``image`` as RGB, scaled down (never up) to fit a white ``size × size`` square and centred
    on it; unchanged in size when ``size`` is None. ``info["min_text_px"]``: the height of its
    smallest text after scaling, when the renderer said it (``npbench.render``)."""
    text_px = image.info.get(MIN_TEXT)
    image = image.convert("RGB")
    if size is None:
        if text_px is not None:
            image.info[MIN_TEXT] = text_px
        return image
    if type(size) is not int or size < 28:
        raise DmpoError(f"the drawing size must be an integer number of pixels ≥ 28, got {size!r}")
    scale = min(1.0, size / image.width, size / image.height)
    if scale < 1.0:
        shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(shape, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    if text_px is not None:
        canvas.info[MIN_TEXT] = round(text_px * scale, 1)
    return canvas
