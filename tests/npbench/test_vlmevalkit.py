"""The public vision format: VLMEvalKit's image-dataset TSV written by ``dmpo bench generate
--format vlmevalkit``, read back by ``npbench.load``, and VLMEvalKit prediction files (TSV, or
XLSX from xlsxwriter or openpyxl, read without either) scored by ``dmpo bench score``."""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from dmpo import npbench
from dmpo.cli.main import main
from dmpo.errors import DmpoError
from dmpo.npbench import vlmevalkit
from dmpo.npbench.vlmevalkit import load_vlmevalkit, save_vlmevalkit

DATA = Path(__file__).parent / "data"
# Rows 0..6 of the scored file and what each prediction earns (see data/make_vlmevalkit_predictions.py).
ITEMS = [("vertex_cover", 0), ("vertex_cover", 1), ("vertex_cover", 2), ("max_cut", 0), ("max_cut", 1),
         ("knapsack", 0), ("knapsack", 1)]
PREDICTIONS = [
    "I think the answer is\nAnswer: [1, 2, 4]",  # the optimum (3 vertices): QR 1
    "Answer: [0, 1, 2, 3]",  # every vertex: valid, 4 where 2 is optimal: QR 1/2
    "no idea",  # no answer
    "Answer: [[0], [1, 2, 3, 4, 5]]",  # cut 10 + 10 + 3 + 9 = 32 of 41
    "Answer: [[0, 0], [1, 2, 3, 4]]",  # vertex 0 twice: invalid
    "**Answer:** [0, 2]",  # weight 26 of 26, value 61 of 70
    "",  # an empty cell
]


def instances() -> list[npbench.Instance]:
    return [npbench.get_task(name).generate(seed=seed, difficulty="tiny") for name, seed in ITEMS]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return save_vlmevalkit(instances(), tmp_path_factory.mktemp("vlm") / "npbench.tsv")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- generate -> load ------------------------------------------------------------------------
@pytest.mark.parametrize("render", ["drawing", "grid"])
def test_generate_then_load_gives_back_the_instances_and_images(tmp_path, capsys, render):
    path = tmp_path / "d.tsv"
    code, _, err = _run(["bench", "generate", "--tasks", "vertex_cover,knapsack", "--difficulty", "tiny",
                           "--count", "2", "--format", "vlmevalkit", "--render", render, "-o", str(path)], capsys)
    assert code == 0, err
    expected = [npbench.get_task(t).generate(seed=s, difficulty="tiny")
                for t in ("vertex_cover", "knapsack") for s in range(2)]
    assert [i.to_dict() for i in npbench.load(path)] == [i.to_dict() for i in expected]
    items = load_vlmevalkit(path)
    assert [item.index for item in items] == ["0", "1", "2", "3"]
    for item, inst in zip(items, expected):
        prompt = npbench.get_task(inst.task).vision_prompt(inst, render)
        assert item.question == prompt.text and item.render == render
        assert item.image.size == prompt.image.size and item.image.tobytes() == prompt.image.tobytes()
        if render == "grid":
            assert npbench.decode_grid(inst.task, item.image) == inst.question


def test_the_file_reads_as_vlmevalkit_reads_it(data_file):
    pandas = pytest.importorskip("pandas")
    table = pandas.read_csv(data_file, sep="\t")
    assert list(table.columns) == list(vlmevalkit.COLUMNS)
    assert list(table["index"]) == list(range(len(ITEMS)))
    assert list(table["category"]) == ["covering"] * 3 + ["partitioning"] * 2 + ["selection"] * 2
    # What NPMM's evaluator reads: the task from data_source, the optimum, the question.
    assert [s.split("/")[1] for s in table["data_source"]] == ["NpVertexCover"] * 3 + ["NpMaximumCut"] * 2 + [
        "knapsack"] * 2
    for row, inst in zip(table.itertuples(), instances()):
        assert float(row.ground_truth) == inst.optimum
        assert ast.literal_eval(row.graph) == inst.question
        assert row.answer == inst.solution
        image = Image.open(io.BytesIO(base64.b64decode(row.image)))
        assert image.size == (448, 448)


def test_a_short_image_cell_shares_the_image_of_the_row_it_names(tmp_path, data_file):
    rows = list(csv.DictReader(data_file.open(encoding="utf-8"), delimiter="\t"))
    rows[1]["image"] = "0"  # VLMEvalKit: the index of a row with the same picture
    path = _write_tsv(tmp_path / "shared.tsv", rows)
    items = load_vlmevalkit(path)
    assert items[1].image.tobytes() == items[0].image.tobytes()
    rows[1]["image"] = "99"
    with pytest.raises(DmpoError, match="neither base64"):
        load_vlmevalkit(_write_tsv(tmp_path / "bad.tsv", rows))


# ---- score -----------------------------------------------------------------------------------
EXPECTED = {  # per task: sr (valid rate) and qr, ×100
    "vertex_cover": (200 / 3, (1 + 0.5 + 0) / 3 * 100),
    "max_cut": (50.0, 32 / 41 / 2 * 100),
    "knapsack": (50.0, 61 / 70 / 2 * 100),
}


@pytest.mark.parametrize("predictions", ["xlsxwriter.xlsx", "openpyxl.xlsx", "tsv-by-index", "tsv-by-id"])
def test_score_a_vlmevalkit_prediction_file(tmp_path, capsys, data_file, predictions):
    if predictions.endswith(".xlsx"):
        preds = DATA / f"predictions_{predictions}"
    else:
        rows = list(csv.DictReader(data_file.open(encoding="utf-8"), delimiter="\t"))
        for row, prediction in zip(rows, PREDICTIONS):
            del row["image"]
            row["prediction"] = prediction
            if predictions == "tsv-by-index":
                del row["id"]
        rows.reverse()  # matched by index or id, not by position
        preds = _write_tsv(tmp_path / "preds.tsv", rows, quoting=csv.QUOTE_ALL)
    out_json = tmp_path / "s.json"
    code, _, err = _run(["bench", "score", str(data_file), str(preds), "--protocol", "vision",
                           "--json", str(out_json)], capsys)
    assert code == 0, err
    summary = json.loads(out_json.read_text())
    for task, (sr, qr) in EXPECTED.items():
        assert summary["tasks"][task]["sr"] == pytest.approx(sr)
        assert summary["tasks"][task]["qr"] == pytest.approx(qr)
    assert summary["tasks"]["vertex_cover"]["distinct_valid"] == pytest.approx(2 / 3)
    assert summary["tasks"]["max_cut"]["pass@1"] == 0.0
    assert summary["tasks_outside_protocol"] == ["knapsack"]
    assert summary["overall"]["qr"] == pytest.approx((EXPECTED["vertex_cover"][1] + EXPECTED["max_cut"][1]) / 2)
    assert summary["missing_predictions"] == 0


def test_load_predictions_reads_xlsx_cells_as_text():
    preds = npbench.load_predictions(DATA / "predictions_xlsxwriter.xlsx")
    assert preds == {str(i): [p] for i, p in enumerate(PREDICTIONS)}
    mapped = npbench.load_predictions(DATA / "predictions_openpyxl.xlsx", index_to_id={"0": "a"})
    assert mapped["a"] == [PREDICTIONS[0]] and mapped["6"] == [""]


# ---- bad files: one line each ----------------------------------------------------------------
def _write_tsv(path: Path, rows: list[dict], *, quoting: int = csv.QUOTE_MINIMAL) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n", quoting=quoting)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _xlsx(path: Path, sheet: str, *, strings: str | None = None) -> Path:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", f'<workbook {ns} {rel}><sheets><sheet name="S" sheetId="1" r:id="rId1"/>'
                                      "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="worksheet"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{sheet}</sheetData></worksheet>")
        if strings is not None:
            z.writestr("xl/sharedStrings.xml", f"<sst {ns}>{strings}</sst>")
    return path


_HEADER = ('<row r="1"><c r="A1" t="inlineStr"><is><t>index</t></is></c>'
           '<c r="B1" t="inlineStr"><is><t>prediction</t></is></c></row>')


def _bad_data(kind: str, tmp_path: Path, data_file: Path) -> Path:
    rows = list(csv.DictReader(data_file.open(encoding="utf-8"), delimiter="\t"))
    if kind == "no instance column":
        for row in rows:
            del row["instance"]
    elif kind == "corrupt base64":
        rows[2]["image"] = rows[2]["image"][:-7] + "!@#$%^&"
    elif kind == "base64 of no image":
        rows[2]["image"] = base64.b64encode(b"not a png at all, just words" * 4).decode()
    elif kind == "huge cell":
        rows[2]["question"] = "x" * 5000
    elif kind == "grid of another instance":
        return _grid_swapped(tmp_path)
    elif kind == "repeated index":
        rows[3]["index"] = rows[2]["index"]
    elif kind == "bad instance json":
        rows[0]["instance"] = rows[0]["instance"][:-2]
    return _write_tsv(tmp_path / "bad.tsv", rows)


def _grid_swapped(tmp_path: Path) -> Path:
    path = save_vlmevalkit(instances()[:2], tmp_path / "grid.tsv", render="grid")
    rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
    rows[0]["image"], rows[1]["image"] = rows[1]["image"], rows[0]["image"]
    return _write_tsv(tmp_path / "bad.tsv", rows)


@pytest.mark.parametrize(("kind", "message"), [
    ("no instance column", "needs the column(s) ['instance']"),
    ("corrupt base64", "row 4: 'image' is not valid base64"),
    ("base64 of no image", "row 4: 'image' is base64 but not a readable image"),
    ("huge cell", "a cell longer than 1,000 characters"),
    ("grid of another instance", "the grid image shows another instance"),
    ("repeated index", "'index' '2' repeats an earlier row"),
    ("bad instance json", "row 2: 'instance' is not valid JSON"),
])
def test_a_bad_data_file_is_one_line(tmp_path, capsys, monkeypatch, data_file, kind, message):
    monkeypatch.setattr(vlmevalkit, "MAX_CELL", 1000 if kind == "huge cell" else vlmevalkit.MAX_CELL)
    path = _bad_data(kind, tmp_path, data_file)
    preds = DATA / "predictions_xlsxwriter.xlsx"
    code, _, err = _run(["bench", "score", str(path), str(preds)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err  # the error names the data file


@pytest.mark.parametrize(("kind", "message"), [
    ("not a zip", "not an XLSX file (not a zip archive)"),
    ("no workbook", "not an XLSX file (no xl/workbook.xml)"),
    ("no prediction column", "needs a 'prediction' column"),
    ("bad xml", "is not valid XML"),
    ("missing shared string", "shared string '7' does not exist"),
    ("huge cell", "a cell longer than 1,000 characters"),
    ("tsv without index", "needs an 'index' (or 'id') column"),
    ("empty tsv", "empty file"),
    ("ragged tsv", "has 3 cells, the header 2"),
])
def test_a_bad_prediction_file_is_one_line(tmp_path, capsys, monkeypatch, data_file, kind, message):
    path = tmp_path / "p.xlsx"
    if kind == "not a zip":
        path.write_bytes(b"index\tprediction\n0\tAnswer: [1]\n")
    elif kind == "no workbook":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "hi")
    elif kind == "no prediction column":
        _xlsx(path, '<row r="1"><c r="A1" t="inlineStr"><is><t>index</t></is></c></row>')
    elif kind == "bad xml":
        _xlsx(path, _HEADER + "<row r='2'><c></row>")
    elif kind == "missing shared string":
        _xlsx(path, _HEADER + '<row r="2"><c r="A2"><v>0</v></c><c r="B2" t="s"><v>7</v></c></row>',
              strings="<si><t>a</t></si>")
    elif kind == "huge cell":
        _xlsx(path, _HEADER + f'<row r="2"><c r="A2"><v>0</v></c><c r="B2" t="inlineStr"><is><t>{"x" * 2000}'
                              "</t></is></c></row>")
    else:
        path = tmp_path / "p.tsv"
        path.write_text({"tsv without index": "prediction\nAnswer: [1]\n", "empty tsv": "",
                         "ragged tsv": "index\tprediction\n0\tAnswer: [1]\textra\n"}[kind])
    if kind == "huge cell":  # with a data file of small cells: grid images, compact questions
        data_file = save_vlmevalkit(instances()[:3], tmp_path / "small.tsv", render="grid", style="compact")
        monkeypatch.setattr(vlmevalkit, "MAX_CELL", 1000)
    code, _, err = _run(["bench", "score", str(data_file), str(path)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err  # the error names the prediction file


def test_generate_arguments_are_checked(tmp_path, capsys):
    code, _, err = _run(["bench", "generate", "--tasks", "knapsack", "--render", "grid", "-o",
                         str(tmp_path / "d.jsonl")], capsys)
    assert code == 2 and "--render is for --format vlmevalkit" in err
    code, _, err = _run(["bench", "generate", "--tasks", "knapsack", "--format", "vlmevalkit", "-o",
                         str(tmp_path / "d.jsonl")], capsys)
    assert code == 2 and "writes a .tsv file" in err
    assert not list(tmp_path.iterdir())
