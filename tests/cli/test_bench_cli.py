"""``dmpo bench`` end to end through main(), as a user runs it."""

import json

import pytest

from dmpo.cli.main import main


def test_list(capsys):
    assert main(["bench", "list"]) == 0
    out = capsys.readouterr().out
    assert "knapsack" in out and "selection" in out


def test_generate_score_render(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    assert main(["bench", "generate", "--tasks", "knapsack", "--difficulty", "tiny", "--count", "3",
                 "-o", str(data)]) == 0
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"knapsack-tiny-{s}" for s in range(3)]
    preds = tmp_path / "p.jsonl"
    # Item 0: optimal then empty; item 1: no answer; item 2 missing from the file.
    preds.write_text("\n".join([
        json.dumps({"id": rows[0]["id"], "completions": [f"Answer: {rows[0]['solution']}", "Answer: []"]}),
        json.dumps({"id": rows[1]["id"], "completion": "I give up"}),
    ]))
    out_json = tmp_path / "s.json"
    assert main(["bench", "score", str(data), str(preds), "--json", str(out_json)]) == 0
    summary = json.loads(out_json.read_text())
    knapsack = summary["tasks"]["knapsack"]
    assert knapsack["qr_best"] == pytest.approx(100 / 3)
    assert knapsack["sr_best"] == pytest.approx(100 / 3)
    assert summary["missing_predictions"] == 1
    assert "OVERALL" in capsys.readouterr().out
    images = tmp_path / "img"
    assert main(["bench", "render", str(data), "-o", str(images)]) == 0
    assert len(list(images.glob("*.png"))) == 3


def test_errors_are_clear(tmp_path, capsys):
    assert main(["bench", "generate", "--tasks", "sudoku", "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "unknown task 'sudoku'" in capsys.readouterr().err
    assert main(["bench", "score", str(tmp_path / "none.jsonl"), str(tmp_path / "p.jsonl")]) == 2
    assert "no such instance file" in capsys.readouterr().err
