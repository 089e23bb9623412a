"""``dmpo train`` / ``eval`` / ``sft`` through main(): YAML equivalence, clear errors, and a real
run end to end offline on a tiny model built in a temporary cache."""

from __future__ import annotations

import json
import math
import os
import re
import shutil

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.cli.main import build_parser, main
from dmpo.cli.train import train_settings_from_args
from dmpo.errors import DmpoError
from dmpo.pipeline.settings import SFTSettings, TrainSettings, default_model_path

QUICK_SFT = SFTSettings(tasks=("knapsack",), instances_per_task=12, answers_per_instance=2, explore_steps=60,
                        hidden_size=32, num_layers=1, heads=2, epochs=1.0, batch_size=8)


def settings_for(argv: list[str]) -> TrainSettings:
    return train_settings_from_args(build_parser().parse_args(["train", *argv]))


def test_defaults_without_flags():
    assert settings_for([]) == TrainSettings()


def test_yaml_config_is_equivalent_to_flags(tmp_path):
    flags = ["--objective", "grpo", "--tasks", "knapsack,vertex_cover", "--difficulty", "easy",
             "--max-steps", "7", "--num-generations", "4", "--per-device-batch", "12",
             "--learning-rate", "2e-4", "--seed", "3", "--output-dir", "out", "--save-steps", "5",
             "--objective-param", "adv_eps=1e-6", "--num-prompts", "9", "--max-completion-length", "20",
             "--temperature", "0.8", "--logging-steps", "2", "--trainer-arg", "beta=0.04",
             "--model", "some/model"]
    (tmp_path / "c.yaml").write_text(
        "objective: grpo\ntasks: [knapsack, vertex_cover]\ndifficulty: easy\nmax-steps: 7\n"
        "num_generations: 4\nper_device_batch: 12\nlearning_rate: 2e-4\nseed: 3\noutput_dir: out\n"
        "save_steps: 5\nobjective_params: {adv_eps: 1.0e-6}\nnum_prompts: 9\nmax_completion_length: 20\n"
        "temperature: 0.8\nlogging_steps: 2\ntrainer: {beta: 0.04}\nmodel: some/model\n")
    from_flags = settings_for(flags)
    from_yaml = settings_for(["--config", str(tmp_path / "c.yaml")])
    assert from_flags == from_yaml
    assert from_yaml.learning_rate == 2e-4 and isinstance(from_yaml.learning_rate, float)  # YAML reads 2e-4 as text
    assert from_yaml.tasks == ("knapsack", "vertex_cover")
    assert from_yaml.objective_params == {"adv_eps": 1e-6}


def test_flags_override_the_yaml_file_key_by_key(tmp_path):
    (tmp_path / "c.yaml").write_text("max_steps: 50\nseed: 1\nobjective_params: {lam: 2.0, alpha: 0.1}\n")
    s = settings_for(["--config", str(tmp_path / "c.yaml"), "--max-steps", "3", "--objective-param", "lam=0.5"])
    assert (s.max_steps, s.seed) == (3, 1)
    assert s.objective_params == {"lam": 0.5, "alpha": 0.1}


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("max_stepz: 3\n", "unknown option"),
        ("max_steps: three\n", "'max_steps' must be a int"),
        ("- a\n- b\n", "must be a mapping"),
        ("tasks: [knapsack\n", "not valid YAML"),
    ],
)
def test_bad_yaml_config(tmp_path, capsys, yaml_text, message):
    (tmp_path / "c.yaml").write_text(yaml_text)
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objective", "no_such_objective"], "unknown objective 'no_such_objective'"),
        (["--objective", "dpo"], "pair objective"),
        (["--num-generations", "4", "--per-device-batch", "6"], "must be divisible by num_generations"),
        (["--objective", "disco", "--num-generations", "4", "--per-device-batch", "2",
          "--trainer-arg", "gradient_accumulation_steps=2"], "must be a multiple of num_generations"),
        (["--num-prompts", "0"], "num_prompts must be at least 1"),
        (["--tasks", "knapsack,nope"], "unknown task 'nope'"),
        (["--model", "./no/such/model"], "does not exist"),
        (["--resume"], "no checkpoint-N folder"),
        (["--resume", "/no/such/checkpoint"], "not a checkpoint folder"),
        (["--objective-param", "lam"], "takes key=value"),
        (["--objective-param", "no_such_param=1"], "no parameter(s) ['no_such_param']"),
        (["--trainer-arg", "no_such_field=1"], "unknown trainer option"),
    ],
)
def test_clear_errors(tmp_path, capsys, argv, message):
    code = main(["train", "--output-dir", str(tmp_path / "run"), "--no-progress", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("dmpo: error:") and message in err


def test_eval_errors(tmp_path, capsys):
    assert main(["eval", "--count", "0", "--model", str(tmp_path)]) == 2
    assert "count must be at least 1, got 0" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["eval", "--data", str(empty), "--model", str(tmp_path)]) == 2
    assert "holds no instances" in capsys.readouterr().err
    assert main(["eval", "--k", "0"]) == 2
    assert "k must be at least 1, got 0" in capsys.readouterr().err


@pytest.fixture
def built_in_cache(tmp_path, monkeypatch):
    """An isolated cache holding a (small) warm-started model where `dmpo train` looks for the
    built-in one, built by the same code path (ensure_default_model)."""
    from dmpo.pipeline.sft import ensure_default_model

    monkeypatch.setenv("DMPO_CACHE", str(tmp_path / "cache"))
    quick = ensure_default_model(QUICK_SFT, progress=False)
    shutil.copytree(quick, default_model_path())
    return default_model_path()


@pytest.mark.slow
def test_train_dmpo_two_steps_end_to_end_then_eval(tmp_path, built_in_cache, capsys):
    out = tmp_path / "run"
    assert main(["train", "--objective", "dmpo", "--max-steps", "2", "--output-dir", str(out),
                 "--tasks", "knapsack", "--num-generations", "4", "--per-device-batch", "8",
                 "--num-prompts", "8", "--max-completion-length", "12", "--no-progress"]) == 0
    history = json.loads((out / "history.json").read_text())
    steps = [row for row in history if "loss" in row]
    assert [row["step"] for row in steps] == [1, 2]
    assert all("entropy_q" in row and "npbench/distinct_valid_answers" in row for row in steps)
    record = json.loads((out / "dmpo_train.json").read_text())
    assert record["model"] == str(built_in_cache) and record["objective"] == "dmpo"
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    printed = capsys.readouterr().out
    assert "reward" in printed and "2 steps" in printed

    result_json = tmp_path / "eval.json"
    assert main(["eval", "--model", str(out), "--tasks", "knapsack", "--count", "2", "--k", "3",
                 "--max-new-tokens", "12", "--output", str(result_json), "--no-progress"]) == 0
    result = json.loads(result_json.read_text())
    assert result["k"] == 3 and result["num_items"] == 2
    assert set(result["summary"]["tasks"]) == {"knapsack"}
    assert len(result["qr_curve"]) == 3
    assert "OVERALL" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_from_a_checkpoint(tmp_path, built_in_cache, capsys):
    out = tmp_path / "run"
    common = ["--tasks", "knapsack", "--num-generations", "4", "--per-device-batch", "8", "--num-prompts", "8",
              "--max-completion-length", "8", "--output-dir", str(out), "--no-progress", "--save-steps", "1"]
    assert main(["train", "--max-steps", "1", *common]) == 0
    assert (out / "checkpoint-1").is_dir()
    assert main(["train", "--max-steps", "2", "--resume", *common]) == 0
    record = json.loads((out / "dmpo_train.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-1")
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history if "loss" in row] == [1, 2]


def test_train_settings_errors():
    with pytest.raises(DmpoError, match="group size"):
        TrainSettings(num_generations=1)
    with pytest.raises(DmpoError, match="no tasks"):
        TrainSettings(tasks=())


def test_sft_model_needs_output_dir(capsys):
    assert main(["sft", "--model", "some/model"]) == 2
    assert "--model needs --output-dir" in capsys.readouterr().err


@pytest.mark.slow
def test_sft_command_writes_a_model_and_prints_its_data(tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(["sft", "--tasks", "knapsack,vertex_cover", "--instances-per-task", "6", "--hidden-size", "32",
                 "--num-layers", "1", "--epochs", "1", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines()
            if line.startswith(("knapsack", "vertex_cover"))}
    assert rows["knapsack"][0] == "24" and rows["vertex_cover"][0] == "24"  # 6 instances × 4 answers
    info = json.loads((out / "dmpo_sft.json").read_text())
    assert info["settings"]["hidden_size"] == 32 and info["data"]["num_examples"] == 48
    assert f"SFT model: {out}" in printed


@pytest.mark.slow
def test_sft_command_on_a_reasoning_gym_source(tmp_path, capsys):
    pytest.importorskip("reasoning_gym")
    spec = "rg:countdown?min_numbers=3&max_numbers=3&max_value=20&min_target=10&max_target=60"
    out = tmp_path / "sft"
    assert main(["sft", "--tasks", spec, "--instances-per-task", "5", "--answers-per-instance", "2",
                 "--hidden-size", "32", "--num-layers", "1", "--epochs", "1", "--max-length", "512",
                 "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "10  examples of 5 items with a known answer (of 5)" in printed
    info = json.loads((out / "dmpo_sft.json").read_text())
    assert info["data"]["num_examples"] == 10 and info["settings"]["tasks"] == [spec]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning-rate", "nan"], "learning_rate must be a positive finite number"),
        (["--temperature", "0"], "temperature must be a positive finite number"),
        (["--temperature", "-1"], "temperature must be a positive finite number"),
        (["--trainer-arg", "beta=abc"], "trainer option beta must be a number"),
        (["--trainer-arg", "beta=nan"], "trainer option beta must be finite"),
        (["--trainer-arg", "nope=1"], r"unknown trainer option\(s\) \['nope'\]"),
        (["--objective-param", "lam=nan"], "lam must be finite"),
        (["--objective", "grpo", "--objective-param", "lam=2"], r"objective 'grpo' has no parameter\(s\) \['lam'\]"),
        (["--per-device-batch", "6", "--num-generations", "4"], "must be divisible by num_generations"),
        (["--objective", "brain", "--per-device-batch", "2", "--num-generations", "4",
          "--trainer-arg", "gradient_accumulation_steps=2"], "must be a multiple of num_generations"),
        (["--resume"], "no checkpoint-N folder .* written to the end"),
    ],
)
def test_train_bad_input_is_one_clear_error_line(tmp_path, capsys, argv, message):
    code = main(["train", "--max-steps", "1", "--output-dir", str(tmp_path / "run"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dmpo: error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_resume_from_a_truncated_checkpoint_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "run" / "checkpoint-1"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\"")
    code = main(["train", "--output-dir", str(tmp_path / "run"), "--resume", str(folder), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "model.safetensors is truncated or corrupt" in err


def test_output_paths_inside_a_file_are_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["train", "--max-steps", "1", "--output-dir", str(blocker / "run"), "--no-progress"]) == 2
    assert "file.txt is a file, not a folder" in capsys.readouterr().err
    assert main(["eval", "--output", str(tmp_path), "--no-progress"]) == 2
    assert "is a folder; give a file name" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("objective", "params"), [("gpg", []), ("clip_cov", []), ("kl_cov", []),
                                                   ("passk", ["--objective-param", "k=2"]), ("flowrl", [])])
def test_the_papers_baselines_train_from_the_command_line(tmp_path, built_in_cache, objective, params):
    out = tmp_path / objective
    assert main(["train", "--objective", objective, *params, "--max-steps", "1", "--output-dir", str(out),
                 "--tasks", "knapsack", "--num-generations", "4", "--per-device-batch", "8",
                 "--num-prompts", "4", "--max-completion-length", "12", "--no-progress"]) == 0
    history = json.loads((out / "history.json").read_text())
    losses = [row["loss"] for row in history if "loss" in row]
    assert len(losses) == 1 and all(math.isfinite(x) for x in losses)
    assert json.loads((out / "dmpo_train.json").read_text())["objective"] == objective
