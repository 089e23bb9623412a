"""The public vision format: VLMEvalKit's image-dataset TSV, and its prediction files.

VLMEvalKit evaluates an image dataset from one TSV file, a row per question, with the columns
``index``, ``image`` (the image file as base64; a value of at most 64 characters names the
``index`` of another row whose image it shares), ``question``, ``answer`` and category
columns; a model's prediction file has the same rows (without images) plus a ``prediction``
column, as XLSX by default or TSV. Its ``NPMM`` dataset scores from ``data_source``
(``…/NpTsp``), ``ground_truth`` and ``graph`` (the question as a Python literal).

``save_vlmevalkit`` writes instances in that layout, filling those columns too, and keeps
each whole instance as JSON in an ``instance`` column so that nothing is lost;
``load_vlmevalkit`` reads such a file back (every image decoded, every instance checked; a
``grid`` image must decode to its instance's question). ``load_vlmevalkit_predictions`` reads
a prediction file (TSV, or XLSX with a reader written here on the standard library: no
openpyxl needed). Every problem with a file is a one-line DmpoError naming the file and row.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from PIL import Image, UnidentifiedImageError

from dmpo.errors import DmpoError
from dmpo.npbench.base import Instance
from dmpo.npbench.registry import category_of, get_task

# The largest cell read from a TSV or XLSX file (characters): a bound on memory and time for a
# corrupt or hostile file. An image of a 448 px drawing is about 40,000 characters.
MAX_CELL = 8_000_000
# The largest XML part of an XLSX file read (bytes, uncompressed).
MAX_XLSX_PART = 256_000_000
# An image larger than this (pixels) is refused before it is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096

REQUIRED = ("index", "image", "question", "answer", "instance")
# VLMEvalKit's NPMM names of our tasks (its evaluator reads ``data_source`` = ``…/Np…``).
NPMM_NAMES: dict[str, str] = {
    "graph_coloring": "NpGcpD",
    "feedback_vertex_set": "NpFeedbackVertexSet",
    "vertex_cover": "NpVertexCover",
    "dominating_set": "NpDominatingSet",
    "min_cut": "NpMinimumCut",
    "max_cut": "NpMaximumCut",
    "max_clique": "NpMaximumCliqueProblem",
    "max_independent_set": "NpMaximumSet",
    "tsp": "NpTsp",
    "hamiltonian_cycle": "NpHamiltonianCycle",
}
COLUMNS = ("index", "image", "question", "answer", "category", "l2-category", "task", "difficulty", "id",
           "render", "data_source", "ground_truth", "graph", "instance")


@dataclass(frozen=True)
class VLMEvalKitItem:
    """One row of a VLMEvalKit TSV: the instance, its decoded image and the question text."""

    index: str
    instance: Instance
    image: Image.Image
    question: str
    render: str | None


# ---- writing -------------------------------------------------------------------------------
def save_vlmevalkit(instances: Iterable[Instance], path: str | Path, *, render: str = "drawing",
                    style: str = "nl") -> Path:
    """Write ``instances`` as a VLMEvalKit image-dataset TSV (see the module docstring): the
    ``question`` is the vision prompt's text and ``image`` its PNG, in base64."""
    from dmpo.npbench.vision import check_render  # vision imports grid, which imports tasks

    check_render(render)
    path = Path(path)
    rows = []
    for i, inst in enumerate(instances):
        task = get_task(inst.task)
        prompt = task.vision_prompt(inst, render, style=style)
        buffer = io.BytesIO()
        prompt.image.save(buffer, format="PNG")
        rows.append({
            "index": i,
            "image": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "question": prompt.text,
            "answer": inst.solution or "",
            "category": category_of(task.name, protocol="vision") or category_of(task.name) or "",
            "l2-category": task.name,
            "task": task.name,
            "difficulty": inst.difficulty,
            "id": inst.id,
            "render": render,
            "data_source": f"npbench/{NPMM_NAMES.get(task.name, task.name)}",
            "ground_truth": "" if inst.optimum is None else f"{inst.optimum:g}",
            "graph": repr(inst.question),
            "instance": inst.to_json(),
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---- reading the data file -----------------------------------------------------------------
def load_vlmevalkit(path: str | Path) -> list[VLMEvalKitItem]:
    """The rows of a TSV written by :func:`save_vlmevalkit` (or by VLMEvalKit from one)."""
    from dmpo.npbench.grid import decode_grid

    path = Path(path)
    header, rows = read_table(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        hint = " (write one with `dmpo bench generate --format vlmevalkit`)" if "instance" in missing else ""
        raise DmpoError(f"{path}: a VLMEvalKit TSV needs the column(s) {missing}; it has {header[:20]}{hint}")
    images = {row["index"]: row["image"] for _, row in rows}
    items, seen = [], set()
    for where, row in rows:
        index = row["index"]
        if not index:
            raise DmpoError(f"{where}: empty 'index'")
        if index in seen:
            raise DmpoError(f"{where}: 'index' {index!r} repeats an earlier row")
        seen.add(index)
        encoded = row["image"]
        if len(encoded) <= 64:  # VLMEvalKit: the index of the row whose image this one shares
            if encoded not in images or len(images[encoded]) <= 64:
                raise DmpoError(f"{where}: 'image' is neither base64 nor the index of a row with an image: "
                                f"{encoded!r}")
            encoded = images[encoded]
        image = decode_image(encoded, where)
        try:
            data = json.loads(row["instance"])
        except (ValueError, RecursionError):
            raise DmpoError(f"{where}: 'instance' is not valid JSON") from None
        try:
            inst = Instance.from_dict(data)
            task = get_task(inst.task)
            task.validate_question(inst.question)
        except RecursionError:
            raise DmpoError(f"{where}: 'instance' nested too deeply") from None
        except DmpoError as exc:
            raise DmpoError(f"{where}: {exc}") from None
        render = row.get("render") or None
        if render == "grid":
            try:
                decoded = decode_grid(task, image)
            except DmpoError as exc:
                raise DmpoError(f"{where}: the grid image does not hold the instance: {exc}") from None
            if decoded != _canonical(task, inst.question):
                raise DmpoError(f"{where}: the grid image shows another instance than the 'instance' column")
        items.append(VLMEvalKitItem(index, inst, image, row["question"], render))
    return items


def _canonical(task: Any, question: dict) -> dict:
    """The question as the grid decoder writes it (the generator's layout)."""
    from dmpo.npbench.grid import decode_grid, grid_image

    return decode_grid(task, grid_image(task, question))


def decode_image(encoded: str, where: str) -> Image.Image:
    """The RGB image of a base64 cell, or a one-line DmpoError."""
    try:
        data = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DmpoError(f"{where}: 'image' is not valid base64") from None
    unreadable = DmpoError(f"{where}: 'image' is base64 but not a readable image")
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise unreadable from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise DmpoError(f"{where}: the image is {image.width}×{image.height} pixels, more than {MAX_IMAGE_PIXELS:,}")
    try:
        return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise unreadable from None


# ---- reading predictions -------------------------------------------------------------------
def load_vlmevalkit_predictions(path: str | Path, index_to_id: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Completions by item id from a VLMEvalKit prediction file (TSV or XLSX with a
    ``prediction`` column): the row's ``id`` when the file has that column, else its
    ``index`` mapped through ``index_to_id`` (the data file's), else the index itself. Rows
    with the same id accumulate (k samples)."""
    path = Path(path)
    header, rows = read_table(path)
    if "prediction" not in header:
        raise DmpoError(f"{path}: a VLMEvalKit prediction file needs a 'prediction' column; it has {header[:20]}")
    key = "id" if "id" in header else "index" if "index" in header else None
    if key is None:
        raise DmpoError(f"{path}: a VLMEvalKit prediction file needs an 'index' (or 'id') column")
    out: dict[str, list[str]] = {}
    for where, row in rows:
        item = row[key]
        if not item:
            raise DmpoError(f"{where}: empty {key!r}")
        if key == "index" and index_to_id is not None:
            item = index_to_id.get(item, item)
        out.setdefault(item, []).append(row["prediction"])
    return out


def read_table(path: Path) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """(header, [(where, row)]) of a TSV or XLSX file; every cell as text."""
    if not path.exists():
        raise DmpoError(f"no such file: {path}")
    if path.is_dir():
        raise DmpoError(f"{path} is a folder; expected a TSV or XLSX file")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        table = list(_xlsx_rows(path))
        first_line = 1
    elif suffix == ".tsv":
        table = _tsv_rows(path)
        first_line = 1
    else:
        raise DmpoError(f"{path}: expected a .tsv or .xlsx file")
    if not table:
        raise DmpoError(f"{path}: empty file (no header row)")
    header = [h.strip() for h in table[0]]
    if len(set(header)) != len(header):
        raise DmpoError(f"{path}: repeated column names in the header {header[:20]}")
    rows = []
    for number, cells in enumerate(table[1:], first_line + 1):
        if not any(cells):
            continue  # a blank line
        where = f"{path}: row {number}"
        if len(cells) > len(header):
            raise DmpoError(f"{where} has {len(cells)} cells, the header {len(header)}")
        cells = cells + [""] * (len(header) - len(cells))
        rows.append((where, dict(zip(header, cells))))
    return header, rows


def _tsv_rows(path: Path) -> list[list[str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DmpoError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DmpoError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if "\0" in text:
        raise DmpoError(f"{path}: a NUL byte; not a TSV text file")
    old = csv.field_size_limit(MAX_CELL)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    try:
        return list(reader)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DmpoError(f"{path}: row {reader.line_num}: a cell longer than {MAX_CELL:,} characters") from None
        raise DmpoError(f"{path}: row {reader.line_num}: not valid TSV ({exc})") from None
    finally:
        csv.field_size_limit(old)


# ---- a small XLSX reader (the first sheet, every cell as text) ------------------------------
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]{1,3})(\d+)")


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DmpoError(f"{path}: not an XLSX file (not a zip archive)") from None
    with archive:
        sheet = _first_sheet(archive, path)
        strings = _shared_strings(archive, path)
        root = _xml(archive, sheet, path)
        previous = 0
        for row in root.iterfind("m:sheetData/m:row", _NS):
            number = _int(row.get("r"), previous + 1, path)
            if number <= previous:
                raise DmpoError(f"{path}: sheet rows out of order at row {number}")
            yield from ([] for _ in range(number - previous - 1))  # skipped (empty) rows
            previous = number
            cells: list[str] = []
            for cell in row.iterfind("m:c", _NS):
                column = len(cells)
                ref = cell.get("r")
                if ref is not None:
                    match = _CELL_REF.fullmatch(ref)
                    if match is None:
                        raise DmpoError(f"{path}: row {number}: bad cell reference {ref!r}")
                    column = _column(match[1])
                    if column < len(cells) or column > 16_384:
                        raise DmpoError(f"{path}: row {number}: cell {ref} out of order")
                cells.extend([""] * (column - len(cells)))
                cells.append(_cell_text(cell, strings, path, number))
            yield cells


def _first_sheet(archive: zipfile.ZipFile, path: Path) -> str:
    workbook = _xml(archive, "xl/workbook.xml", path)
    sheet = workbook.find("m:sheets/m:sheet", _NS)
    if sheet is None or sheet.get(_REL) is None:
        raise DmpoError(f"{path}: the workbook has no sheet")
    rels = _xml(archive, "xl/_rels/workbook.xml.rels", path)
    for rel in rels.iter(f"{_PKG_REL}Relationship"):
        if rel.get("Id") == sheet.get(_REL):
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    raise DmpoError(f"{path}: the workbook's first sheet has no part")


def _shared_strings(archive: zipfile.ZipFile, path: Path) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    root = _xml(archive, "xl/sharedStrings.xml", path)
    return [_text_of(si) for si in root.iterfind("m:si", _NS)]


def _text_of(element: ElementTree.Element) -> str:
    """The text of a string item (``<t>`` or rich-text runs ``<r><t>``; phonetic runs skipped)."""
    parts = [t.text or "" for t in element.iterfind("m:t", _NS)]
    parts += [t.text or "" for t in element.iterfind("m:r/m:t", _NS)]
    return "".join(parts)


def _cell_text(cell: ElementTree.Element, strings: list[str], path: Path, row: int) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find("m:is", _NS)
        text = "" if inline is None else _text_of(inline)
    else:
        value = cell.find("m:v", _NS)
        text = "" if value is None or value.text is None else value.text
        if kind == "s":
            index = _int(text, -1, path)
            if not 0 <= index < len(strings):
                raise DmpoError(f"{path}: row {row}: shared string {text!r} does not exist")
            text = strings[index]
        elif kind == "b":
            text = "TRUE" if text == "1" else "FALSE"
        elif kind == "n" and text:
            text = _number_text(text)
    if len(text) > MAX_CELL:
        raise DmpoError(f"{path}: row {row}: a cell longer than {MAX_CELL:,} characters")
    return text


def _number_text(text: str) -> str:
    """A numeric cell as pandas would show an integer index: ``3.0`` → ``3``."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else text


def _xml(archive: zipfile.ZipFile, name: str, path: Path) -> ElementTree.Element:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise DmpoError(f"{path}: not an XLSX file (no {name})") from None
    if info.file_size > MAX_XLSX_PART:
        raise DmpoError(f"{path}: {name} is {info.file_size:,} bytes uncompressed, more than {MAX_XLSX_PART:,}")
    try:
        with archive.open(info) as f:
            data = f.read(MAX_XLSX_PART + 1)
        if len(data) > MAX_XLSX_PART:
            raise DmpoError(f"{path}: {name} is larger than {MAX_XLSX_PART:,} bytes uncompressed")
        return ElementTree.fromstring(data)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        raise DmpoError(f"{path}: {name} is corrupt") from None
    except ElementTree.ParseError as exc:
        raise DmpoError(f"{path}: {name} is not valid XML ({exc})") from None


def _int(text: str | None, default: int, path: Path) -> int:
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise DmpoError(f"{path}: {text!r:.40} is not a row or string number")
    return int(text)


def _column(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - ord("A") + 1
    return index - 1
