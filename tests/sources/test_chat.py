"""Chat prompts: the built-in tokenizer's template, rendered as it says in datasets, sampling and
training, and the plain-text (compact) path unchanged by it."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")

from dmpo.errors import DmpoError
from dmpo.models import CHAT_TEMPLATE, build_tokenizer, require_chat_template
from dmpo.pipeline.settings import SFTSettings, TrainSettings
from dmpo.sources import chat_messages

MESSAGES = chat_messages("knapsack\n1 2\n", "Be brief.")
RENDERED = "<s>system: Be brief.\nuser: knapsack\n1 2\n\nassistant: "


def test_the_tiny_template_renders_role_lines():
    tokenizer = build_tokenizer()
    assert tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True) == RENDERED
    ids = tokenizer.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True,
                                        return_dict=True)["input_ids"]
    assert ids == tokenizer(RENDERED, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    full = [*MESSAGES, {"role": "assistant", "content": "Answer: [1]"}]
    assert tokenizer.apply_chat_template(full, tokenize=False).endswith("assistant: Answer: [1]</s>\n")
    assert chat_messages("hi") == [{"role": "user", "content": "hi"}]


def test_the_plain_text_path_and_the_sft_cache_key_are_unchanged():
    tokenizer = build_tokenizer()
    assert tokenizer("ab\n")["input_ids"] == [1, 69, 70, 99]  # BOS + one token per character, as before
    assert SFTSettings().key() == "baa297d8dd03"  # the key of the cached built-in model
    settings = TrainSettings()
    assert (settings.chat, settings.prompt_style, settings.system_prompt) == (False, "compact", None)


def test_datasets_hold_text_or_conversations():
    from dmpo.engines.trl import build_npbench_dataset, build_source_dataset
    from dmpo.sources import MathSource

    plain = build_npbench_dataset("knapsack", count=1)
    assert isinstance(plain[0]["prompt"], str) and plain[0]["prompt"].startswith("knapsack\n")
    chat = build_npbench_dataset("knapsack", count=1, chat=True, system_prompt="Be brief.")
    assert chat[0]["prompt"] == chat_messages(plain[0]["prompt"], "Be brief.")
    pytest.importorskip("math_verify")
    source = MathSource("math:synthetic")
    data = build_source_dataset([source], count=2, seed=5, prompt_style="nl", chat=True)
    item = source.items(start=5, count=1)[0]
    assert data[0]["prompt"] == [{"role": "user", "content": source.prompt(item, "nl")}]
    assert data[0]["source"] == "math:synthetic" and source.item_from_json(data[0]["item"]) == item


def test_sampling_renders_through_the_template():
    from dmpo.evaluation.sampling import render_prompts

    tokenizer = build_tokenizer()
    assert render_prompts(tokenizer, ["knapsack\n1 2\n"], chat=True, system_prompt="Be brief.") == [RENDERED]
    assert render_prompts(tokenizer, ["x"]) == ["x"]


def test_a_tokenizer_without_a_template():
    old = build_tokenizer()
    old.chat_template = None  # a built-in model cached before the template existed
    assert require_chat_template(old, "cached").chat_template == CHAT_TEMPLATE

    class Other:
        chat_template = None

        def get_vocab(self):
            return {"a": 0}

    with pytest.raises(DmpoError, match="has no chat template"):
        require_chat_template(Other(), "some/base-model")


def test_system_prompt_needs_chat():
    with pytest.raises(DmpoError, match="give --chat too"):
        TrainSettings(system_prompt="Be brief.")


@pytest.mark.trl
def test_training_on_conversations_goes_through_the_chat_template(tiny_model_path, tmp_path):
    from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset, make_npbench_reward

    seen = {}
    npbench = make_npbench_reward()

    def reward(prompts, completions, **kwargs):
        seen.setdefault("prompts", prompts)
        seen.setdefault("completions", completions)
        return npbench(completions=completions, **kwargs)

    args = DMPOConfig.for_cpu(output_dir=str(tmp_path / "run"), num_generations=4, per_device_train_batch_size=8,
                              max_completion_length=8, max_steps=2, logging_steps=1, save_strategy="no",
                              disable_tqdm=True, report_to="none")
    trainer = DMPOTrainer(str(tiny_model_path), reward_funcs=reward, args=args,
                          train_dataset=build_npbench_dataset("knapsack", count=4, chat=True, system_prompt="Hi."))
    trainer.train()
    assert [row["step"] for row in trainer.state.log_history if "loss" in row] == [1, 2]
    assert seen["prompts"][0][0] == {"role": "system", "content": "Hi."}
    assert seen["completions"][0][0]["role"] == "assistant"
    rendered = trainer.processing_class.apply_chat_template(seen["prompts"][0], tokenize=False,
                                                           add_generation_prompt=True)
    assert rendered.startswith("<s>system: Hi.\nuser: knapsack\n") and rendered.endswith("\nassistant: ")
