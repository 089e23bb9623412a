"""``dmpo demo --modality vision --quick``: the tiny VLM's SFT (into an empty cache) → GRPO and
DMPO on grid images → evaluation → report."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_vision_demo_quick_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DMPO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--modality", "vision", "--quick", "--workers", "1", "--output-dir", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "building the built-in tiny VLM" in printed
    assert f"report: {out / 'report.md'}" in printed
    for name in ("training_curves.png", "final_bars.png", "qr_at_k.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    report = (out / "report.md").read_text()
    assert "NP-Bench images (built-in tiny VLM, grid rendering)" in report
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"SFT", "GRPO", "DMPO"}
    for result in results["models"].values():
        assert result["summary"]["protocol"] == "vision" and result["k"] == 4
        assert result["settings"]["render"] == "grid"
    assert results["settings"]["train"]["modality"] == "vision"
    assert results["settings"]["evaluation"]["modality"] == "vision"
    assert (tmp_path / "cache").is_dir() and any(p.name.startswith("tiny-vlm-sft-") for p in (tmp_path / "cache").iterdir())
