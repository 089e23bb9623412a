"""Images of instances for vision models: graph drawings and tables, as PIL images (PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

_BG = "white"
_FG = "black"
_PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def draw_graph(
    n: int,
    edges: Sequence[tuple[int, int]],
    *,
    weights: dict[tuple[int, int], float] | None = None,
    directed: bool = False,
    title: str = "",
    size: int = 640,
) -> Image.Image:
    """Vertices 0..n-1 on a circle, labelled by id; edges as lines, with weights at midpoints."""
    img = Image.new("RGB", (size, size + (40 if title else 0)), _BG)
    draw = ImageDraw.Draw(img)
    top = 40 if title else 0
    if title:
        draw.text((10, 8), title, fill=_FG, font=_font(20))
    centre = size / 2
    radius = size * 0.40
    node_r = max(9, min(22, int(size / (2.8 * max(n, 1)) + 6)))
    pos = [
        (centre + radius * math.cos(2 * math.pi * i / max(n, 1) - math.pi / 2),
         top + centre + radius * math.sin(2 * math.pi * i / max(n, 1) - math.pi / 2))
        for i in range(n)
    ]
    label_font = _font(max(10, node_r))
    weight_font = _font(max(10, int(node_r * 0.8)))
    for u, v in edges:
        draw.line([pos[u], pos[v]], fill="#888888", width=2)
        if directed:
            _arrow_head(draw, pos[u], pos[v], node_r)
    if weights:
        for (u, v), w in weights.items():
            mx, my = (pos[u][0] + pos[v][0]) / 2, (pos[u][1] + pos[v][1]) / 2
            text = f"{w:g}"
            box = draw.textbbox((mx, my), text, font=weight_font, anchor="mm")
            draw.rectangle(box, fill=_BG)
            draw.text((mx, my), text, fill="#c0392b", font=weight_font, anchor="mm")
    for i, (x, y) in enumerate(pos):
        draw.ellipse([x - node_r, y - node_r, x + node_r, y + node_r], fill=_PALETTE[0], outline=_FG)
        draw.text((x, y), str(i), fill="white", font=label_font, anchor="mm")
    return img


def _arrow_head(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], r: float) -> None:
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    tip = (b[0] - r * math.cos(angle), b[1] - r * math.sin(angle))
    for side in (-0.4, 0.4):
        draw.line([tip, (tip[0] - 12 * math.cos(angle + side), tip[1] - 12 * math.sin(angle + side))],
                  fill="#888888", width=2)


def draw_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title: str = "",
    notes: Sequence[str] = (),
    cell_width: int = 110,
    row_height: int = 28,
) -> Image.Image:
    """A plain grid table with a title line above and note lines below."""
    font = _font(16)
    width = max(cell_width * len(headers) + 20, 360)
    height = 20 + (34 if title else 0) + row_height * (len(rows) + 1) + 24 * len(notes) + 10
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    y = 10
    if title:
        draw.text((10, y), title, fill=_FG, font=_font(20))
        y += 34
    for r, row in enumerate([list(headers), *[list(map(str, row)) for row in rows]]):
        for c, cell in enumerate(row):
            x0 = 10 + c * cell_width
            draw.rectangle([x0, y, x0 + cell_width, y + row_height], outline=_FG,
                           fill="#e8eef7" if r == 0 else _BG)
            draw.text((x0 + cell_width / 2, y + row_height / 2), str(cell), fill=_FG, font=font, anchor="mm")
        y += row_height
    y += 10
    for note in notes:
        draw.text((10, y), note, fill=_FG, font=font)
        y += 24
    return img
