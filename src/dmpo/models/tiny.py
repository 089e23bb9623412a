"""The built-in tiny model: a character-level tokenizer and a small Llama decoder, built offline.

No model hub is needed: ``build_tiny_model`` writes a folder that ``AutoModelForCausalLM`` and
``AutoTokenizer`` (or :func:`load_model_and_tokenizer`) reload with ``HF_HUB_OFFLINE=1``. One token
per character suits NP-Bench's compact prompts (digits, brackets, commas, short words), so a model
of a few hundred thousand parameters can learn the answer format on a CPU.

The architecture is Llama on purpose: with a Qwen2 config, ``AutoTokenizer`` substitutes Qwen's own
tokenizer class and silently drops characters of a custom vocabulary.

The tokenizer has a chat template (:data:`CHAT_TEMPLATE`, plain ``role: content`` lines) so that
conversational prompts (``--chat``) work with the built-in model too. Nothing uses it unless
asked: plain-text prompts, the SFT data and the SFT cache key are what they were without it.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

from dmpo.errors import DmpoError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
# Printable ASCII (space to tilde) and newline; tabs and other whitespace map to <unk>.
CHARACTERS: tuple[str, ...] = (*(chr(c) for c in range(32, 127)), "\n")
_CHARACTER_SET = set(CHARACTERS)
assert set(string.digits) <= _CHARACTER_SET

# One line per message, "role: content", in the tokenizer's own characters; the assistant's turn
# ends with EOS (where generation stops). A generation prompt is "assistant: ".
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ 'assistant: ' + message['content'] + eos_token + '\n' }}"
    "{% else %}"
    "{{ message['role'] + ': ' + message['content'] + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)


def build_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` with one token per character, left padding, and a BOS prefix."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *CHARACTERS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # [\s\S] matches every character, newline included, in any regex flavour.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
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
        chat_template=CHAT_TEMPLATE,
    )


def is_tiny_tokenizer(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is the built-in character tokenizer (same vocabulary)."""
    expected = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *CHARACTERS))}
    try:
        return tokenizer.get_vocab() == expected
    except Exception:  # a processor or tokenizer without a vocabulary
        return False


def build_tiny_model(
    output_dir: str | os.PathLike,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    max_position_embeddings: int = 1024,
) -> Path:
    """Build a randomly initialised Llama decoder and its character tokenizer in ``output_dir``.

    Same arguments, same weights (the initialisation draws from its own seeded RNG and leaves the
    global one untouched). Returns the folder, loadable by ``from_pretrained`` offline.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if hidden_size <= 0 or num_layers <= 0 or heads <= 0:
        raise DmpoError(
            f"hidden_size, num_layers and heads must be positive, got {hidden_size}, {num_layers}, {heads}"
        )
    if hidden_size % heads != 0 or (hidden_size // heads) % 2 != 0:
        raise DmpoError(
            f"hidden_size ({hidden_size}) must be divisible by heads ({heads}) into an even head size "
            "(rotary embeddings rotate pairs of dimensions)"
        )
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
