"""Instance and prediction files: ours, the public layout, datasets folders, bad files."""

import json

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError


def test_jsonl_roundtrip(tmp_path):
    task = npbench.get_task("knapsack")
    instances = [task.generate(seed=s, difficulty="tiny") for s in range(3)]
    path = npbench.save_jsonl(instances, tmp_path / "d.jsonl")
    again = npbench.load(path)
    assert [i.to_dict() for i in again] == [i.to_dict() for i in instances]


def test_hf_folder_roundtrip(tmp_path):
    pytest.importorskip("datasets")
    task = npbench.get_task("knapsack")
    instances = [task.generate(seed=s, difficulty="tiny") for s in range(2)]
    folder = npbench.save_hf(instances, tmp_path / "ds", prompt_style="compact")
    assert [i.to_dict() for i in npbench.load(folder)] == [i.to_dict() for i in instances]


def test_public_layout_loads_and_scores(tmp_path):
    question = {"capacity": 10, "items": {"0": {"weight": 5, "value": 10}, "1": {"weight": 6, "value": 11},
                                          "2": {"weight": 5, "value": 3}}}
    public = {"knapsack_easy_0": {"prompt": "...", "question": question, "task_type": "knapsack",
                                  "ground_truth": 12}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(public))
    (inst,) = npbench.load(path)
    assert inst.task == "knapsack" and inst.difficulty == "easy" and inst.optimum == 12
    assert not inst.proved
    # The heuristic reference (12) is below the true optimum (13): QR may exceed 1 unless capped.
    task = npbench.get_task("knapsack")
    assert task.evaluate(inst, "Answer: [0, 2]").quality_ratio == pytest.approx(13 / 12)
    assert task.evaluate(inst, "Answer: [0, 2]", cap=True).quality_ratio == 1.0


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"k": {"question": {}}}', "task_type"),
    ('{"k": {"question": {}, "task_type": "sudoku"}}', "unknown task_type"),
    ('{"k": {"question": {"capacity": -1, "items": {}}, "task_type": "knapsack"}}', "capacity"),
    ("42", "expected a JSON object or list"),
])
def test_malformed_instance_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DmpoError, match=match):
        npbench.load(path)


def test_missing_and_malformed_jsonl(tmp_path):
    with pytest.raises(DmpoError, match="no such"):
        npbench.load(tmp_path / "nope.jsonl")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task": "knapsack"}\n')
    with pytest.raises(DmpoError, match="missing field"):
        npbench.load(path)


def test_predictions_formats(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "completion": "x"}\n{"id": "a", "completions": ["y", 3]}\n')
    assert npbench.load_predictions(jsonl) == {"a": ["x", "y", ""]}
    js = tmp_path / "p.json"
    js.write_text('{"a": "x", "b": ["y", "z"]}')
    assert npbench.load_predictions(js) == {"a": ["x"], "b": ["y", "z"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completion": "x"}\n')
    with pytest.raises(DmpoError, match="'id'"):
        npbench.load_predictions(bad)
