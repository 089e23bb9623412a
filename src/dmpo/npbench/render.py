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


# The smallest text of a drawing, in pixels at its own size: fit_drawing (npbench.vision)
# scales it with the image and tells how large it ends up (``image.info["min_text_px"]``).
MIN_TEXT = "min_text_px"


def draw_graph(
    n: int,
    edges: Sequence[tuple[int, int]],
    *,
    weights: dict[tuple[int, int], float] | None = None,
    directed: bool = False,
    title: str = "",
    size: int = 640,
) -> Image.Image:
    """Vertices 0..n-1 on a circle, labelled by id; edges as lines, with weights at midpoints.

    Labels and weights are at least 18 px at ``size`` 640 (12 px once scaled to 448), and the
    circles shrink with n only down to a radius of 14 px (the 50 vertices of ``bench`` still
    fit side by side)."""
    unit = size / 640
    img = Image.new("RGB", (size, size + (40 if title else 0)), _BG)
    draw = ImageDraw.Draw(img)
    top = 40 if title else 0
    if title:
        draw.text((10, 8), title, fill=_FG, font=_font(round(20 * unit)))
    centre = size / 2
    radius = size * 0.40
    node_r = max(14 * unit, min(24 * unit, size / (2.8 * max(n, 1)) + 6 * unit))
    pos = [
        (centre + radius * math.cos(2 * math.pi * i / max(n, 1) - math.pi / 2),
         top + centre + radius * math.sin(2 * math.pi * i / max(n, 1) - math.pi / 2))
        for i in range(n)
    ]
    label_px = round(max(18 * unit, node_r))
    weight_px = round(max(18 * unit, 0.8 * node_r))
    label_font = _font(label_px)
    weight_font = _font(weight_px)
    for u, v in edges:
        draw.line([pos[u], pos[v]], fill="#888888", width=max(1, round(2 * unit)))
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
    img.info[MIN_TEXT] = min(label_px, weight_px) if weights else label_px
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
    blocks: int | None = None,
) -> Image.Image:
    """A plain grid table with a title line above and note lines below (wrapped to the width).

    Each column is as wide as its widest cell. Long tables are cut into ``blocks`` side by side
    (the header repeated on each; by default as many as make the image closest to a square), so
    that the text stays large when the image is scaled to a square."""
    text_px = 16
    font = _font(text_px)
    pad, row_height, gap = 12, 26, 16
    table = [list(map(str, headers)), *[list(map(str, row)) for row in rows]]
    widths = [max(28, max(int(font.getlength(r[c])) for r in table if c < len(r)) + pad)
              for c in range(len(headers))]
    block_width = sum(widths)

    def shape(k: int) -> tuple[int, int, list[str]]:
        per_block = -(-len(rows) // k) if rows else 0
        table_width = k * block_width + (k - 1) * gap + 20
        lines = _wrap(notes, font, max(table_width, 440) - 20)
        width = max(table_width, 200, *(int(font.getlength(line)) + 20 for line in lines))
        height = 20 + (34 if title else 0) + row_height * (per_block + 1) + 24 * len(lines) + 10
        return width, height, lines

    if blocks is None:
        blocks = min(range(1, max(1, len(rows)) + 1), key=lambda k: (max(shape(k)[:2]), k))
    width, height, lines = shape(blocks)
    per_block = -(-len(rows) // blocks) if rows else 0
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    y0 = 10
    if title:
        draw.text((10, y0), title, fill=_FG, font=_font(20))
        y0 += 34
    for b in range(blocks):
        chunk = table[1 + b * per_block: 1 + (b + 1) * per_block]
        x_block = 10 + b * (block_width + gap)
        for r, row in enumerate([table[0], *chunk]):
            x0 = x_block
            for c, cell in enumerate(row):
                y = y0 + r * row_height
                draw.rectangle([x0, y, x0 + widths[c], y + row_height], outline=_FG,
                               fill="#e8eef7" if r == 0 else _BG)
                draw.text((x0 + widths[c] / 2, y + row_height / 2), cell, fill=_FG, font=font, anchor="mm")
                x0 += widths[c]
    y = y0 + row_height * (per_block + 1) + 10
    for line in lines:
        draw.text((10, y), line, fill=_FG, font=font)
        y += 24
    img.info[MIN_TEXT] = text_px
    return img


def _wrap(notes: Sequence[str], font: ImageFont.ImageFont, width: int) -> list[str]:
    """The note lines broken at spaces so that each fits ``width`` pixels (a single word longer
    than that stays whole)."""
    lines = []
    for note in notes:
        line = ""
        for word in note.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines
