"""Loading any causal LM and its tokenizer from a local folder or a hub id, with clear errors
for a path that does not exist (instead of a hub look-up for a typo)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError


def _looks_like_local_path(name: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with a separator is meant as a folder.
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def resolve_model_source(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """(what to pass to ``from_pretrained``, whether it is a local folder).

    An existing folder is local; a name that can only be a path (absolute, ``./``, ``~``, or more
    than one ``/``) but does not exist raises DmpoError; anything else is taken as a hub id.
    """
    name = os.fspath(name_or_path)
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local), True
    if local.exists():
        raise DmpoError(f"model path {name!r} is a file; give the folder written by save_pretrained")
    if _looks_like_local_path(name):
        raise DmpoError(
            f"model path {name!r} does not exist; build the tiny model with "
            "dmpo.models.build_tiny_model(path) or give an existing folder or hub id"
        )
    return name, False


def load_model_and_tokenizer(name_or_path: str | os.PathLike, **model_kwargs: Any) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, or a vision-language model and its processor, from a
    local folder or a hub id.

    A folder (or hub config) with a vision part is a VLM: the model is loaded with
    ``AutoModelForImageTextToText`` and the second value is its processor
    (:func:`dmpo.models.vlm.load_vl_processor`), whose ``.tokenizer`` pads on the left.

    A local folder is read without touching the network. Anything else is passed to
    ``from_pretrained`` as a hub id (it needs a network or a filled cache). The tokenizer pads on
    the left (generation needs it) and gets ``pad_token = eos_token`` when it has none. A folder
    that does not exist, or a hub id that cannot be loaded, raises DmpoError.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = os.fspath(name_or_path)
    source, offline = resolve_model_source(name)
    vision = is_vision_model(source, local=offline)
    try:
        if vision:
            from transformers import AutoModelForImageTextToText

            from dmpo.models.vlm import load_vl_processor

            processing = load_vl_processor(source, local_files_only=offline)
            tokenizer = processing.tokenizer
            model = AutoModelForImageTextToText.from_pretrained(source, local_files_only=offline, **model_kwargs)
        else:
            processing = tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=offline, **model_kwargs)
    except OSError as exc:
        where = "folder" if offline else "hub id (is the network reachable, or HF_HUB_OFFLINE set?)"
        kind = "vision-language model" if vision else "causal LM"
        raise DmpoError(f"could not load a {kind} from {where} {name!r}: {exc}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processing


def is_vision_model(name_or_path: str | os.PathLike, *, local: bool | None = None) -> bool:
    """Whether a model folder (or hub id) is a vision-language model: its config has a vision part."""
    from dmpo.models.vlm import is_vlm_folder

    name = os.fspath(name_or_path)
    if local is None:
        local = Path(name).expanduser().is_dir()
    if local:
        return is_vlm_folder(Path(name).expanduser())
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError):
        return False
    return getattr(config, "vision_config", None) is not None


def require_chat_template(tokenizer: Any, name: str | os.PathLike) -> Any:
    """``tokenizer``, ready for conversational prompts: the built-in character tokenizer saved
    before it had a chat template gets :data:`dmpo.models.tiny.CHAT_TEMPLATE`; any other
    tokenizer without a chat template is a DmpoError."""
    from dmpo.models.tiny import CHAT_TEMPLATE, is_tiny_tokenizer

    if getattr(tokenizer, "chat_template", None):
        return tokenizer
    if is_tiny_tokenizer(tokenizer):
        tokenizer.chat_template = CHAT_TEMPLATE
        return tokenizer
    raise DmpoError(f"--chat: the tokenizer of {os.fspath(name)!r} has no chat template; give a chat "
                    "model (an instruct or chat variant), or leave --chat off for plain-text prompts")
