"""``dmpo demo --quick``: SFT (built into an empty cache) → GRPO and DMPO → evaluation → report."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("training_curves.png", "entropy_q.png", "final_bars.png", "qr_at_k.png")


@pytest.mark.slow
def test_demo_quick_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DMPO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output-dir", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    assert "building the built-in tiny model" in printed  # the cache was empty

    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name

    report = (out / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    summary_header = next(i for i, line in enumerate(rows) if line.startswith("| model | QR mean"))
    assert "QR best-of-4" in rows[summary_header] and "distinct valid@4" in rows[summary_header]
    assert "pass@4" in rows[summary_header]
    models = [row.split("|")[1].strip() for row in rows[summary_header + 1:summary_header + 4]]
    assert models == ["SFT", "GRPO", "DMPO"]
    for name in PLOTS:
        assert f"]({name})" in report

    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["SFT", "GRPO", "DMPO"]
    for name, model in results["models"].items():
        assert model["k"] == 4 and model["num_items"] == 2, name
        assert 0 <= model["headline"]["qr"] <= model["headline"]["qr_best"] <= 100
    # The same held-out items for every model.
    ids = {name: [item["id"] for item in model["items"]] for name, model in results["models"].items()}
    assert ids["SFT"] == ids["GRPO"] == ids["DMPO"] == ["knapsack-tiny-1000000", "knapsack-tiny-1000001"]
    # Both runs logged 3 steps; DMPO logged the entropy of q, GRPO has no q.
    for name in ("GRPO", "DMPO"):
        steps = [row for row in results["training"][name]["history"] if "loss" in row]
        assert [row["step"] for row in steps] == [1, 2, 3]
    assert all("entropy_q" in row for row in results["training"]["DMPO"]["history"] if "loss" in row)
    assert not any("entropy_q" in row for row in results["training"]["GRPO"]["history"])
    assert results["settings"]["train"]["max_steps"] == 3

    # A second run reuses the cached SFT model.
    assert main(["demo", "--quick", "--output-dir", str(tmp_path / "again"), "--no-progress",
                 "--objectives", "dmpo", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "building the built-in tiny model" not in printed
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert list(again["models"]) == ["SFT", "DMPO"]
    # Same seed, same SFT checkpoint, same held-out set: the SFT row is identical.
    assert again["models"]["SFT"]["headline"] == results["models"]["SFT"]["headline"]
