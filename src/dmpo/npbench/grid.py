"""The ``grid`` rendering: an instance as a small image of coloured cells that a vision model
trained from scratch can learn to read, and a plain reference decoder that reads it back.

The image is a square of ``cells × cells`` cells of ``cell_px × cell_px`` pixels each, in one
of three fixed formats (the smallest that holds the layout): 56 px with 4-pixel cells (14 × 14
cells), 112 px with 2-pixel cells (56 × 56) or 224 px with 2-pixel cells (112 × 112); all are
multiples of 28, the pixels of one token of a Qwen2-VL image encoder (patch 14, merge 2), so
that no image processor resizes them. Every cell holds one integer ``0 ≤ v ≤ 4095`` in its
colour, one hexadecimal digit per channel: ``R = 17·(v mod 16)``, ``G = 17·(⌊v/16⌋ mod 16)``,
``B = 17·⌊v/256⌋`` (so 0 is black, 15 is pure red, and values below 16 differ only in red).
Flags (an edge, a member) are 15. Unused cells are 0. Row 0 is the header with the sizes; the
layout of each task is in ``LAYOUTS`` and in docs/vision.md.

``grid_image(task, question)`` draws; ``decode_grid(task, image)`` returns the question in the
layout the task's generator writes, so that a generated instance decodes to exactly its
``question``. A value that does not fit a cell (negative, above 4095, not an integer) or an
instance larger than 112 × 112 cells is a DmpoError; so is an image that is not a grid image of
the task (wrong size, a colour that is not a cell value, anything outside the layout).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from dmpo.errors import DmpoError
from dmpo.npbench.base import Task, is_number
from dmpo.npbench.tasks._graph import Graph, adjacency_lists, dict_of_dicts, parse_graph

CELL_MAX = 4095  # three hexadecimal digits
FLAG = 15  # a set flag: pure red
STEP = 17  # one hexadecimal digit step in a channel: 15 · 17 = 255
# (image side in pixels, cell side in pixels), smallest first.
FORMATS: tuple[tuple[int, int], ...] = ((56, 4), (112, 2), (224, 2))
MAX_CELLS = FORMATS[-1][0] // FORMATS[-1][1]

Rows = list[list[int]]


# ---- cells <-> pixels ----------------------------------------------------------------------
def cell_colour(value: int) -> tuple[int, int, int]:
    """The RGB colour of a cell holding ``value`` (0..4095)."""
    return (STEP * (value & 15), STEP * (value >> 4 & 15), STEP * (value >> 8 & 15))


def cell_value(rgb: tuple[int, int, int]) -> int | None:
    """The value of a cell colour, or None if the colour is not one of a cell."""
    r, g, b = rgb
    if r % STEP or g % STEP or b % STEP:
        return None
    return r // STEP | (g // STEP) << 4 | (b // STEP) << 8


def grid_format(rows: Rows) -> tuple[int, int]:
    """(image side, cell side) of the smallest format that holds ``rows``, or DmpoError."""
    need = max(len(rows), max((len(r) for r in rows), default=0))
    for side, cell in FORMATS:
        if need <= side // cell:
            return side, cell
    raise DmpoError(f"the instance needs a grid of {need} × {need} cells; the grid rendering holds "
                    f"at most {MAX_CELLS} × {MAX_CELLS} (use render='drawing')")


def rows_to_image(rows: Rows) -> Image.Image:
    """The image of a cell layout (rows of values; short rows end in zeros)."""
    side, cell = grid_format(rows)
    n = side // cell
    data = bytearray(side * side * 3)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if not (type(value) is int and 0 <= value <= CELL_MAX):
                raise DmpoError(f"a grid cell holds an integer 0..{CELL_MAX}, got {value!r}")
            if not value:
                continue
            colour = bytes(cell_colour(value))
            for y in range(r * cell, (r + 1) * cell):
                start = (y * side + c * cell) * 3
                data[start:start + 3 * cell] = colour * cell
    assert n >= len(rows)
    return Image.frombytes("RGB", (side, side), bytes(data))


def image_to_rows(image: Any) -> Rows:
    """The full square of cell values of a grid image, or DmpoError if it is not one: a
    known size, every cell one flat colour that is a cell value."""
    if not isinstance(image, Image.Image):
        raise DmpoError(f"expected a PIL image, got {type(image).__name__}")
    formats = dict(FORMATS)
    if image.size[0] != image.size[1] or image.size[0] not in formats:
        raise DmpoError(f"a grid image is {' or '.join(f'{s}×{s}' for s, _ in FORMATS)} pixels, "
                        f"got {image.size[0]}×{image.size[1]}")
    side = image.size[0]
    cell = formats[side]
    pixels = image.convert("RGB").tobytes()
    n = side // cell
    rows = []
    for r in range(n):
        row = []
        for c in range(n):
            colours = {pixels[(y * side + x) * 3:(y * side + x) * 3 + 3]
                       for y in range(r * cell, (r + 1) * cell) for x in range(c * cell, (c + 1) * cell)}
            value = cell_value(tuple(colours.pop())) if len(colours) == 1 else None
            if value is None:
                raise DmpoError(f"grid cell ({r}, {c}) is not one flat cell colour; not a grid image")
            row.append(value)
        rows.append(row)
    return rows


# ---- values --------------------------------------------------------------------------------
def _fit(value: Any, what: str) -> int:
    """``value`` as a cell value (an integral number 0..4095), or DmpoError."""
    if is_number(value) and value == int(value):
        value = int(value)
        if 0 <= value <= CELL_MAX:
            return value
    raise DmpoError(f"{what} is {value!r}; the grid rendering holds integers 0..{CELL_MAX} "
                    "(use render='drawing')")


def _count(rows: Rows, r: int, c: int, what: str, lo: int = 0) -> int:
    value = rows[r][c]
    if value < lo:
        raise DmpoError(f"grid header: {what} is {value}, expected at least {lo}; not a grid image of this task")
    return value


def _flags(values: list[int], where: str) -> list[bool]:
    for v in values:
        if v not in (0, FLAG):
            raise DmpoError(f"grid {where}: a flag cell holds {v}, expected 0 or {FLAG}")
    return [v == FLAG for v in values]


def _room(rows: Rows, needed_rows: int, needed_cols: int) -> None:
    if needed_rows > len(rows) or needed_cols > len(rows):
        raise DmpoError(f"grid header asks for {needed_rows} × {needed_cols} cells, the image has "
                        f"{len(rows)} × {len(rows)}; not a grid image of this task")


# ---- layouts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How one task's question maps to cells. ``legend``: the layout in one paragraph, for the
    prompt text and docs/vision.md."""

    encode: Callable[[Task, dict], Rows]
    decode: Callable[[Task, Rows], dict]
    legend: str


def _graph_encode(task: Task, question: dict) -> Rows:
    graph = parse_graph(question, task.name)
    rows = [[graph.n]] + [[FLAG if graph.masks[u] >> v & 1 else 0 for v in range(graph.n)]
                          for u in range(graph.n)]
    return rows


def _graph_read(task: Task, rows: Rows) -> Graph:
    n = _count(rows, 0, 0, "the number of vertices", 1)
    _room(rows, n + 1, n)
    edges = []
    for u in range(n):
        flags = _flags(rows[1 + u][:n], f"row {1 + u}")
        for v in range(n):
            if flags[v] != bool(rows[1 + v][u]):
                raise DmpoError(f"grid adjacency matrix is not symmetric at ({u}, {v})")
            if flags[v] and u == v:
                raise DmpoError(f"grid adjacency matrix has a self loop at {u}")
            if flags[v] and u < v:
                edges.append((u, v))
    return Graph.from_edges(n, edges)


_GRAPH_LEGEND = ("Row 0: n (the number of vertices) in column 0. Rows 1..n, columns 0..n-1: the adjacency "
                 "matrix; the cell in row 1+u, column v is 15 (red) when u and v are adjacent, else 0.")


def _adjacency_layout() -> Layout:
    return Layout(_graph_encode, lambda task, rows: adjacency_lists(_graph_read(task, rows)), _GRAPH_LEGEND)


def _matrix_encode(task: Task, question: dict) -> Rows:
    weights = task.prepare(question)  # tsp: lists of ints; min_cut: a numpy array
    n = len(weights)
    return [[n]] + [[_fit(float(weights[i][j]), f"weight {i}-{j}") for j in range(n)] for i in range(n)]


def _matrix_read(rows: Rows, lo: int) -> list[list[int]]:
    n = _count(rows, 0, 0, "n", lo)
    _room(rows, n + 1, n)
    return [rows[1 + i][:n] for i in range(n)]


def _matrix_decode(task: Task, rows: Rows) -> dict:
    matrix = _matrix_read(rows, 2)
    n = len(matrix)
    return {str(i): {str(j): matrix[i][j] for j in range(n)} for i in range(n)}


_MATRIX_LEGEND = ("Row 0: n in column 0. Rows 1..n, columns 0..n-1: the symmetric weight matrix; the cell in "
                  "row 1+i, column j holds the {what} between {items} i and j (0 on the diagonal{zero}).")


def _max_cut_encode(task: Task, question: dict) -> Rows:
    n = question["num_vertices"]
    weights = [[0] * n for _ in range(n)]
    for key, w in question["edges"].items():
        u, v = (int(x) for x in key.split("-"))
        weights[u][v] = weights[v][u] = _fit(w, f"the weight of edge {key}")
    return [[_fit(n, "the number of vertices")], *weights]


def _max_cut_decode(task: Task, rows: Rows) -> dict:
    matrix = _matrix_read(rows, 2)
    n = len(matrix)
    return {"num_vertices": n, "edges": {f"{u}-{v}": matrix[u][v]
                                         for u, v in itertools.combinations(range(n), 2) if matrix[u][v]}}


def _knapsack_encode(task: Task, question: dict) -> Rows:
    capacity, weights, values = task.prepare(question)
    rows = [[_fit(capacity, "the capacity"), len(weights)]]
    rows += [[_fit(w, f"the weight of item {i}"), _fit(v, f"the value of item {i}")]
             for i, (w, v) in enumerate(zip(weights, values))]
    return rows


def _knapsack_decode(task: Task, rows: Rows) -> dict:
    capacity, m = rows[0][0], _count(rows, 0, 1, "the number of items")
    _room(rows, m + 1, 2)
    return {"capacity": capacity,
            "items": {str(i): {"weight": rows[1 + i][0], "value": rows[1 + i][1]} for i in range(m)}}


def _subset_sum_encode(task: Task, question: dict) -> Rows:
    target, numbers = task.prepare(question)
    return [[_fit(target, "the target"), len(numbers)]] + [[_fit(v, f"number {i}")] for i, v in enumerate(numbers)]


def _subset_sum_decode(task: Task, rows: Rows) -> dict:
    target, n = rows[0][0], _count(rows, 0, 1, "the number of numbers")
    _room(rows, n + 1, 1)
    return {"target": target, "numbers": {str(i): rows[1 + i][0] for i in range(n)}}


def _set_cover_encode(task: Task, question: dict) -> Rows:
    subsets = [question["S"][str(k)] for k in range(len(question["S"]))]
    elements = sorted(set(question["U"]).union(*subsets))
    universe = set(question["U"])
    rows = [[len(subsets), len(elements)],
            [_fit(e, "an element id") for e in elements],
            [FLAG if e in universe else 0 for e in elements]]
    rows += [[FLAG if e in members else 0 for e in elements] for members in map(set, subsets)]
    return rows


def _set_cover_decode(task: Task, rows: Rows) -> dict:
    s, e = _count(rows, 0, 0, "the number of subsets"), _count(rows, 0, 1, "the number of elements")
    _room(rows, s + 3, e)
    elements = rows[1][:e]
    if any(a >= b for a, b in itertools.pairwise(elements)):
        raise DmpoError("grid row 1: element ids must increase from left to right")
    universe = [x for x, inside in zip(elements, _flags(rows[2][:e], "row 2")) if inside]
    subsets = {str(k): [x for x, inside in zip(elements, _flags(rows[3 + k][:e], f"row {3 + k}")) if inside]
               for k in range(s)}
    return {"U": universe, "S": subsets}


def _meeting_encode(task: Task, question: dict) -> Rows:
    meetings = [question["meetings"][str(m)] for m in range(len(question["meetings"]))]
    people = len(question["attendee_availability"])
    rooms = [question["rooms"][str(r)] for r in range(len(question["rooms"]))]
    rows = [[len(meetings), people, len(rooms)]]
    for m, meeting in enumerate(meetings):
        members = set(meeting["attendees"])
        rows.append([_fit(meeting["duration"], f"the duration of meeting {m}"),
                     *(FLAG if a in members else 0 for a in range(people))])
    for a in range(people):
        windows = question["attendee_availability"][str(a)]
        rows.append([len(windows), *(_fit(t, f"a time of attendee {a}") for window in windows for t in window)])
    rows.append([_fit(c, f"the capacity of room {r}") for r, c in enumerate(rooms)])
    return rows


def _meeting_decode(task: Task, rows: Rows) -> dict:
    m = _count(rows, 0, 0, "the number of meetings")
    people = _count(rows, 0, 1, "the number of attendees")
    r = _count(rows, 0, 2, "the number of rooms")
    _room(rows, m + people + 2, max(people + 1, r))
    meetings = {}
    for i in range(m):
        row = rows[1 + i]
        flags = _flags(row[1:1 + people], f"row {1 + i}")
        meetings[str(i)] = {"attendees": [a for a in range(people) if flags[a]], "duration": row[0]}
    availability = {}
    for a in range(people):
        row = rows[1 + m + a]
        k = row[0]
        _room(rows, 1, 1 + 2 * k)
        availability[str(a)] = [[row[1 + 2 * w], row[2 + 2 * w]] for w in range(k)]
    last = rows[1 + m + people]
    return {"meetings": meetings, "attendee_availability": availability,
            "rooms": {str(i): last[i] for i in range(r)}}


_MIS_LAYOUT = Layout(_graph_encode, lambda task, rows: dict_of_dicts(_graph_read(task, rows)), _GRAPH_LEGEND)

LAYOUTS: dict[str, Layout] = {
    "graph_coloring": _adjacency_layout(),
    "max_clique": _adjacency_layout(),
    "max_independent_set": _MIS_LAYOUT,
    "vertex_cover": _adjacency_layout(),
    "dominating_set": _adjacency_layout(),
    "feedback_vertex_set": _adjacency_layout(),
    "hamiltonian_cycle": _adjacency_layout(),
    "tsp": Layout(_matrix_encode, _matrix_decode,
                  _MATRIX_LEGEND.format(what="distance", items="cities", zero="")),
    "min_cut": Layout(_matrix_encode, _matrix_decode,
                      _MATRIX_LEGEND.format(what="edge weight", items="vertices", zero="; 0 means no edge")),
    "max_cut": Layout(_max_cut_encode, _max_cut_decode,
                      _MATRIX_LEGEND.format(what="edge weight", items="vertices", zero="; 0 means no edge")),
    "knapsack": Layout(_knapsack_encode, _knapsack_decode,
                       "Row 0: the capacity in column 0, m (the number of items) in column 1. Rows 1..m: "
                       "item i in row 1+i, its weight in column 0 and its value in column 1."),
    "subset_sum": Layout(_subset_sum_encode, _subset_sum_decode,
                         "Row 0: the target in column 0, n (the count of numbers) in column 1. Rows 1..n: "
                         "number i in row 1+i, column 0."),
    "set_cover": Layout(_set_cover_encode, _set_cover_decode,
                        "Row 0: s (the number of subsets) in column 0, e (the number of distinct elements) in column 1. "
                        "Row 1: the element ids, increasing, one per column 0..e-1. Row 2: 15 under "
                        "each element of U. Rows 3..s+2: subset k in row 3+k, 15 under each of its "
                        "elements."),
    "meeting_schedule": Layout(_meeting_encode, _meeting_decode,
                               "Row 0: the numbers of meetings m, attendees p and rooms r in columns 0, 1, 2. Rows 1..m: meeting i in row "
                               "1+i, its duration in minutes in column 0, then 15 in column 1+a for each "
                               "attendee a. Rows m+1..m+p: attendee a in row 1+m+a, the number k of "
                               "availability windows in column 0, then each window's start and end "
                               "(minutes from midnight) in columns 1..2k. Row m+p+1: the capacity of "
                               "room j in column j."),
}


def _layout(task: Task) -> Layout:
    layout = LAYOUTS.get(task.name)
    if layout is None:
        raise DmpoError(f"{task.name} has no grid layout")
    return layout


def grid_rows(task: Task, question: dict) -> Rows:
    """The cell layout of a question (validated first)."""
    task.validate_question(question)
    return _layout(task).encode(task, question)


def grid_image(task: Task, question: dict) -> Image.Image:
    """The ``grid`` image of a question (see the module docstring), or DmpoError if it does not
    fit."""
    return rows_to_image(grid_rows(task, question))


def decode_grid(task: Task | str, image: Any) -> dict:
    """The question drawn in a ``grid`` image, in the layout the task's generator writes; a
    DmpoError if the image is not a grid image of that task. The reference decoder: it shows
    that the picture holds the whole instance."""
    if isinstance(task, str):
        from dmpo.npbench.registry import get_task  # the registry imports the task modules

        task = get_task(task)
    rows = image_to_rows(image)
    layout = _layout(task)
    try:
        question = layout.decode(task, rows)
        task.validate_question(question)
    except IndexError:
        raise DmpoError(f"the grid header does not fit the image; not a {task.name} grid image") from None
    except DmpoError as exc:
        raise DmpoError(f"not a {task.name} grid image: {exc}") from None
    # Nothing else may be in the picture: drawing the decoded question gives the same cells.
    again = layout.encode(task, question)
    full = [row + [0] * (len(rows) - len(row)) for row in again] + [[0] * len(rows)] * (len(rows) - len(again))
    if full != rows:
        raise DmpoError(f"the image holds cells outside the {task.name} layout; not a {task.name} grid image")
    return question
