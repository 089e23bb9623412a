"""The built-in tiny vision-language model: Qwen2-VL at under a million parameters, with a
character tokenizer and a processor that needs neither torchvision nor a video processor.

``build_tiny_vlm(path)`` writes a folder that :func:`dmpo.models.load_model_and_tokenizer` (and
``AutoModelForImageTextToText`` for the weights) reload offline:

- the model is ``Qwen2VLForConditionalGeneration`` from a small ``Qwen2VLConfig`` (a 2-block vision
  tower on 14-px patches, merged 2×2 into one language-model token; a small Qwen2 decoder with
  multimodal rotary sections that add up to half its head size);
- the tokenizer is the built-in character vocabulary (``dmpo.models.tiny``) plus Qwen's vision
  tokens ``<|vision_start|>``, ``<|vision_end|>``, ``<|image_pad|>`` and ``<|video_pad|>``, each one
  token; its chat template (:data:`VLM_CHAT_TEMPLATE`) writes ``role: content`` lines like the text
  model's and one ``<|vision_start|><|image_pad|><|vision_end|>`` per image block, which the
  processor expands to one ``<|image_pad|>`` per merged patch;
- the processor is :class:`TinyVLProcessor`: transformers' ``Qwen2VLProcessor`` with only an image
  processor (``Qwen2VLImageProcessorPil``, PIL only) and a tokenizer. The stock class cannot be built
  without torchvision (its video processor needs it); this one is the same processing without the
  video branch, saved as ``processor_config.json`` with ``processor_class`` ``TinyVLProcessor`` and
  reloaded by :func:`load_vl_processor` with identical outputs (tested: same ids, pixels and logits).

Images keep their size, rounded to multiples of 28 px, up to ``max_image_size``² pixels (larger ones
are shrunk to that many): an s × s image has (s/14)² patches and a quarter as many language-model
tokens, 4 for NP-Bench's 56-px ``tiny`` grid images, 16 at 112 px, 64 at 224 px.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import Qwen2VLProcessor

from dmpo.errors import DmpoError
from dmpo.models.tiny import BOS, CHARACTERS, EOS, PAD, SPECIAL_TOKENS, UNK

VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
VISION_TOKENS: tuple[str, ...] = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
PROCESSOR_CLASS = "TinyVLProcessor"

# "role: content" lines as the text model's (dmpo.models.tiny.CHAT_TEMPLATE); content is a string or
# a list of blocks ({"type": "image"} / {"type": "text", "text": ...}, TRL's multimodal messages).
VLM_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] + ': ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '" + VISION_START + IMAGE_PAD + VISION_END + "' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)


class TinyVLProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` with an image processor and a tokenizer only (no video processor, so no
    torchvision). Images, text and chat templates are processed exactly as by the stock class."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **kwargs)


def vision_vocabulary() -> dict[str, int]:
    """Token → id: the text model's special tokens, the vision tokens, then the characters."""
    return {token: i for i, token in enumerate((*SPECIAL_TOKENS, *VISION_TOKENS, *CHARACTERS))}


def build_vl_tokenizer() -> Any:
    """The character tokenizer with Qwen's vision tokens (one token each, never split), left
    padding, and :data:`VLM_CHAT_TEMPLATE` (which writes the BOS token itself)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = vision_vocabulary()
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (*SPECIAL_TOKENS, *VISION_TOKENS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        truncation_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
        chat_template=VLM_CHAT_TEMPLATE,
        extra_special_tokens={"image_token": IMAGE_PAD, "video_token": VIDEO_PAD,
                              "vision_start_token": VISION_START, "vision_end_token": VISION_END},
    )


def build_image_processor(max_image_size: int = 224) -> Any:
    """``Qwen2VLImageProcessorPil`` that keeps an image of up to ``max_image_size``² pixels at its
    own size rounded to multiples of 28 px (NP-Bench's grid images, 56, 112 or 224 px, pass
    unchanged) and shrinks a larger one to that many pixels."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    factor = PATCH_SIZE * MERGE_SIZE
    if max_image_size < factor or max_image_size % factor:
        raise DmpoError(f"max_image_size must be a positive multiple of {factor} pixels, got {max_image_size}")
    return Qwen2VLImageProcessorPil(min_pixels=factor * factor, max_pixels=max_image_size * max_image_size,
                                    patch_size=PATCH_SIZE, merge_size=MERGE_SIZE,
                                    temporal_patch_size=TEMPORAL_PATCH_SIZE)


def build_vl_processor(max_image_size: int = 224) -> TinyVLProcessor:
    tokenizer = build_vl_tokenizer()
    return TinyVLProcessor(image_processor=build_image_processor(max_image_size), tokenizer=tokenizer,
                           chat_template=VLM_CHAT_TEMPLATE)


def build_tiny_vlm(
    output_dir: str | os.PathLike,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    heads: int = 4,
    vision_hidden_size: int = 64,
    vision_layers: int = 2,
    vision_heads: int = 2,
    max_image_size: int = 224,
    seed: int = 0,
    max_position_embeddings: int = 1024,
) -> Path:
    """Build a randomly initialised tiny Qwen2-VL, its character tokenizer and processor in
    ``output_dir``. Same arguments, same weights (a private seeded RNG; the global one is left as
    it was). Returns the folder."""
    import torch
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    sizes = (hidden_size, num_layers, heads, vision_hidden_size, vision_layers, vision_heads)
    if min(sizes) <= 0:
        raise DmpoError(f"model sizes must be positive, got {sizes}")
    head_dim = hidden_size // heads
    if hidden_size % heads or head_dim % 8:
        raise DmpoError(f"hidden_size ({hidden_size}) / heads ({heads}) must be a multiple of 8 (the multimodal "
                        "rotary embedding splits half the head size into three sections)")
    vision_head_dim = vision_hidden_size // vision_heads
    if vision_hidden_size % vision_heads or vision_head_dim % 4:
        raise DmpoError(f"vision_hidden_size ({vision_hidden_size}) / vision_heads ({vision_heads}) must be a "
                        "multiple of 4 (2-D rotary embeddings)")
    processor = build_vl_processor(max_image_size)
    tokenizer = processor.tokenizer
    half = head_dim // 2
    sections = [half // 4, (half - half // 4) // 2]
    sections.append(half - sum(sections))  # temporal, height, width: Qwen's 16/24/24 proportions
    token_id = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": 4 * hidden_size,
            "num_hidden_layers": num_layers, "num_attention_heads": heads, "num_key_value_heads": heads,
            "max_position_embeddings": max_position_embeddings,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": sections},
            "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "depth": vision_layers, "embed_dim": vision_hidden_size, "hidden_size": hidden_size,
            "num_heads": vision_heads, "mlp_ratio": 4, "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE, "temporal_patch_size": TEMPORAL_PATCH_SIZE, "in_channels": 3,
        },
        image_token_id=token_id(IMAGE_PAD),
        video_token_id=token_id(VIDEO_PAD),
        vision_start_token_id=token_id(VISION_START),
        vision_end_token_id=token_id(VISION_END),
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id)
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def is_vlm_folder(path: str | os.PathLike) -> bool:
    """Whether the folder holds a vision-language model (its config has a vision part)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("vision_config" in data or "vision_tower" in data)


def load_vl_processor(source: str, *, local_files_only: bool) -> Any:
    """The processor of a VLM folder or hub id: :class:`TinyVLProcessor` for the built-in model
    and for any Qwen2-VL (no video processor, so no torchvision), ``AutoProcessor`` otherwise."""
    from transformers import AutoConfig, AutoProcessor

    processor_class = None
    saved = Path(source) / "processor_config.json"
    if saved.is_file():
        try:
            processor_class = json.loads(saved.read_text()).get("processor_class")
        except (OSError, ValueError):
            processor_class = None
    model_type = getattr(AutoConfig.from_pretrained(source, local_files_only=local_files_only), "model_type", None)
    if processor_class == PROCESSOR_CLASS or model_type == "qwen2_vl":
        return TinyVLProcessor.from_pretrained(source, local_files_only=local_files_only)
    return AutoProcessor.from_pretrained(source, local_files_only=local_files_only)


def is_processor(obj: Any) -> bool:
    """Whether ``obj`` is a multimodal processor (rather than a plain tokenizer)."""
    from transformers import ProcessorMixin

    return isinstance(obj, ProcessorMixin)


def tokenizer_of(processing_class: Any) -> Any:
    """The tokenizer of a processor, or the tokenizer itself."""
    return processing_class.tokenizer if is_processor(processing_class) else processing_class
