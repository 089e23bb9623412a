"""The vision path end to end: SFT data with image prompts, the cached tiny VLM warm start, a
training run and an evaluation through the pipeline and the CLI, and clear errors."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.trl
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dmpo import npbench  # noqa: E402
from dmpo.errors import DmpoError  # noqa: E402
from dmpo.evaluation.sampling import evaluate_completions  # noqa: E402
from dmpo.pipeline import sft  # noqa: E402
from dmpo.pipeline.settings import EvalSettings, SFTSettings, TrainSettings, default_model_path  # noqa: E402

QUICK = {"tasks": ("vertex_cover",), "instances_per_task": 6, "answers_per_instance": 2, "explore_steps": 40,
         "hidden_size": 32, "num_layers": 1, "heads": 2, "vision_hidden_size": 16, "vision_layers": 1,
         "epochs": 2.0, "batch_size": 4, "modality": "vision"}


def test_vision_sft_data_is_the_text_data_with_pictures():
    kwargs = {"instances_per_task": 5, "answers_per_instance": 3, "explore_steps": 40, "progress": False}
    text = sft.build_sft_examples(("vertex_cover", "max_cut"), **kwargs)
    vision = sft.build_sft_examples(("vertex_cover", "max_cut"), render="grid", **kwargs)
    assert len(text.examples) == len(vision.examples) == 30
    # The same answers in the same order (the same random draws), as conversations with pictures.
    for t, v in zip(text.examples, vision.examples):
        assert v["completion"] == [{"role": "assistant", "content": t["completion"]}]
        assert v["prompt"] == [{"role": "user", "content": f"{t['task']}\n"}]
        assert v["quality_ratio"] == t["quality_ratio"]
    # Each picture is its instance's grid image (matched through the text prompt of the instance).
    for name in ("vertex_cover", "max_cut"):
        task = npbench.get_task(name)
        for seed in range(5):
            inst = task.generate(seed, "tiny")
            expected = task.vision_prompt(inst, "grid", style="compact").image
            rows = [v for t, v in zip(text.examples, vision.examples) if t["prompt"] == task.prompt(inst, style="compact")]
            assert rows and all(list(r["image"].getdata()) == list(expected.getdata()) for r in rows)


def test_sft_cache_keys():
    # The vision fields leave the text model's key (its cache folder) as it was.
    assert SFTSettings().key() == SFTSettings(render="drawing", vision_hidden_size=32).key()
    vision = SFTSettings(modality="vision")
    assert vision.key() != SFTSettings().key()
    assert vision.key() != SFTSettings(modality="vision", render="drawing").key()
    assert default_model_path(vision).name.startswith("tiny-vlm-sft-")
    assert default_model_path(SFTSettings()).name.startswith("tiny-sft-")


@pytest.fixture(scope="module")
def vision_sft_model(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("DMPO_CACHE")
    os.environ["DMPO_CACHE"] = str(cache)
    try:
        settings = SFTSettings(**QUICK)
        path = sft.ensure_default_model(settings, progress=False)
        again = sft.ensure_default_model(settings, progress=False)
    finally:
        if old is None:
            os.environ.pop("DMPO_CACHE")
        else:
            os.environ["DMPO_CACHE"] = old
    assert path == again and path.parent == cache and path.name == default_model_path(settings).name
    return path


def test_vision_sft_builds_a_cached_vlm(vision_sft_model):
    from dmpo.models import is_vision_model, load_model_and_tokenizer
    from dmpo.models.vlm import TinyVLProcessor

    info = json.loads((vision_sft_model / sft.MARKER).read_text())
    assert info["settings"]["modality"] == "vision"
    losses = [row["loss"] for row in info["history"] if "loss" in row]
    assert losses and losses[-1] < losses[0]
    assert is_vision_model(vision_sft_model)
    _, processor = load_model_and_tokenizer(vision_sft_model)
    assert isinstance(processor, TinyVLProcessor)


def test_train_and_eval_vision_through_the_cli(vision_sft_model, tmp_path, capsys):
    from dmpo.cli.main import main
    from dmpo.models import load_model_and_tokenizer

    out = tmp_path / "run"
    code = main(["train", "--modality", "vision", "--objective", "dmpo", "--tasks", "vertex_cover",
                 "--max-steps", "2", "--model", str(vision_sft_model), "--num-generations", "4",
                 "--per-device-batch", "8", "--num-prompts", "4", "--max-completion-length", "12",
                 "--output-dir", str(out), "--no-progress"])
    assert code == 0
    record = json.loads((out / "dmpo_train.json").read_text())
    assert record["modality"] == "vision" and record["render"] == "grid"
    model, processor = load_model_and_tokenizer(out)
    assert model.config.model_type == "qwen2_vl" and hasattr(processor, "image_processor")
    capsys.readouterr()
    code = main(["eval", "--modality", "vision", "--model", str(out), "--tasks", "vertex_cover", "--count", "2",
                 "--k", "3", "--max-new-tokens", "12", "--output", str(tmp_path / "eval.json"), "--no-progress",
                 "--keep-completions"])
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["k"] == 3 and result["num_items"] == 2
    assert result["summary"]["protocol"] == "vision"
    assert result["settings"]["render"] == "grid"
    assert all(len(row["completions"]) == 3 for row in result["completions"])
    assert "vertex_cover" in capsys.readouterr().out


def test_vision_eval_metrics_on_hand_made_completions():
    task = npbench.get_task("vertex_cover")
    inst = task.generate(0, "tiny")
    n = len(inst.question)  # the adjacency lists of n vertices
    everything = ", ".join(str(v) for v in range(n))
    completions = [[f"Answer: {inst.solution}", "Answer: []", f"Answer: [{everything}]", "no answer"]]
    result = evaluate_completions([inst], completions, protocol="vision")
    row = result.summary["tasks"]["vertex_cover"]
    all_qr = 100 * inst.optimum / n
    assert row["sr"] == pytest.approx(50.0)  # the optimum and all vertices are valid covers
    assert row["qr"] == pytest.approx((100 + all_qr) / 4)
    assert row["qr_best"] == pytest.approx(100.0)
    assert row["distinct_valid"] == 2
    assert list(result.summary["categories"]) == ["covering"]


def test_clear_errors(tmp_path):
    from dmpo.models import build_tiny_model
    from dmpo.pipeline.evaluate import evaluate
    from dmpo.pipeline.train import train

    text_model = build_tiny_model(tmp_path / "text", hidden_size=16, num_layers=1, heads=2)
    with pytest.raises(DmpoError, match="needs a vision-language model"):
        train(TrainSettings(modality="vision", tasks=("vertex_cover",), model=str(text_model), max_steps=1,
                            num_prompts=2, num_generations=2, per_device_batch=2, output_dir=str(tmp_path / "o")),
              progress=False)
    with pytest.raises(DmpoError, match="needs a vision-language model"):
        evaluate(EvalSettings(modality="vision", tasks=("vertex_cover",), model=str(text_model), count=1, k=1),
                 progress=False)
    with pytest.raises(DmpoError, match="render"):
        TrainSettings(modality="vision", render="sketch")
    with pytest.raises(DmpoError, match="NP-Bench tasks only"):
        TrainSettings(modality="vision", tasks=("math:synthetic",))
    with pytest.raises(DmpoError, match="modality"):
        EvalSettings(modality="audio")


def test_vision_model_with_text_prompts_is_a_clear_error(tiny_vlm_path, tmp_path):
    from dmpo.pipeline.train import train

    with pytest.raises(DmpoError, match="give --modality vision"):
        train(TrainSettings(tasks=("vertex_cover",), model=str(tiny_vlm_path), max_steps=1, num_prompts=2,
                            num_generations=2, per_device_batch=2, output_dir=str(tmp_path / "o")), progress=False)


def test_lora_run_saves_a_merged_model_with_the_vision_tower_unchanged(tiny_vlm_path, tmp_path):
    import torch

    from dmpo.models import load_model_and_tokenizer
    from dmpo.pipeline.train import train

    result = train(TrainSettings(modality="vision", tasks=("vertex_cover",), model=str(tiny_vlm_path), max_steps=2,
                                 num_prompts=2, num_generations=4, per_device_batch=8, max_completion_length=8,
                                 learning_rate=5e-2, lora_r=2, output_dir=str(tmp_path / "lora")), progress=False)
    assert not (result.model_dir / "adapter_config.json").exists()  # a plain model, merged
    before = load_model_and_tokenizer(tiny_vlm_path)[0].state_dict()
    after = load_model_and_tokenizer(result.model_dir)[0].state_dict()
    assert set(before) == set(after)
    assert all(torch.equal(before[k], after[k]) for k in before if "visual" in k)
    # Untrained, the model's rewards may all tie (no signal); when they do not, the merged LoRA
    # update shows in the language model's projections and nowhere else.
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert all(".language_model." in k and k.endswith("proj.weight") for k in changed)
