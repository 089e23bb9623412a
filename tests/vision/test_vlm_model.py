"""The built-in tiny VLM: offline build, its tokenizer and processor, save/reload with identical
outputs, and loading through ``load_model_and_tokenizer``."""

from __future__ import annotations

import pytest

from dmpo.errors import DmpoError

pytest.importorskip("transformers")
pytestmark = pytest.mark.trl

import torch  # noqa: E402

from dmpo.models import build_tiny_vlm, is_vision_model, load_model_and_tokenizer  # noqa: E402
from dmpo.models.tiny import CHARACTERS  # noqa: E402
from dmpo.models.vlm import (  # noqa: E402
    IMAGE_PAD,
    VISION_END,
    VISION_START,
    VISION_TOKENS,
    TinyVLProcessor,
    build_vl_tokenizer,
)
from tests.vision.conftest import make_image  # noqa: E402


def _conversation(image, text="vertex cover: find the fewest vertices"):
    return [[{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]]


def test_tokenizer_has_the_vision_tokens_and_one_token_per_character():
    tokenizer = build_vl_tokenizer()
    text = "".join(CHARACTERS)
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == len(text)
    ids = tokenizer(f"a{VISION_START}{IMAGE_PAD}{IMAGE_PAD}{VISION_END}b", add_special_tokens=False)["input_ids"]
    vocab = tokenizer.get_vocab()
    assert ids == [vocab["a"], vocab[VISION_START], vocab[IMAGE_PAD], vocab[IMAGE_PAD], vocab[VISION_END], vocab["b"]]
    assert len({vocab[t] for t in VISION_TOKENS}) == 4
    assert tokenizer.image_token == IMAGE_PAD
    assert tokenizer.padding_side == "left"


def test_chat_template_expands_one_placeholder_per_merged_patch(tiny_vlm_path):
    _, processor = load_model_and_tokenizer(tiny_vlm_path)
    out = processor.apply_chat_template(_conversation(make_image(0)), add_generation_prompt=True, tokenize=True,
                                        return_dict=True, return_tensors="pt")
    # 56 px images: 4 × 4 patches of 14 px, merged 2 × 2 → 4 language-model tokens.
    assert out["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert out["pixel_values"].shape == (16, 3 * 2 * 14 * 14)
    text = processor.tokenizer.decode(out["input_ids"][0])
    assert text == (f"<s>user: {VISION_START}{IMAGE_PAD * 4}{VISION_END}vertex cover: find the fewest vertices\n"
                    "assistant: ")
    # A plain-string message renders like the text model's template.
    plain = processor.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                          tokenize=False)
    assert plain == "<s>user: hi\nassistant: "


def test_save_reload_gives_identical_logits(tiny_vlm_path, tmp_path):
    model, processor = load_model_and_tokenizer(tiny_vlm_path)
    assert isinstance(processor, TinyVLProcessor)
    assert model.config.model_type == "qwen2_vl" and is_vision_model(tiny_vlm_path)
    images = [make_image(1), make_image(2)]
    conversations = [_conversation(images[0])[0], _conversation(images[1], "max cut")[0]]
    inputs = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt", processor_kwargs={"padding": True})
    model.eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    # Another copy: save (model + processor), reload, same inputs and logits.
    model.save_pretrained(tmp_path / "copy")
    processor.save_pretrained(tmp_path / "copy")
    model2, processor2 = load_model_and_tokenizer(tmp_path / "copy")
    inputs2 = processor2.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                             return_dict=True, return_tensors="pt", processor_kwargs={"padding": True})
    assert set(inputs2) == set(inputs)
    for key in inputs:
        assert torch.equal(inputs[key], inputs2[key]), key
    model2.eval()
    with torch.no_grad():
        logits2 = model2(**inputs2).logits
    assert torch.equal(logits, logits2)
    # The image matters: another picture, other logits at the answer position.
    other = processor.apply_chat_template([_conversation(make_image(3))[0], conversations[1]],
                                          add_generation_prompt=True, tokenize=True, return_dict=True,
                                          return_tensors="pt", processor_kwargs={"padding": True})
    with torch.no_grad():
        assert not torch.allclose(model(**other).logits[0, -1], logits[0, -1])


def test_generate_from_an_image(tiny_vlm_path):
    model, processor = load_model_and_tokenizer(tiny_vlm_path)
    inputs = processor.apply_chat_template(_conversation(make_image(4)), add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    n = inputs["input_ids"].shape[1]
    assert torch.equal(out[0, :n], inputs["input_ids"][0])
    assert n < out.shape[1] <= n + 4


def test_same_seed_same_weights(tmp_path):
    from transformers import AutoModelForImageTextToText

    small = {"hidden_size": 16, "num_layers": 1, "heads": 2, "vision_hidden_size": 8, "vision_layers": 1,
             "vision_heads": 2, "max_image_size": 28}
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a = build_tiny_vlm(tmp_path / "a", seed=3, **small)
    assert torch.equal(torch.rand(1), expected)  # the global RNG is untouched
    b = build_tiny_vlm(tmp_path / "b", seed=3, **small)
    c = build_tiny_vlm(tmp_path / "c", seed=4, **small)
    states = [AutoModelForImageTextToText.from_pretrained(p).state_dict() for p in (a, b, c)]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


@pytest.mark.parametrize("kwargs", [{"hidden_size": 24, "heads": 4}, {"vision_layers": 0}, {"max_image_size": 100},
                                    {"vision_hidden_size": 6, "vision_heads": 2}])
def test_bad_sizes_are_clear_errors(tmp_path, kwargs):
    with pytest.raises(DmpoError):
        build_tiny_vlm(tmp_path, **kwargs)
