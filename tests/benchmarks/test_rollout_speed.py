"""benchmarks/rollout_speed.py --dry-run: the GPU measurement's code on the CPU at tiny sizes.
Every case of every backend runs, the JSON has its fields, and the numbers are positive and
finite and consistent with each other (tokens = completions × length per step; the default
backend is 1.00× itself). Which backend is faster on a CPU is never asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "rollout_speed.py"
BACKENDS = ["default", "continuous", "static_compiled"]
NUMBERS = ("first_step_s", "step_s", "generation_s", "generation_tokens_per_s", "step_tokens_per_s",
           "peak_memory_mib", "speedup_vs_default")  # fmt: skip


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_dry_run_measures_every_backend_and_writes_the_json(tmp_path):
    out = tmp_path / "rollout.json"
    done = run("--dry-run", "--json", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["bf16"] is False and report["device"].startswith("CPU")
    assert set(report["versions"]) == {"python", "torch", "transformers", "trl"}
    assert set(report["models"]) == {"tiny", "small"}
    for model in report["models"].values():
        assert model["parameters"] > 0 and model["hidden"] % model["heads"] == 0
    shapes = [("tiny", 8, 8), ("small", 16, 8)]
    assert [(c["size"], c["completions"], c["length"], c["backend"]) for c in report["cases"]] == [
        (*shape, backend) for shape in shapes for backend in BACKENDS
    ]
    for case in report["cases"]:
        assert case["status"] == "ok", case
        for key in NUMBERS:
            assert isinstance(case[key], float) and math.isfinite(case[key]) and case[key] > 0, (key, case)
        # every backend generates the full length: the same work per step
        assert case["generation_tokens"] == case["completions"] * case["length"]
        assert case["generation_s"] <= case["step_s"]
        assert math.isclose(case["generation_tokens_per_s"], case["generation_tokens"] / case["generation_s"])
        assert math.isclose(case["step_tokens_per_s"], case["completions"] * case["length"] / case["step_s"])
        default = next(c for c in report["cases"] if c["backend"] == "default" and c["size"] == case["size"])
        assert math.isclose(case["speedup_vs_default"], default["step_s"] / case["step_s"])
    table = done.stdout[done.stdout.index("size  params"):]
    assert table.count(" ok") == len(report["cases"])
    assert "static_compiled" in table and "continuous" in table


def load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("rollout_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rollout_speed", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--cases", "huge:8x8"], "unknown size"), (["--cases", "tiny:8"], "SIZE:COMPLETIONSxTOKENS"),
     (["--cases", "tiny:12x8"], "multiple of --group-size"), (["--backends", "vllm"], "backends must be among"),
     (["--steps", "0"], "--steps ≥ 1")],
)
def test_bad_arguments_are_one_line_errors(monkeypatch, args, message):
    script = load_script(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["rollout_speed.py", "--dry-run", *args])
    with pytest.raises(SystemExit, match=message):
        script.main()
