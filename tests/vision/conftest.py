"""Shared fixtures of the vision tests: one tiny VLM per session, small images."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory):
    pytest.importorskip("transformers")
    from dmpo.models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), hidden_size=32, num_layers=1, heads=2,
                          vision_hidden_size=16, vision_layers=1, vision_heads=2, max_image_size=56)


def make_image(seed: int, size: int = 56):
    """A deterministic RGB noise image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8), mode="RGB")
