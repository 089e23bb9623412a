"""A tiny model per session for the tests that train or sample."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    pytest.importorskip("transformers")
    from dmpo.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden_size=32, num_layers=1, heads=2)
