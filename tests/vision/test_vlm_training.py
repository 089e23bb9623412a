"""Training the tiny VLM with the group objectives through TRL's vision-language path: image
prompts, NP-Bench rewards, groups kept whole with their pictures, LoRA on the language model."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

import torch  # noqa: E402

from dmpo import npbench  # noqa: E402
from dmpo.engines.trl import (  # noqa: E402
    DMPOConfig,
    DMPOTrainer,
    build_npbench_vision_dataset,
    make_npbench_reward,
    split_generation_batch,
)
from dmpo.models import load_model_and_tokenizer  # noqa: E402

# ---- micro-batches keep each sample's pixel rows ---------------------------------------------

GRIDS = [[1, 2, 2], [1, 2, 4], [1, 4, 4], [1, 2, 2], [1, 2, 6], [1, 4, 2]]  # 4, 8, 16, 4, 12, 8 patches


def _synthetic_batch():
    """Six rows in three groups of two, one image each, images of different sizes; pixel row r of
    sample s holds (s, r) so every row says whose it is and where it sits."""
    pixels = [torch.tensor([[float(s), float(r)] for r in range(math.prod(g))]) for s, g in enumerate(GRIDS)]
    return {
        "sample": torch.arange(6),
        "group_ids": torch.tensor([0, 0, 1, 1, 2, 2]),
        "pixel_values": torch.cat(pixels),
        "image_grid_thw": torch.tensor(GRIDS),
        "num_images": [1] * 6,
        "num_items_in_batch": torch.tensor(6),
    }


@pytest.mark.parametrize("whole_groups", [True, False])
def test_split_keeps_each_samples_pixel_rows(whole_groups):
    torch.manual_seed(0)
    chunks = split_generation_batch(_synthetic_batch(), 3, whole_groups=whole_groups)
    seen = []
    for chunk in chunks:
        samples = chunk["sample"].tolist()
        seen += samples
        assert chunk["image_grid_thw"].tolist() == [GRIDS[s] for s in samples]
        assert chunk["num_images"] == [1, 1]
        sizes = [math.prod(GRIDS[s]) for s in samples]
        assert chunk["pixel_values"].shape == (sum(sizes), 2)
        for s, rows in zip(samples, torch.split(chunk["pixel_values"], sizes)):
            expected = torch.tensor([[float(s), float(r)] for r in range(math.prod(GRIDS[s]))])
            assert torch.equal(rows, expected)
        if whole_groups:
            assert chunk["group_ids"][0] == chunk["group_ids"][1]
        assert chunk["num_items_in_batch"].item() == 6
    assert sorted(seen) == list(range(6))


def test_whole_group_shuffle_moves_images_with_groups():
    # Over several shuffles every group order occurs and pictures still follow their rows.
    orders = set()
    for seed in range(12):
        torch.manual_seed(seed)
        (chunk,) = split_generation_batch(_synthetic_batch(), 1, whole_groups=True)
        orders.add(tuple(chunk["group_ids"].tolist()))
        starts = torch.cumsum(torch.tensor([0] + [math.prod(GRIDS[s]) for s in chunk["sample"].tolist()]), 0)
        assert chunk["pixel_values"][starts[:-1], 0].tolist() == [float(s) for s in chunk["sample"].tolist()]
    assert len(orders) > 1


# ---- a few real steps ----------------------------------------------------------------------------

TASK = "vertex_cover"


@pytest.fixture(scope="module")
def vision_dataset():
    # include_text: the compact text encoding is in the prompt too, so a row's prompt ids name its
    # instance and the test can check the pixels that travel with it.
    return build_npbench_vision_dataset(TASK, difficulty="tiny", count=4, seed=0, include_text=True)


def _config(tmp_path, objective, **kwargs):
    defaults = {"num_generations": 4, "per_device_train_batch_size": 8, "steps_per_generation": 2,
                "max_completion_length": 8, "max_steps": 2, "learning_rate": 1e-2, "report_to": "none",
                "logging_steps": 1, "save_strategy": "no", "seed": 0}
    return DMPOConfig.for_cpu(output_dir=str(tmp_path / objective), objective=objective, **{**defaults, **kwargs})


def digit_share(completions, **kwargs):
    """A shaping reward that a random model already varies on (the NP-Bench reward of an untrained
    model is 0 everywhere): the share of digits in the completion."""
    texts = [c[-1]["content"] for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


def _train(tiny_vlm_path, dataset, args, **kwargs):
    model, processor = load_model_and_tokenizer(tiny_vlm_path)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = DMPOTrainer(model, reward_funcs=[make_npbench_reward(), digit_share], args=args, train_dataset=dataset,
                          processing_class=processor, **kwargs)
    trainer.train()
    changed = {name for name, p in trainer.model.named_parameters()
               if name in before and not torch.equal(p.detach(), before[name])}
    return trainer, processor, changed


@pytest.mark.parametrize(("objective", "extra"), [("grpo", {}), ("dmpo", {}),
                                                  # split groups; the second step's DM coefficients
                                                  # are recomputed (a forward pass with the images)
                                                  ("dmpo", {"per_device_train_batch_size": 2,
                                                            "steps_per_generation": 8,
                                                            "gradient_accumulation_steps": 4})])
def test_group_objectives_train_the_vlm(tiny_vlm_path, vision_dataset, tmp_path, objective, extra):
    trainer, processor, changed = _train(tiny_vlm_path, vision_dataset, _config(tmp_path, objective, **extra))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    # Both the vision tower and the language model moved.
    assert any(name.startswith("model.visual.") for name in changed)
    assert any(name.startswith("model.language_model.") for name in changed)
    assert any("npbench/quality_ratio" in row for row in trainer.state.log_history)
    assert trainer.args.group_split == ("rows" if extra else "whole")
    if extra:
        assert trainer._dm_coefficients_step == 1  # refreshed after the first optimiser step

    # Every buffered micro-batch row carries its own instance's picture.
    tokenizer = processor.tokenizer
    task = npbench.get_task(TASK)
    by_text = {}
    for row in vision_dataset:
        instance = npbench.Instance.from_dict(json.loads(row["instance"]))
        by_text[task.prompt(instance, style="compact")] = row["image"]
    for batch in trainer._buffered_inputs:
        sizes = batch["image_grid_thw"].prod(-1).tolist()
        assert batch["pixel_values"].shape[0] == sum(sizes)
        for ids, mask, rows in zip(batch["prompt_ids"], batch["prompt_mask"],
                                   torch.split(batch["pixel_values"], sizes)):
            text = tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)
            (image,) = [img for prompt, img in by_text.items() if prompt.strip() in text]
            expected = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
            assert torch.equal(rows, expected.to(rows.dtype))
        if not extra:  # whole groups: a micro-batch holds whole groups
            ids, counts = torch.unique(batch["group_ids"], return_counts=True)
            assert (counts == 4).all()


@pytest.mark.parametrize("objective", ["gspo", "flowrl", "brain"])
def test_other_group_objectives_train_the_vlm(tiny_vlm_path, vision_dataset, tmp_path, objective):
    # Sequence-level ratios (gspo), FlowRL's log-partition head on the VLM's decoder, a loss over
    # whole groups (brain): every parameter group moves, losses finite.
    trainer, _, changed = _train(tiny_vlm_path, vision_dataset, _config(tmp_path, objective))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert any(name.startswith("model.visual.") for name in changed)
    assert any(name.startswith("model.language_model.") for name in changed)


def test_lora_trains_the_language_model_only(tiny_vlm_path, vision_dataset, tmp_path):
    from peft import LoraConfig

    model, processor = load_model_and_tokenizer(tiny_vlm_path)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)")
    trainer = DMPOTrainer(model, reward_funcs=[make_npbench_reward(), digit_share], args=_config(tmp_path, "dmpo"),
                          train_dataset=vision_dataset, processing_class=processor, peft_config=lora)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name and ".language_model." in name for name in trainable)
    trainer.train()
    changed = {name for name, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert changed and changed <= set(trainable)
    assert any("lora_B" in name for name in changed)
