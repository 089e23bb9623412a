"""SFT warm start: the data has a spread of quality and only valid answers; the model is
trained with TRL's SFTTrainer, cached, and reused."""

from __future__ import annotations

import json
import os

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.pipeline.settings import SFTSettings, default_model_path, is_built

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo.pipeline import sft

TASKS = ("knapsack", "vertex_cover")
QUICK = dict(tasks=("knapsack",), instances_per_task=20, answers_per_instance=2, explore_steps=60,
             hidden_size=32, num_layers=1, heads=2, epochs=4.0, batch_size=8)


def test_sft_data_is_valid_and_spread_over_quality():
    data = sft.build_sft_examples(TASKS, instances_per_task=30, answers_per_instance=4, progress=False)
    assert len(data.examples) == 2 * 30 * 4
    by_prompt: dict[str, set[str]] = {}
    for row in data.examples:
        assert row["prompt"].startswith(f"{row['task']}\n") and row["prompt"].endswith("\n")
        assert row["completion"].startswith("Answer: [")
        by_prompt.setdefault(row["prompt"], set()).add(row["completion"])
    # Re-score every example against its instance: valid, and the QR recorded is the QR earned.
    for name in TASKS:
        task = npbench.get_task(name)
        for i in range(30):
            inst = task.generate(seed=i, difficulty="tiny")
            prompt = task.prompt(inst, style="compact")
            rows = [r for r in data.examples if r["prompt"] == prompt]
            assert len(rows) == 4
            for row in rows:
                verdict = task.evaluate(inst, row["completion"])
                assert verdict.valid, row
                assert verdict.quality_ratio == pytest.approx(row["quality_ratio"])
                assert verdict.quality_ratio > 0
    qrs = [r["quality_ratio"] for r in data.examples]
    optimal = sum(q >= 1 - 1e-9 for q in qrs) / len(qrs)
    assert 0.45 <= optimal <= 0.8  # half optimal by design; more where only optima exist
    assert sum(0 < q < 0.9 for q in qrs) >= 0.1 * len(qrs)  # clearly sub-optimal answers too
    # Better sub-optimal answers are more frequent than worse ones (weights QR²).
    sub = [q for q in qrs if q < 1 - 1e-9]
    assert sum(q >= 0.6 for q in sub) > sum(q < 0.6 for q in sub)
    # Several optima of one instance are taught when they exist (vertex cover has many).
    assert any(len(c) >= 2 for c in by_prompt.values())
    stats = data.stats["tasks"]
    assert set(stats) == set(TASKS)
    assert stats["vertex_cover"]["distinct_optima_per_instance"] > 1


def test_sft_data_is_deterministic_and_sets_are_sorted():
    a = sft.build_sft_examples(("vertex_cover",), instances_per_task=5, progress=False)
    b = sft.build_sft_examples(("vertex_cover",), instances_per_task=5, progress=False)
    assert a.examples == b.examples
    for row in a.examples:
        ids = json.loads(row["completion"].removeprefix("Answer: "))
        assert ids == sorted(ids)  # canonical spelling of a set


def test_optimal_fraction_one_gives_only_optima():
    data = sft.build_sft_examples(("knapsack",), instances_per_task=10, optimal_fraction=1.0, progress=False)
    assert all(r["quality_ratio"] == pytest.approx(1.0) for r in data.examples)


def test_settings_errors_and_cache_key(tmp_path, monkeypatch):
    with pytest.raises(DmpoError, match="unknown task"):
        SFTSettings(tasks=("nope",))
    with pytest.raises(DmpoError, match="at least 1"):
        SFTSettings(instances_per_task=0)
    with pytest.raises(DmpoError, match="optimal_fraction"):
        SFTSettings(optimal_fraction=1.5)
    monkeypatch.setenv("DMPO_CACHE", str(tmp_path))
    assert default_model_path().parent == tmp_path
    assert SFTSettings().key() == SFTSettings().key()
    assert SFTSettings(epochs=2.0).key() != SFTSettings().key()


@pytest.mark.slow
def test_ensure_default_model_builds_once_and_learns_the_format(tmp_path, monkeypatch):
    monkeypatch.setenv("DMPO_CACHE", str(tmp_path))
    settings = SFTSettings(**QUICK, learning_rate=1e-2)
    path = sft.ensure_default_model(settings, progress=False)
    assert path == default_model_path(settings) and is_built(path)
    info = json.loads((path / sft.MARKER).read_text())
    losses = [row["loss"] for row in info["history"] if "loss" in row]
    assert len(losses) >= 5 and losses[-1] < losses[0] / 2  # SFT learned something
    assert info["data"]["num_examples"] == 40
    # No half-built folders left beside it.
    assert [p.name for p in tmp_path.iterdir()] == [path.name]

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a cached model")

    monkeypatch.setattr(sft, "build_sft_model", fail)
    assert sft.ensure_default_model(settings, progress=False) == path

    from dmpo.evaluation import evaluate_model, heldout_instances

    result = evaluate_model(path, heldout_instances(["knapsack"], count=4, progress=False), k=1,
                            temperature=0, max_new_tokens=12, keep_completions=True, progress=False)
    # After a short SFT the model's most likely completion starts in the answer format.
    assert all(row[0].startswith("Answer: [") for row in result.completions)
