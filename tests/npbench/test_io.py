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
    task = npbench.get_task("knapsack")
    # Without solving, the file's heuristic value (12) is the reference; it is below the true
    # optimum (13), so QR may exceed 1 unless capped.
    (inst,) = npbench.load(path, solve=False)
    assert inst.task == "knapsack" and inst.difficulty == "easy" and inst.optimum == 12
    assert not inst.proved and inst.reference == 12
    assert task.evaluate(inst, "Answer: [0, 2]").quality_ratio == pytest.approx(13 / 12)
    assert task.evaluate(inst, "Answer: [0, 2]", cap=True).quality_ratio == 1.0
    # By default every public item is solved exactly: QR is against the proved optimum.
    (inst,) = npbench.load(path)
    assert inst.optimum == 13 and inst.proved and inst.reference == 12 and inst.solution == "[0, 2]"
    assert task.evaluate(inst, "Answer: [0, 2]").quality_ratio == 1.0
    assert not task.evaluate(inst, "Answer: [0, 1]").valid  # weight 11 > 10
    assert npbench.reference_report([inst]) == {"checked": 1, "wrong": 1, "inflated": 0, "suboptimal": 1,
                                                "unverified": 0}


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


# ---- issue 9: bad files are DmpoErrors; public ground truths are checked by an exact solve --
KNAPSACK_ROW = {"task": "knapsack", "difficulty": "tiny", "seed": 0, "id": "k0", "proved": True, "optimum": 13,
                "solution": "[0, 2]", "question": {"capacity": 10, "items": {
                    "0": {"weight": 5, "value": 10}, "1": {"weight": 6, "value": 11}, "2": {"weight": 5, "value": 3}}}}


@pytest.mark.parametrize("name, content, match", [
    ("bad.jsonl", b'{"task": "knapsack\xff"}\n', "not UTF-8"),
    ("bad.json", b"\x80", "not UTF-8"),
    ("bad.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("bad.jsonl", "{" * 100_000 + "\n", "not valid JSON|nested too deeply"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "task": ["knapsack"]}), "'task' must be str"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "task": {"knapsack": 1}}), "'task' must be str"),
    ("bad.json", json.dumps([{**KNAPSACK_ROW, "task": ["knapsack"]}]), r"bad.json\[0\]: .*'task' must be str"),
    ("bad.json", json.dumps({"k": {"question": {}, "task_type": ["knapsack"]}}), "'task_type' must be a string"),
    ("bad.json", json.dumps({"k": {"question": {}, "task_type": {"a": 1}}}), "'task_type' must be a string"),
    ("bad.json", json.dumps({"k": {"question": "[" * 100_000, "task_type": "knapsack"}}), "question"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "optimum": "2"}), "'optimum' must be a finite number"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "optimum": True}), "'optimum' must be a finite number"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "reference": [1]}), "'reference' must be a finite number"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "proved": "yes"}), "'proved' must be bool"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "id": {"a": 1}}), "'id' must be str or int"),
    ("bad.jsonl", json.dumps({**KNAPSACK_ROW, "solution": 3}), "'solution' must be str"),
])
def test_bad_files_raise_dmpo_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DmpoError, match=match):
        npbench.load(path)


def test_bad_prediction_files_raise_dmpo_errors(tmp_path):
    with pytest.raises(DmpoError, match="is a folder"):
        npbench.load_predictions(tmp_path)
    bad = tmp_path / "p.jsonl"
    bad.write_bytes(b'{"id": "a", "completion": "\xff"}\n')
    with pytest.raises(DmpoError, match="not UTF-8"):
        npbench.load_predictions(bad)
    deep = tmp_path / "p.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DmpoError, match="nested too deeply"):
        npbench.load_predictions(deep)


def test_optimum_of_the_wrong_type_never_reaches_evaluate():
    task = npbench.get_task("knapsack")
    inst = npbench.Instance.from_dict(KNAPSACK_ROW)
    inst.optimum = "2"  # set by hand, past from_dict's check
    with pytest.raises(DmpoError, match="optimum must be a finite number"):
        task.evaluate(inst, "Answer: [0, 2]")


def test_an_instance_is_judged_only_by_its_own_task():
    knapsack = npbench.get_task("knapsack").generate(seed=0, difficulty="tiny")
    cover = npbench.get_task("vertex_cover")
    with pytest.raises(DmpoError, match="is a 'knapsack' instance, not 'vertex_cover'"):
        cover.evaluate(knapsack, "Answer: [0]")
    # Also after the instance was judged (and its preparation cached) by its own task, and for
    # tasks that share the question layout (a max_clique instance is a graph, as for vertex_cover).
    clique = npbench.get_task("max_clique").generate(seed=0, difficulty="tiny")
    assert npbench.get_task("max_clique").evaluate(clique, f"Answer: {clique.solution}").valid
    with pytest.raises(DmpoError, match="is a 'max_clique' instance"):
        cover.evaluate(clique, "Answer: [0]")
    # A public name for the same task is the same task.
    graph = npbench.Instance.from_dict({**clique.to_dict(), "task": "maximum-clique"})
    assert npbench.get_task("max_clique").evaluate(graph, f"Answer: {clique.solution}").quality_ratio == 1.0


def _public_file(tmp_path, names=("max_clique", "max_independent_set", "meeting_schedule"), bump=1):
    """A public-layout file of generated instances whose ground truth is ``bump`` better than the
    true optimum, as NP-Engine's invalid witnesses make it (a clique that is not one, a meeting
    scheduled twice)."""
    items, truth = {}, {}
    for name in names:
        task = npbench.get_task(name)
        inst = task.generate(seed=1, difficulty="easy")
        key = f"{name}_easy_1"
        items[key] = {"prompt": "...", "question": json.dumps(inst.question), "task_type": task.public_name,
                      "ground_truth": inst.optimum + bump}
        truth[key] = inst
    path = tmp_path / "public.json"
    path.write_text(json.dumps(items))
    return path, truth


def test_public_ground_truths_better_than_possible_are_replaced_by_the_proved_optimum(tmp_path, caplog):
    path, truth = _public_file(tmp_path)
    loaded = npbench.load(path)
    assert "3 of 3 ground_truth values differ" in caplog.text
    for inst in loaded:
        task, generated = npbench.get_task(inst.task), truth[inst.id]
        assert inst.proved and inst.optimum == generated.optimum and inst.reference == generated.optimum + 1
        assert task.evaluate(inst, f"Answer: {generated.solution}").quality_ratio == 1.0
        assert task.evaluate(inst, f"Answer: {inst.solution}").quality_ratio == 1.0
    assert npbench.reference_report(loaded) == {"checked": 3, "wrong": 3, "inflated": 3, "suboptimal": 0,
                                                "unverified": 0}
    # Without the solve, an optimal answer scores below 1 against the inflated value.
    for inst in npbench.load(path, solve=False):
        generated = truth[inst.id]
        verdict = npbench.get_task(inst.task).evaluate(inst, f"Answer: {generated.solution}")
        assert verdict.valid and verdict.quality_ratio == pytest.approx(generated.optimum / (generated.optimum + 1))
    assert npbench.reference_report(npbench.load(path, solve=False))["unverified"] == 3


def test_correct_public_ground_truths_are_reported_right(tmp_path):
    path, _ = _public_file(tmp_path, bump=0)
    assert npbench.reference_report(npbench.load(path)) == {"checked": 3, "wrong": 0, "inflated": 0,
                                                            "suboptimal": 0, "unverified": 0}


def test_the_solve_cache_is_used_across_processes(tmp_path, monkeypatch):
    from dmpo.npbench import io

    path, truth = _public_file(tmp_path, names=("max_clique",))
    cache = tmp_path / "cache" / "optima.json"
    monkeypatch.setattr(io, "_SOLVED", {})
    (first,) = npbench.load(path, cache=cache)
    stored = json.loads(cache.read_text())
    assert len(stored) == 1 and next(iter(stored.values()))["value"] == truth[first.id].optimum
    # A new process (empty memory) reads the cache and does not solve again.
    monkeypatch.setattr(io, "_SOLVED", {})
    task_type = type(npbench.get_task("max_clique"))
    monkeypatch.setattr(task_type, "solve", lambda *a, **k: pytest.fail("solved again"))
    (again,) = npbench.load(path, cache=cache)
    assert again.to_dict() == first.to_dict()
    # A corrupt cache is ignored (with a warning), not an error, and rewritten after the solve.
    monkeypatch.undo()
    monkeypatch.setattr(io, "_SOLVED", {})
    cache.write_text("{not json")
    (third,) = npbench.load(path, cache=cache)
    assert third.optimum == first.optimum and len(json.loads(cache.read_text())) == 1


def test_an_unproved_solve_keeps_the_file_value_unless_it_finds_better(tmp_path, monkeypatch):
    from dmpo.npbench import io
    from dmpo.npbench.base import Solution

    path, truth = _public_file(tmp_path, names=("max_clique",), bump=0)
    monkeypatch.setattr(io, "_SOLVED", {})
    task_type = type(npbench.get_task("max_clique"))
    optimum = next(iter(truth.values())).optimum
    monkeypatch.setattr(task_type, "solve", lambda self, q, t: Solution(optimum - 1, [0], proved=False))
    (inst,) = npbench.load(path)
    assert inst.optimum == optimum and not inst.proved  # the file's value: not beaten, not proved
    assert npbench.reference_report([inst])["unverified"] == 1
    monkeypatch.setattr(io, "_SOLVED", {})
    monkeypatch.setattr(task_type, "solve", lambda self, q, t: Solution(optimum + 5, [0], proved=False))
    (inst,) = npbench.load(path)
    assert inst.optimum == optimum + 5 and not inst.proved  # the file's value is provably too low
