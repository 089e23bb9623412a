"""The generation backends of DMPOTrainer (``generation_backend``): TRL's default
``model.generate``, transformers' continuous batching, and a static cache with torch.compile.
Each must compute what the default computes: the same greedy completions, every sampled token
drawn from the model's exact distribution at its prefix, and a model left untouched for training.

The compiled backend is traced by torch.compile (dynamo) with the ``eager`` backend here:
inductor's code generation takes minutes on a small CPU, so only that last stage is skipped."""

from __future__ import annotations

import math

import pytest

from dmpo.errors import DmpoError

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from dmpo.engines.trl import DMPOConfig, DMPOTrainer  # noqa: E402
from dmpo.engines.trl.trainer import keep_training_dtype  # noqa: E402

BACKENDS = ("default", "continuous", "static_compiled")
G = 4
LENGTH = 10


def digit_reward(completions, **kwargs):
    return [sum(ch.isdigit() for ch in text) / 4 for text in completions]


def config(tmp_path, backend, **kwargs) -> DMPOConfig:
    base = {
        "output_dir": str(tmp_path / backend), "num_generations": G, "per_device_train_batch_size": 2 * G,
        "max_completion_length": LENGTH, "max_steps": 1, "learning_rate": 1e-2, "logging_steps": 1,
        "save_strategy": "no", "seed": 0, "disable_tqdm": True, "generation_backend": backend,
    }  # fmt: skip
    return DMPOConfig.for_cpu(**{**base, **kwargs})


def make_trainer(model_path, dataset, args, trainer_cls=DMPOTrainer):
    trainer = trainer_cls(str(model_path), reward_funcs=digit_reward, args=args, train_dataset=dataset)
    if getattr(args, "generation_backend", None) == "static_compiled":
        trainer.generation_config.compile_config.backend = "eager"  # dynamo tracing without inductor
    return trainer


def prompt_ids(trainer, dataset, count=6) -> list[list[int]]:
    return [trainer.processing_class(row["prompt"])["input_ids"] for row in dataset.select(range(count))]


def generate(trainer, prompts) -> list[list[int]]:
    completions, _ = trainer._generate_single_turn(prompts, None, {}, 1)
    return [list(map(int, c)) for c in completions]


# ---- the option -----------------------------------------------------------------------------
def test_backend_names_and_trl_fields_agree(tmp_path):
    assert config(tmp_path, "default").generation_backend == "default"
    continuous = config(tmp_path, "continuous")
    assert continuous.use_transformers_continuous_batching
    # TRL's own field picks the backend (the config shows what runs)
    assert config(tmp_path, "default", use_transformers_continuous_batching=True).generation_backend == "continuous"
    static = config(tmp_path, "static_compiled")
    assert static.cache_implementation == "static" and not static.use_transformers_continuous_batching
    assert config(tmp_path, "static_compiled", cache_implementation="static").cache_implementation == "static"


def test_dmpo_train_passes_the_backend_through(tmp_path):
    from dmpo.pipeline.settings import TrainSettings
    from dmpo.pipeline.train import build_config

    def settings(backend):
        return TrainSettings(tasks=("knapsack",), output_dir=str(tmp_path / "run"),
                             trainer={"generation_backend": backend})  # fmt: skip

    assert build_config(settings("static_compiled")).cache_implementation == "static"
    with pytest.raises(DmpoError, match="generation_backend must be one of"):
        build_config(settings("vllm"))


@pytest.mark.parametrize(
    ("backend", "extra", "message"),
    [
        ("fast", {}, "generation_backend must be one of"),
        ("static_compiled", {"use_transformers_continuous_batching": True}, "contradicts"),
        ("static_compiled", {"cache_implementation": "dynamic"}, "static cache"),
        ("continuous", {"use_vllm": True}, "use_vllm"),
        ("static_compiled", {"use_vllm": True}, "use_vllm"),
    ],
)
def test_contradictions_are_clear_errors(tmp_path, backend, extra, message):
    with pytest.raises(DmpoError, match=message):
        config(tmp_path, backend, **extra)


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"repetition_penalty": 1.2}, "RepetitionPenaltyLogitsProcessor"),
     ({"generation_kwargs": {"min_new_tokens": 4}}, "min_new_tokens=4")],
)
def test_continuous_batching_refuses_what_it_would_ignore(tiny_model_path, knapsack_dataset, tmp_path, extra, message):
    with pytest.raises(DmpoError, match=message):
        make_trainer(tiny_model_path, knapsack_dataset, config(tmp_path, "continuous", **extra))


def test_the_compiled_backend_switches_compilation_on(tiny_model_path, knapsack_dataset, tmp_path):
    default = make_trainer(tiny_model_path, knapsack_dataset, config(tmp_path, "default"))
    assert default.generation_config.disable_compile  # TRL's own choice
    trainer = make_trainer(tiny_model_path, knapsack_dataset, config(tmp_path, "static_compiled"))
    assert trainer.generation_config.disable_compile is False
    assert trainer.generation_config.cache_implementation == "static"
    assert trainer.generation_config.compile_config._compile_all_devices
    assert trainer.generation_config.compile_config.mode == "default"  # CPU: no CUDA graphs


# ---- same completions, same distribution ----------------------------------------------------
def test_greedy_completions_are_the_same_on_every_backend(tiny_model_path, knapsack_dataset, tmp_path):
    results = {}
    for backend in BACKENDS:
        args = config(tmp_path, backend, generation_kwargs={"do_sample": False})
        trainer = make_trainer(tiny_model_path, knapsack_dataset, args)
        prompts = prompt_ids(trainer, knapsack_dataset)
        results[backend] = generate(trainer, prompts)
        if backend == "static_compiled":
            model = trainer.model
            assert hasattr(model, "_compiled_call"), "the decoding step was not compiled"
            longest = max(len(p) for p in prompts) + LENGTH
            assert model._previous_max_cache_length == -(-longest // 64) * 64
    assert len(results["default"]) == 6 and all(results["default"])
    assert results["continuous"] == results["default"]
    assert results["static_compiled"] == results["default"]


def expected_distributions(model, prompt: list[int], completion: list[int], temperature: float, top_k: int):
    """The sampling distribution of each completion token: the model's next-token logits at its
    prefix, divided by the temperature, restricted to the top k, normalised."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(completion)].float()
    logits = logits / temperature
    kth = logits.topk(top_k, dim=-1).values[:, -1:]
    return torch.softmax(logits.masked_fill(logits < kth, -math.inf), dim=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_sampled_token_comes_from_the_models_distribution(
    tiny_model_path, knapsack_dataset, tmp_path, monkeypatch, backend
):
    temperature, top_k = 0.7, 10
    args = config(tmp_path, backend, temperature=temperature, top_k=top_k)
    trainer = make_trainer(tiny_model_path, knapsack_dataset, args)
    draws: list[tuple[torch.Tensor, torch.Tensor]] = []
    multinomial = torch.multinomial

    def recording(probs, num_samples, *a, **k):
        out = multinomial(probs, num_samples, *a, **k)
        draws.append((probs.detach().float().cpu().reshape(-1, probs.size(-1)), out.detach().cpu().reshape(-1)))
        return out

    monkeypatch.setattr(torch, "multinomial", recording)
    prompts = prompt_ids(trainer, knapsack_dataset)
    completions = generate(trainer, prompts)
    monkeypatch.undo()
    rows = torch.cat([p for p, _ in draws])
    tokens = torch.cat([t for _, t in draws])
    assert sum(len(c) for c in completions) >= 12 and rows.size(0) >= sum(len(c) for c in completions)
    for prompt, completion in zip(prompts, completions, strict=True):
        expected = expected_distributions(trainer.model, prompt, completion, temperature, top_k)
        for t, token in enumerate(completion):
            # some draw of this very token was made from exactly this prefix's distribution
            candidates = rows[tokens == token]
            assert candidates.numel() > 0, (backend, t)
            distance = (candidates - expected[t]).abs().max(dim=-1).values.min().item()
            assert distance < 1e-5, (backend, t, distance)


# ---- the model is left as training needs it ---------------------------------------------------
def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def test_continuous_batching_leaves_mixed_precision_weights_alone(tiny_model_path, knapsack_dataset, tmp_path):
    # bf16 autocast on a CPU: TRL casts the model to bf16 for continuous batching and keeps it so.
    trl_args = GRPOConfig(output_dir=str(tmp_path / "trl"), use_cpu=True, bf16=True, report_to="none",
                          num_generations=G, per_device_train_batch_size=2 * G, max_completion_length=4,
                          use_transformers_continuous_batching=True,
                          transformers_continuous_batching_config={"num_blocks": 32, "max_batch_tokens": 256})
    theirs = make_trainer(tiny_model_path, knapsack_dataset, trl_args, trainer_cls=GRPOTrainer)
    generate(theirs, prompt_ids(theirs, knapsack_dataset, count=2))
    assert {p.dtype for p in theirs.model.parameters()} == {torch.bfloat16}

    ours = make_trainer(tiny_model_path, knapsack_dataset, config(tmp_path, "continuous", bf16=True,
                                                                  max_completion_length=4))
    before = snapshot(ours.model)
    generate(ours, prompt_ids(ours, knapsack_dataset, count=2))
    after = snapshot(ours.model)
    assert before.keys() == after.keys()
    for name in before:
        assert after[name].dtype == before[name].dtype == torch.float32, name
        assert torch.equal(after[name], before[name]), name
    rotary = {name: b for name, b in ours.model.named_buffers() if b.is_floating_point()}
    assert rotary and all(b.dtype == torch.float32 for b in rotary.values())
    # Training under accelerate's bf16 autocast: its forward wrapper would cast the paged cache
    # in the outputs to fp32 and fail (TRL's own trainer does, here); ours generates without it.
    ours.train()
    assert ours.state.global_step == 1
    assert all(math.isfinite(row["loss"]) for row in ours.state.log_history if "loss" in row)
    assert {p.dtype for p in ours.model.parameters()} == {torch.float32}
    assert "forward" in ours.model.__dict__  # the mixed-precision wrapper is back in place


def test_keep_training_dtype_restores_the_same_tensors():
    model = torch.nn.Linear(3, 2)
    model.register_buffer("scale", torch.tensor([0.1, 0.2]))
    weight = model.weight.data
    with keep_training_dtype(model):
        model.to(torch.bfloat16)
        assert model.weight.dtype == torch.bfloat16 and model.scale.dtype == torch.bfloat16
    assert model.weight.data.data_ptr() == weight.data_ptr() and model.weight.dtype == torch.float32
    assert model.scale.dtype == torch.float32 and torch.equal(model.scale, torch.tensor([0.1, 0.2]))


class RecordGeneration(DMPOTrainer):
    """Keeps each generation batch and a fresh forward pass's log-probs of its tokens."""

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad():
            fresh = self._get_per_token_logps_and_entropies(self.model, ids, mask, output["completion_ids"].size(1))[0]
        self.recorded = [*getattr(self, "recorded", []), (output, fresh)]
        return output


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_training_step_on_each_backend_recomputes_log_probs_as_before(
    tiny_model_path, knapsack_dataset, tmp_path, backend
):
    # steps_per_generation 2 > accumulation 1: TRL computes old log-probs at sampling time.
    args = config(tmp_path, backend, max_steps=2, steps_per_generation=2)
    trainer = make_trainer(tiny_model_path, knapsack_dataset, args, trainer_cls=RecordGeneration)
    before = snapshot(trainer.model)
    trainer.train()
    assert trainer.state.global_step == 2
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    after = snapshot(trainer.model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert len(trainer.recorded) == 1
    output, fresh = trainer.recorded[0]
    mask = output["completion_mask"].bool()
    assert mask.sum() > 0
    torch.testing.assert_close(output["old_per_token_logps"][mask], fresh[mask], rtol=0, atol=1e-6)


def test_the_static_compiled_backend_trains_exactly_as_the_default(tiny_model_path, knapsack_dataset, tmp_path):
    # Same seed, same random draws, same kernels on a CPU: the same samples and the same update.
    final = {}
    for backend in ("default", "static_compiled"):
        trainer = make_trainer(tiny_model_path, knapsack_dataset, config(tmp_path, backend, max_steps=2))
        trainer.train()
        final[backend] = snapshot(trainer.model)
    for name, value in final["default"].items():
        assert torch.equal(final["static_compiled"][name], value), name
