"""The quality harness end to end in its smallest mode (``--smoke``: 2 objectives × 1 seed × 2
steps, a 4-instance held-out set): the report has every table and row, the JSON its keys, the
plots are PNGs, a rerun skips finished runs, and ``--report-only`` rewrites the report from the
recorded JSON. Which objective wins is never asserted. The budgets still match the recorded
results (their fingerprints), and the recorded full grid's report is regenerated unchanged."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "quality.py"
RESULTS = ROOT / "benchmarks" / "results"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OBJECTIVES = ("grpo", "dmpo")  # the smoke budget's objectives
METRICS = ("qr", "qr_best", "sr", "sr_best", "distinct_valid", "distinct_optimal", "pass@16")


def run_harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.mark.slow
def test_smoke_report_structure_and_resume(tmp_path):
    env = {**os.environ, "DMPO_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    work, out = tmp_path / "work", tmp_path / "out"
    first = run_harness("--smoke", "--work-dir", str(work), "--output-dir", str(out), env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    markdown = (out / "quality_smoke.md").read_text()
    sections = ["## Overall", "## Paired differences against grpo", "## Learning curves", "## Final metrics",
                "## Per task", "### knapsack", "### vertex_cover"]
    positions = [markdown.index(section) for section in sections]
    assert positions == sorted(positions)
    overall = markdown[positions[0]:positions[1]]
    header = next(line for line in overall.splitlines() if line.startswith("| objective"))
    for label in ("QR mean", "QR best@16", "success rate", "success@16", "distinct valid@16",
                  "distinct optimal@16", "pass@16"):
        assert label in header
    rows = [line for line in overall.splitlines() if line.startswith("| ") and "objective" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["SFT (start)", *OBJECTIVES]
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    for task in ("knapsack", "vertex_cover"):
        block = markdown.split(f"### {task}")[1].split("###")[0]
        assert [line.split("|")[1].strip() for line in block.splitlines() if line.startswith("| ")
                and "objective" not in line] == ["SFT (start)", *OBJECTIVES]
    assert "| dmpo |" in markdown[positions[1]:positions[2]]
    assert "Command: `python benchmarks/quality.py --smoke" in markdown

    for name in ("quality_smoke_curves.png", "quality_smoke_bars.png"):
        assert f"]({name})" in markdown
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) < 200_000

    payload = json.loads((out / "quality_smoke.json").read_text())
    assert {"mode", "command", "date", "machine", "budget", "wall_seconds", "aggregate", "paired_vs_grpo",
            "runs", "missing"} <= set(payload)
    assert payload["missing"] == [] and payload["budget"]["seeds"] == [0]
    assert set(payload["aggregate"]) == {"sft", *OBJECTIVES}
    for entry in payload["aggregate"].values():
        assert set(METRICS) <= set(entry["overall"])
        assert set(entry["tasks"]) == {"knapsack", "vertex_cover"}
        for stat in entry["overall"].values():
            assert stat["std"] is None and len(stat["values"]) == 1  # one seed: no spread claimed
    runs = {run["name"]: run for run in payload["runs"]}
    assert set(runs) == {"sft-s0", "grpo-s0", "dmpo-s0"}
    eval_sets = {tuple(run["eval_instances"]) for run in runs.values()}
    assert len(eval_sets) == 1 and len(next(iter(eval_sets))) == 4  # one held-out set for all
    assert runs["sft-s0"]["history"] == {"step": []}
    for name in ("grpo-s0", "dmpo-s0"):
        history = runs[name]["history"]
        assert history["step"] == [1, 2] and len(history["reward"]) == 2
        assert 0 <= runs[name]["headline"]["qr"] <= 100

    # A rerun finds every result and trains nothing; the report is written again.
    stamp = (work / "runs" / "dmpo-s0" / "result.json").stat().st_mtime_ns
    second = run_harness("--smoke", "--work-dir", str(work), "--output-dir", str(out), env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "3 already finished (skipped), 0 to run" in second.stdout
    assert (work / "runs" / "dmpo-s0" / "result.json").stat().st_mtime_ns == stamp

    # --report-only with an empty work dir reads the runs recorded in the report's JSON: the same report.
    written = (out / "quality_smoke.md").read_text()
    third = run_harness("--smoke", "--report-only", "--work-dir", str(tmp_path / "empty"), "--output-dir",
                        str(out), env=env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "3 runs recorded in" in third.stdout
    assert (out / "quality_smoke.md").read_text() == written
    assert json.loads((out / "quality_smoke.json").read_text())["aggregate"] == payload["aggregate"]


@pytest.mark.slow
def test_sources_budget_reports_source_metrics(tmp_path):
    """A reasoning-gym budget (countdown): SFT on the source, runs scored by the source, the
    report's columns are the source metrics."""
    pytest.importorskip("reasoning_gym")
    env = {**os.environ, "DMPO_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "out"
    done = run_harness("--mode-name", "smoke-sources", "--work-dir", str(tmp_path / "work"), "--output-dir",
                       str(out), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "accuracy" in done.stdout and "distinct correct" in done.stdout
    markdown = (out / "quality_smoke-sources.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| objective"))
    for label in ("accuracy", "mean reward", "well-formed", "pass@16", "distinct correct@16"):
        assert label in header
    assert "QR" not in header
    payload = json.loads((out / "quality_smoke-sources.json").read_text())
    assert set(payload["aggregate"]) == {"sft", *OBJECTIVES}
    for run in payload["runs"]:
        head = run["headline"]
        assert 0 <= head["accuracy"] <= head["pass@16"] <= 100 and 0 <= head["reward"] <= 1.1
        assert [item.startswith("countdown-") for item in run["eval_instances"]] == [True, True]
        assert list(run["tasks"]) == [payload["budget"]["tasks"][0]]
        if run["objective"] != "sft":  # the source reward's curves are kept for the report
            assert len(run["history"]["source/correct_frac"]) == 2
            assert all(0 <= v <= 1 for v in run["history"]["source/correct_frac"])
            assert "source/distinct_correct_answers" in run["history"]
    assert "Δ accuracy" in markdown


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("quality")


@pytest.mark.parametrize(("stem", "mode"), [("quality_full", "full"), ("quality_gpu", "gpu"),
                                            ("quality_sensitivity", "quick")])
def test_budgets_match_recorded_results(quality, stem, mode):
    """A budget's numbers and fingerprint are those of its recorded results: a changed budget
    (or settings default) would make them incomparable and must be a deliberate change."""
    recorded = json.loads((RESULTS / f"{stem}.json").read_text())
    budget = quality.BUDGETS[mode]
    assert json.loads(json.dumps(budget.record(), default=str)) == recorded["budget"]
    assert {run["fingerprint"] for run in recorded["runs"]} == {budget.fingerprint()}


def test_sensitivity_grid_around_registered_defaults(quality):
    from dmpo import objectives

    params = objectives.get("dmpo").params
    sweep = quality.sensitivity_sweep()
    assert params["lam"] in sweep.lambdas and params["alpha"] in sweep.alphas
    specs = quality.sensitivity_specs(sweep)
    plain = [spec for spec in specs if spec.objective == "dmpo" and not spec.params]
    assert [spec.seed for spec in plain] == list(sweep.seeds)  # the default cell is plain dmpo
    recorded = json.loads((RESULTS / "quality_sensitivity.json").read_text())
    assert {run["name"] for run in recorded["runs"]} == {spec.name for spec in specs}


@pytest.mark.slow
def test_report_only_regenerates_the_recorded_full_grid(quality, tmp_path):
    shutil.copy(RESULTS / "quality_full.json", tmp_path)
    code = quality.main(["--report-only", "--work-dir", str(tmp_path / "no-runs"), "--output-dir", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "quality_full.md").read_text() == (RESULTS / "quality_full.md").read_text()
    regenerated = json.loads((tmp_path / "quality_full.json").read_text())
    recorded = json.loads((RESULTS / "quality_full.json").read_text())
    for key in ("aggregate", "paired_vs_grpo", "budget", "runs", "command", "machine"):
        assert regenerated[key] == recorded[key]


def test_issue_14_budgets(quality, tmp_path):
    """--paper is the full budget with every group objective (its fingerprint is the full
    grid's, so the two compare run for run); --confirm trains on tasks the others never see;
    --scale's model has about 4M parameters; every named objective exists."""
    from dmpo import npbench, objectives
    from dmpo.models.tiny import build_tiny_model

    paper, full = quality.BUDGETS["paper"], quality.BUDGETS["full"]
    assert paper.fingerprint() == full.fingerprint()
    assert set(full.comparison.objectives) - {"dmpo-recipe"} <= set(paper.comparison.objectives)
    assert {"gspo", "gpg", "clip_cov", "kl_cov", "flowrl", "passk", *quality.DM_VARIANTS} <= set(
        paper.comparison.objectives)
    for mode in ("paper", "confirm", "scale"):
        comparison = quality.BUDGETS[mode].comparison
        assert comparison.seeds == (0, 1, 2) and comparison.train.max_steps == 200
        assert comparison.objectives[0] == "grpo"  # the paired differences' baseline
        for name in comparison.objectives:
            assert objectives.get(name).kind == "group"
    confirm = quality.BUDGETS["confirm"].comparison
    assert not set(confirm.train.tasks) & set(quality.TASKS) and len(confirm.train.tasks) == 3
    assert confirm.sft.tasks == confirm.train.tasks
    for task in confirm.train.tasks:
        npbench.get_task(task)
    scale = quality.BUDGETS["scale"].comparison
    assert scale.train.tasks == quality.TASKS and scale.sft.tasks == full.comparison.sft.tasks
    import transformers

    path = build_tiny_model(tmp_path / "m", hidden_size=scale.sft.hidden_size, num_layers=scale.sft.num_layers,
                            heads=scale.sft.heads)
    count = transformers.AutoModelForCausalLM.from_pretrained(path).num_parameters()
    assert 3.5e6 < count < 5e6


@pytest.mark.parametrize(("flag", "mode"), [("--paper", "paper"), ("--confirm", "confirm"), ("--scale", "scale")])
def test_issue_14_flags_pick_their_budget(quality, tmp_path, capsys, flag, mode):
    code = quality.main([flag, "--report-only", "--work-dir", str(tmp_path / "w"), "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "no finished runs to report" in out  # nothing run, nothing recorded yet
    assert f"mode {mode}: 200 steps" in out


def test_vision_and_countdown_budgets(quality):
    """The vision grid (issue 11) trains and evaluates the built-in VLM on grid images of the four
    vision-only tasks, warm-started on the same four; the countdown grid (issue 12) warm-starts on
    its one task, whose compact prompt is the short one."""
    from dmpo import objectives
    from dmpo.pipeline.sources import get_source

    vision = quality.BUDGETS["vision"].comparison
    assert vision.train.tasks == quality.VISION_TASKS == vision.sft.tasks
    assert set(quality.VISION_TASKS) == {"vertex_cover", "dominating_set", "feedback_vertex_set", "max_cut"}
    assert vision.sft.vision and vision.train.modality == vision.evaluation.modality == "vision"
    assert vision.train.render == vision.evaluation.render == vision.sft.render == "grid"
    assert vision.objectives[0] == "grpo" and vision.seeds == (0, 1, 2)
    assert {"gspo", "gpg", "clip_cov", "flowrl", "passk", "dmpo", "dmpo-ce"} <= set(vision.objectives)
    for name in vision.objectives:
        assert objectives.get(name).kind == "group"
    assert quality.BUDGETS["vision"].fingerprint() != quality.BUDGETS["full"].fingerprint()
    assert quality.BUDGETS["vision"].numbers()["train.modality"] == "vision"

    countdown = quality.BUDGETS["countdown"].comparison
    assert countdown.train.tasks == countdown.sft.tasks == (quality.COUNTDOWN,)
    source = get_source(quality.COUNTDOWN)
    item = source.items(start=0, count=1)[0]
    assert source.prompt(item, "compact").startswith("countdown: make ")
    assert len(source.answers(item)) >= 1
