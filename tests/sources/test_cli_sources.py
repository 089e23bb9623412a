"""``dmpo train``, ``dmpo eval`` and ``dmpo bench score`` on math files, math:synthetic and
reasoning-gym tasks, end to end offline with a tiny model, and their clear errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("math_verify")
pytest.importorskip("reasoning_gym")

from dmpo.cli.main import main

COUNTDOWN = "rg:countdown?min_numbers=3&max_numbers=3&min_target=10&max_target=60"
QUICK = ["--max-steps", "2", "--num-generations", "4", "--per-device-batch", "8", "--max-completion-length", "8",
         "--no-progress"]


@pytest.fixture(scope="module")
def math_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "math.jsonl"
    rows = [{"question": f"{a}+{b}=", "solution": str(a + b)} for a in range(1, 4) for b in range(1, 3)]
    rows.append({"question": "unreadable", "solution": "???"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"math:{path}?problem=question&answer=solution"


def steps(out) -> list[int]:
    return [row["step"] for row in json.loads((out / "history.json").read_text()) if "loss" in row]


@pytest.mark.slow
def test_train_two_steps_on_a_math_file_then_eval(tiny_model_path, tmp_path, math_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "--tasks", math_file, "--model", str(tiny_model_path), "--output-dir", str(out),
                 *QUICK]) == 0
    assert steps(out) == [1, 2]
    history = json.loads((out / "history.json").read_text())
    assert all("source/correct_frac" in row for row in history if "loss" in row)
    record = json.loads((out / "dmpo_train.json").read_text())
    assert record["skipped"][math_file]["count"] == 1 and "6" in record["skipped"][math_file]["first"]
    assert "1 item(s) skipped" in capsys.readouterr().out

    result = tmp_path / "eval.json"
    assert main(["eval", "--model", str(out), "--tasks", f"{math_file},math:synthetic", "--count", "2", "--k", "2",
                 "--max-new-tokens", "8", "--output", str(result), "--no-progress"]) == 0
    data = json.loads(result.read_text())
    rows = data["summary"]["sources"]
    assert rows[math_file]["n"] == 6 and rows[math_file]["skipped"] == 1  # a file is used whole
    assert rows["math:synthetic"]["n"] == 2 and "pass@2" in rows["math:synthetic"]
    assert {"accuracy", "success", "reward", "distinct_correct"} <= set(rows["math:synthetic"])
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "1 item(s) skipped" in printed


@pytest.mark.slow
def test_train_two_steps_on_countdown_with_chat_prompts_then_eval(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--tasks", COUNTDOWN, "--model", str(tiny_model_path), "--output-dir", str(out),
                 "--num-prompts", "4", "--prompt-style", "nl", "--chat", "--system-prompt", "Be brief.",
                 *QUICK]) == 0
    assert steps(out) == [1, 2]
    record = json.loads((out / "dmpo_train.json").read_text())
    assert record["chat"] is True and record["prompt_style"] == "nl"
    result = tmp_path / "eval.json"
    assert main(["eval", "--model", str(out), "--tasks", COUNTDOWN, "--count", "2", "--k", "2", "--chat",
                 "--max-new-tokens", "8", "--output", str(result), "--keep-completions", "--no-progress"]) == 0
    data = json.loads(result.read_text())
    assert data["summary"]["sources"][COUNTDOWN]["n"] == 2 and data["settings"]["chat"] is True
    assert all(item["id"].startswith("countdown-1") for item in data["items"])  # held-out seeds


def test_bench_score_a_math_file(tmp_path, math_file, capsys):
    predictions = tmp_path / "pred.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "0", "completions": ["Answer: 2", "\\boxed{\\frac{4}{2}}"]},  # 1+1
        {"id": "1", "completions": ["Answer: 4", "nothing"]},  # 1+2 = 3
        {"id": "6", "completions": ["Answer: 1", "Answer: 1"]},  # the skipped item
    ]))
    summary = tmp_path / "summary.json"
    assert main(["bench", "score", math_file, str(predictions), "--pass-k", "1,2", "--json", str(summary)]) == 0
    row = json.loads(summary.read_text())["sources"][math_file]
    assert row["n"] == 6 and row["skipped"] == 1
    assert row["accuracy"] == pytest.approx(100 * 2 / 12) and row["pass@2"] == pytest.approx(100 / 6)
    assert row["distinct_correct"] == pytest.approx(1 / 6)  # 2 and 4/2 are one answer
    printed = capsys.readouterr().out
    assert "4 item(s) had no prediction" in printed and "1 item(s) skipped" in printed


def test_bench_score_rebuilds_reasoning_gym_items_from_ids(tmp_path, capsys):
    from dmpo.sources import ReasoningGymSource

    item = ReasoningGymSource(COUNTDOWN).items(start=1_000_000, count=1)[0]
    predictions = tmp_path / "pred.json"
    predictions.write_text(json.dumps({item.id: [f"<answer>{item.answer}</answer>", "Answer: 1+1"]}))
    summary = tmp_path / "summary.json"
    assert main(["bench", "score", COUNTDOWN, str(predictions), "--pass-k", "2", "--json", str(summary)]) == 0
    row = json.loads(summary.read_text())["sources"][COUNTDOWN]
    assert row["n"] == 1 and row["accuracy"] == 50 and row["pass@2"] == 100


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--tasks", "math:{file}?answer=gold"], "no answer column 'gold'"),
        (["train", "--tasks", "math:{empty}"], "holds no rows"),
        (["train", "--tasks", "math:{dir}/missing.jsonl"], "no such file or folder"),
        (["train", "--tasks", "rg:no_such_task"], "unknown reasoning-gym task 'no_such_task'"),
        (["train", "--tasks", "qa:trivia"], "unknown task source prefix 'qa:'"),
        (["eval", "--tasks", "rg:no_such_task"], "unknown reasoning-gym task"),
        (["eval", "--tasks", "wiki:x"], "unknown task source prefix 'wiki:'"),
        (["train", "--system-prompt", "x"], "give --chat too"),
        (["bench", "score", "rg:no_such_task", "{file}"], "unknown reasoning-gym task"),
        (["bench", "score", "math:{file}", "{file}", "--cap"], "only for NP-Bench instance files"),
    ],
)
def test_clear_errors(tmp_path, tiny_model_path, capsys, argv, message):
    data = tmp_path / "m.jsonl"
    data.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n")
    (tmp_path / "empty.jsonl").write_text("")
    argv = [a.format(file=data, empty=tmp_path / "empty.jsonl", dir=tmp_path) for a in argv]
    if argv[0] in ("train", "eval"):
        argv += ["--model", str(tiny_model_path), "--no-progress"]
        argv += ["--output-dir", str(tmp_path / "run")] if argv[0] == "train" else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dmpo: error:") and message in err and "Traceback" not in err
