"""Shared fixtures of the engine tests: one tiny model and one small NP-Bench dataset per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    pytest.importorskip("transformers")
    from dmpo.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden_size=32, num_layers=1, heads=2)


@pytest.fixture(scope="session")
def knapsack_dataset():
    pytest.importorskip("datasets")
    from dmpo.engines.trl.data import build_npbench_dataset

    return build_npbench_dataset("knapsack", difficulty="tiny", count=8, seed=0)
