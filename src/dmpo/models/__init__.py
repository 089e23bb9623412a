"""Models: the built-in tiny decoder (``tiny``), the built-in tiny vision-language model (``vlm``)
and loading any causal LM or VLM by folder or hub id (``loading``).

    from dmpo.models import build_tiny_model, build_tiny_vlm, load_model_and_tokenizer
    path = build_tiny_model("runs/tiny")          # offline, seconds
    model, tokenizer = load_model_and_tokenizer(path)
    model, processor = load_model_and_tokenizer(build_tiny_vlm("runs/tiny-vlm"))

Needs the ``trl`` extra (transformers, tokenizers); importing this package does not import them.
"""

from typing import Any

from dmpo.models.loading import (
           is_vision_model,
           load_model_and_tokenizer,
           require_chat_template,
           resolve_model_source,
)
from dmpo.models.tiny import CHAT_TEMPLATE, build_tiny_model, build_tokenizer

__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "build_tiny_vlm", "build_tokenizer", "is_vision_model",
           "load_model_and_tokenizer", "require_chat_template", "resolve_model_source"]


def build_tiny_vlm(output_dir: Any, **kwargs: Any) -> Any:
    """:func:`dmpo.models.vlm.build_tiny_vlm` (imported on call: it needs transformers)."""
    from dmpo.models.vlm import build_tiny_vlm as build

    return build(output_dir, **kwargs)
