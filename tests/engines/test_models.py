"""The built-in tiny model: offline build and reload, and loading by folder or hub id."""

from __future__ import annotations

import pytest

from dmpo.errors import DmpoError

pytest.importorskip("transformers")
pytestmark = pytest.mark.trl

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from dmpo.models import build_tiny_model, build_tokenizer, load_model_and_tokenizer  # noqa: E402
from dmpo.models.tiny import CHARACTERS  # noqa: E402

PROMPT = "knapsack\ncap 26\n0:12,30\n1:10,4\nAnswer: [0, 3] ~{}|"


def test_tokenizer_is_one_token_per_character_and_round_trips():
    tokenizer = build_tokenizer()
    text = "".join(CHARACTERS)
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert len(ids) == len(text) + 1
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.padding_side == "left"
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id}) == 4


def test_build_and_reload_offline(tmp_path):
    path = build_tiny_model(tmp_path / "m", hidden_size=32, num_layers=1, heads=2, max_position_embeddings=256)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "llama"
    assert model.config.max_position_embeddings == 256
    assert model.config.vocab_size == len(tokenizer)
    ids = tokenizer(PROMPT)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == PROMPT
    assert tokenizer.padding_side == "left"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_same_seed_same_weights_and_global_rng_untouched(tmp_path):
    import torch

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = build_tiny_model(tmp_path / "a", hidden_size=32, num_layers=1, heads=2, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    second = build_tiny_model(tmp_path / "b", hidden_size=32, num_layers=1, heads=2, seed=7)
    third = build_tiny_model(tmp_path / "c", hidden_size=32, num_layers=1, heads=2, seed=8)
    params = [AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (first, second, third)]
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])
    assert not all(torch.equal(params[0][k], params[2][k]) for k in params[0])


def test_load_model_and_tokenizer_from_folder(tiny_model_path):
    import torch

    model, tokenizer = load_model_and_tokenizer(tiny_model_path)
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token_id is not None
    inputs = tokenizer([PROMPT], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert torch.equal(out[0, : inputs["input_ids"].shape[1]], inputs["input_ids"][0])
    assert inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 3


@pytest.mark.parametrize("path", ["/nonexistent/model", "./no-such-folder", "a/b/c"])
def test_missing_model_path_is_a_clear_error(path):
    with pytest.raises(DmpoError, match="does not exist"):
        load_model_and_tokenizer(path)


def test_file_instead_of_folder_is_a_clear_error(tmp_path):
    file = tmp_path / "model.bin"
    file.write_text("x")
    with pytest.raises(DmpoError, match="is a file"):
        load_model_and_tokenizer(file)


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DmpoError, match="hub id"):
        load_model_and_tokenizer("dmpo-test-org/no-such-model")


@pytest.mark.parametrize("kwargs", [{"hidden_size": 30, "heads": 4}, {"num_layers": 0}])
def test_bad_shapes_are_clear_errors(tmp_path, kwargs):
    with pytest.raises(DmpoError):
        build_tiny_model(tmp_path, **kwargs)
