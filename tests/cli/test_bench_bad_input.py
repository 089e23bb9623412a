"""``dmpo bench`` on bad arguments and bad files: each case is one ``dmpo: error: ...`` line on
stderr, exit status 2, no traceback, and nothing written (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmpo.cli.main import main

KNAPSACK = {"task": "knapsack", "difficulty": "tiny", "seed": 0, "id": "k0", "proved": True, "optimum": 13,
            "solution": "[0, 2]",
            "question": {"capacity": 10, "items": {"0": {"weight": 5, "value": 10},
                                                   "1": {"weight": 6, "value": 11},
                                                   "2": {"weight": 5, "value": 3}}}}
PUBLIC = {"knapsack_easy_0": {"question": KNAPSACK["question"], "task_type": "knapsack", "ground_truth": 12}}


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _with(**changes) -> str:
    return _jsonl({**KNAPSACK, **changes})


# name -> (files to create {name: text | bytes | None for a folder}, argv, expected phrase)
CASES: dict[str, tuple[dict, list[str], str]] = {
    # ---- bench score: bad files ----
    "data not UTF-8": ({"d.jsonl": b'{"task": "kn\xffapsack"}\n', "p.jsonl": ""},
                       ["score", "d.jsonl", "p.jsonl"], "not UTF-8"),
    "public data not UTF-8": ({"d.json": b"\xfe\xff{}", "p.jsonl": ""}, ["score", "d.json", "p.jsonl"], "not UTF-8"),
    "data nested 100,000 deep": ({"d.json": "[" * 100_000 + "]" * 100_000, "p.jsonl": ""},
                                 ["score", "d.json", "p.jsonl"], "nested too deeply"),
    "jsonl nested 100,000 deep": ({"d.jsonl": "[" * 100_000 + "]" * 100_000 + "\n", "p.jsonl": ""},
                                  ["score", "d.jsonl", "p.jsonl"], "nested too deeply"),
    "task is a list": ({"d.jsonl": _with(task=["knapsack"]), "p.jsonl": ""},
                       ["score", "d.jsonl", "p.jsonl"], "'task' must be str"),
    "task is a dict": ({"d.jsonl": _with(task={"name": "knapsack"}), "p.jsonl": ""},
                       ["score", "d.jsonl", "p.jsonl"], "'task' must be str"),
    "task in a JSON list is a list": ({"d.json": json.dumps([{**KNAPSACK, "task": ["knapsack"]}]), "p.jsonl": ""},
                                      ["score", "d.json", "p.jsonl"], "'task' must be str"),
    "public task_type is a list": (
        {"d.json": json.dumps({"k": {"question": {}, "task_type": ["knapsack"]}}), "p.jsonl": ""},
        ["score", "d.json", "p.jsonl"], "'task_type' must be a string"),
    "public task_type is a dict": (
        {"d.json": json.dumps({"k": {"question": {}, "task_type": {"a": 1}}}), "p.jsonl": ""},
        ["score", "d.json", "p.jsonl"], "'task_type' must be a string"),
    "optimum is a string": ({"d.jsonl": _with(optimum="2"), "p.jsonl": ""},
                            ["score", "d.jsonl", "p.jsonl"], "'optimum' must be a finite number"),
    "optimum is NaN": ({"d.jsonl": _with(optimum=float("nan")), "p.jsonl": ""},
                       ["score", "d.jsonl", "p.jsonl"], "'optimum' must be a finite number"),
    "proved is a string": ({"d.jsonl": _with(proved="false"), "p.jsonl": ""},
                           ["score", "d.jsonl", "p.jsonl"], "'proved' must be bool"),
    "seed is a float": ({"d.jsonl": _with(seed=1.5), "p.jsonl": ""}, ["score", "d.jsonl", "p.jsonl"],
                        "'seed' must be int"),
    "empty data file": ({"d.jsonl": "", "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                        ["score", "d.jsonl", "p.jsonl"], "holds no instances"),
    "empty public file": ({"d.json": "{}", "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                          ["score", "d.json", "p.jsonl"], "holds no instances"),
    "predictions path is a folder": ({"d.jsonl": _jsonl(KNAPSACK), "p": None},
                                     ["score", "d.jsonl", "p"], "is a folder"),
    "predictions not UTF-8": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": b'{"id": "\xff"}\n'},
                              ["score", "d.jsonl", "p.jsonl"], "not UTF-8"),
    "predictions nested 100,000 deep": ({"d.jsonl": _jsonl(KNAPSACK), "p.json": "[" * 100_000 + "]" * 100_000},
                                        ["score", "d.jsonl", "p.json"], "nested too deeply"),
    "prediction id is a list": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": [1], "completion": "x"})},
                                ["score", "d.jsonl", "p.jsonl"], "'id' must be"),
    "empty predictions file": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": ""},
                               ["score", "d.jsonl", "p.jsonl"], "holds no predictions"),
    "no prediction matches an item": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "zz", "completion": "x"})},
                                      ["score", "d.jsonl", "p.jsonl"], "has a prediction"),
    # ---- bench score: bad arguments ----
    "pass-k abc": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                   ["score", "d.jsonl", "p.jsonl", "--pass-k", "abc"], "--pass-k must be"),
    "pass-k 0": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                 ["score", "d.jsonl", "p.jsonl", "--pass-k", "0"], "≥ 1"),
    "pass-k empty item": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                          ["score", "d.jsonl", "p.jsonl", "--pass-k", "1,,2"], "--pass-k must be"),
    "pass-k above the samples": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                                 ["score", "d.jsonl", "p.jsonl", "--pass-k", "1,5"], "pass@5 needs at least 5"),
    "json inside a file": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"}),
                            "somefile.txt": "keep"},
                           ["score", "d.jsonl", "p.jsonl", "--json", "somefile.txt/x.json"], "is a file"),
    "json is a folder": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"}),
                          "out": None},
                         ["score", "d.jsonl", "p.jsonl", "--json", "out"], "is a folder"),
    "json would overwrite the data": ({"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
                                      ["score", "d.jsonl", "p.jsonl", "--json", "d.jsonl"], "input files"),
    "json would overwrite the predictions": (
        {"d.jsonl": _jsonl(KNAPSACK), "p.jsonl": _jsonl({"id": "k0", "completion": "x"})},
        ["score", "d.jsonl", "p.jsonl", "--json", "./p.jsonl"], "input files"),
    # ---- bench generate ----
    "time-limit -1": ({}, ["generate", "--tasks", "knapsack", "--time-limit", "-1", "-o", "g.jsonl"], "--time-limit"),
    "time-limit 0": ({}, ["generate", "--tasks", "knapsack", "--time-limit", "0", "-o", "g.jsonl"], "--time-limit"),
    "time-limit nan": ({}, ["generate", "--tasks", "knapsack", "--time-limit", "nan", "-o", "g.jsonl"], "--time-limit"),
    "time-limit inf": ({}, ["generate", "--tasks", "knapsack", "--time-limit", "inf", "-o", "g.jsonl"], "--time-limit"),
    "unproved optimum": ({}, ["generate", "--tasks", "tsp", "--count", "1", "--time-limit", "0.001", "-o", "g.jsonl"],
                         "not proved optimal"),
    "tasks ,": ({}, ["generate", "--tasks", ",", "-o", "g.jsonl"], "names no task"),
    "tasks empty": ({}, ["generate", "--tasks", "", "-o", "g.jsonl"], "names no task"),
    "tasks repeated": ({}, ["generate", "--tasks", "tsp,TSP", "-o", "g.jsonl"], "more than once"),
    "count 0": ({}, ["generate", "--tasks", "knapsack", "--count", "0", "-o", "g.jsonl"], "--count"),
    "output inside a file": ({"somefile.txt": "keep"},
                             ["generate", "--tasks", "knapsack", "-o", "somefile.txt/x.jsonl"], "is a file"),
    "output is a folder": ({"out": None}, ["generate", "--tasks", "knapsack", "-o", "out"], "is a folder"),
    "hf output is a file": ({"somefile.txt": "keep"},
                            ["generate", "--tasks", "knapsack", "--format", "hf", "-o", "somefile.txt"], "is a file"),
    "hf output is a non-empty folder": ({"out/notes.txt": "keep"},
                                        ["generate", "--tasks", "knapsack", "--format", "hf", "-o", "out"],
                                        "not a datasets folder"),
    # ---- bench render ----
    "render limit -1": ({"d.jsonl": _jsonl(KNAPSACK)}, ["render", "d.jsonl", "-o", "img", "--limit", "-1"], "--limit"),
    "render limit 0": ({"d.jsonl": _jsonl(KNAPSACK)}, ["render", "d.jsonl", "-o", "img", "--limit", "0"], "--limit"),
    "render output is a file": ({"d.jsonl": _jsonl(KNAPSACK), "somefile.txt": "keep"},
                                ["render", "d.jsonl", "-o", "somefile.txt"], "is a file"),
    "render empty data": ({"d.jsonl": ""}, ["render", "d.jsonl", "-o", "img"], "holds no instances"),
    "render data is a folder of nothing": ({"d": None}, ["render", "d", "-o", "img"], "datasets"),
}


def _make(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        if content is None:
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_clear_error(name, tmp_path, monkeypatch, capsys):
    files, argv, phrase = CASES[name]
    _make(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    status = main(["bench", *argv])
    captured = capsys.readouterr()
    progress = ("generating", "scoring", "rendering")  # tqdm's bars, also on stderr
    lines = [line for line in captured.err.strip().splitlines() if not line.startswith(progress)]
    assert status == 2, captured
    assert len(lines) == 1 and lines[0].startswith("dmpo: error: "), captured.err
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _snapshot(tmp_path) == before  # nothing written, nothing clobbered


def test_unproved_instances_are_stored_only_when_allowed(tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    argv = ["bench", "generate", "--tasks", "tsp", "--count", "1", "--time-limit", "0.001", "-o", str(out)]
    assert main([*argv, "--allow-unproved"]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["proved"] is False
    assert "1 without a proved optimum" in capsys.readouterr().out
    # With the task's own limit the optimum is proved, and it is below the unproved value.
    assert main([*argv[:-6], "--count", "1", "-o", str(out)]) == 0
    (proved,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert proved["proved"] is True and proved["optimum"] < row["optimum"]


def test_existing_output_file_is_overwritten(tmp_path):
    out = tmp_path / "g.jsonl"
    out.write_text("old\n")
    assert main(["bench", "generate", "--tasks", "knapsack", "--difficulty", "tiny", "--count", "2",
                 "-o", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["knapsack-tiny-0",
                                                                                  "knapsack-tiny-1"]


def test_score_reports_wrong_public_ground_truths(tmp_path, capsys):
    data = tmp_path / "public.json"
    data.write_text(json.dumps(PUBLIC))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"knapsack_easy_0": "Answer: [0, 2]"}))
    out = tmp_path / "s.json"
    assert main(["bench", "score", str(data), str(preds), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 of 1 value(s) differ from the proved optimum" in printed
    summary = json.loads(out.read_text())
    assert summary["references"] == {"checked": 1, "wrong": 1, "inflated": 0, "suboptimal": 1, "unverified": 0}
    assert summary["tasks"]["knapsack"]["qr"] == pytest.approx(100.0)
    assert main(["bench", "score", str(data), str(preds), "--no-solve", "--json", str(out)]) == 0
    assert "1 item(s) scored against an unproved value (--no-solve)" in capsys.readouterr().out
    assert json.loads(out.read_text())["tasks"]["knapsack"]["qr"] == pytest.approx(100 * 13 / 12)


def test_render_keeps_file_names_inside_the_folder(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(_jsonl({**KNAPSACK, "id": "../../escape"}))
    assert main(["bench", "render", str(data), "-o", str(tmp_path / "img")]) == 0
    assert [p.name for p in (tmp_path / "img").iterdir()] == ["_.._escape.png"]
    assert not list(tmp_path.parent.glob("escape*"))


def test_a_malformed_flag_value_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "generate", "--count", "abc", "-o", "unused.jsonl"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "dmpo: error: dmpo bench generate: argument --count: invalid int value: 'abc' (see dmpo bench generate --help)\n"
