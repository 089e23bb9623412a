"""Models: the built-in tiny decoder (``tiny``) and loading any causal LM by folder or hub id
(``loading``).

    from dmpo.models import build_tiny_model, load_model_and_tokenizer
    path = build_tiny_model("runs/tiny")          # offline, seconds
    model, tokenizer = load_model_and_tokenizer(path)

Needs the ``trl`` extra (transformers, tokenizers); importing this package does not import them.
"""

from dmpo.models.loading import (
           load_model_and_tokenizer,
           require_chat_template,
           resolve_model_source,
)
from dmpo.models.tiny import CHAT_TEMPLATE, build_tiny_model, build_tokenizer

__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "build_tokenizer", "load_model_and_tokenizer",
           "require_chat_template", "resolve_model_source"]
