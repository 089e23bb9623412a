"""Peer oracle: our grpo, bnpo, dapo, dr_grpo and gspo against TRL 1.16 `GRPOTrainer._compute_loss`.

A GRPOTrainer is built for real (tiny random Llama, character tokenizer, in-memory dataset,
dummy reward) for each configuration. Both sides get the same inputs dict; ours is fed the
per-token log-probs from the trainer's own `_get_per_token_logps_and_entropies`, so the loss
and every parameter gradient must agree to float32 round-off.

What TRL does besides the surrogate, and how it is neutralised here: `_compute_loss` divides
by `current_gradient_accumulation_steps` (set to 1; it is None before `train()`), and for
`dapo` by `num_items_in_batch / num_processes · accumulation / steps_per_generation`
(1 process, 1 step, so it is `num_items_in_batch`, which we pass as the batch field).
The KL coefficient is set on the built trainer (see `_trainer`). Advantages are computed inline in `_generate_and_score_completions`, not in `_compute_loss`:
both sides receive the same advantages.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

from dmpo import objectives
from dmpo.objectives import GroupBatch

pytestmark = [
    pytest.mark.trl,
    pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning"),
]

VOCAB = 32
N, P, C = 8, 3, 6  # completions (2 groups of 4), prompt tokens, completion tokens
MAX_COMPLETION_LENGTH = 9  # > C, so dr_grpo's constant is not the batch width


def _tokenizer() -> PreTrainedTokenizerFast:
    chars = "abcdefghijklmnopqrstuvwxyz "
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )


def _trainer(*, beta: float = 0.0, **config) -> GRPOTrainer:
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=1,
        )
    )
    args = GRPOConfig(
        output_dir="/tmp/dmpo-trl-oracle",
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=N,
        num_generations=4,
        max_completion_length=MAX_COMPLETION_LENGTH,
        save_strategy="no",
        **config,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=lambda completions, **kwargs: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["ab", "cd"]}),
        processing_class=_tokenizer(),
    )
    trainer.current_gradient_accumulation_steps = 1
    # With beta > 0 in the config, __init__ loads a reference model by hub id (none offline);
    # _compute_loss only reads `self.beta` and the given ref_per_token_logps, so set it after.
    trainer.beta = beta
    return trainer


def _inputs(*, with_ref: bool) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    completion_mask = torch.ones(N, C, dtype=torch.long)
    for row, length in enumerate([6, 4, 1, 5, 6, 3, 2, 6]):
        completion_mask[row, length:] = 0
    inputs = {
        "prompt_ids": torch.randint(3, VOCAB, (N, P), generator=gen),
        "prompt_mask": torch.ones(N, P, dtype=torch.long),
        "completion_ids": torch.randint(3, VOCAB, (N, C), generator=gen),
        "completion_mask": completion_mask,
        "advantages": torch.randn(N, generator=gen),
        # Large enough perturbations that some ratios leave [1 − ε, 1 + ε] on both sides.
        "old_per_token_logps": None,
        "num_items_in_batch": torch.tensor(57.0),  # e.g. tokens of the whole generation batch
    }
    if with_ref:
        inputs["ref_per_token_logps"] = None
    return inputs


def _fill_logps(trainer: GRPOTrainer, inputs: dict) -> torch.Tensor:
    """Current per-token log-probs (with grad) via TRL's own path; fills old/ref from them."""
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, input_ids, attention_mask, C
    )
    gen = torch.Generator().manual_seed(2)
    inputs["old_per_token_logps"] = logps.detach() + 0.3 * torch.randn(N, C, generator=gen)
    if "ref_per_token_logps" in inputs:
        inputs["ref_per_token_logps"] = logps.detach() + 0.2 * torch.randn(N, C, generator=gen)
    return logps


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


CASES = [
    # (our objective, our params, TRL config)
    ("grpo", {}, {"loss_type": "grpo"}),
    (
        "grpo",
        {"beta_kl": 0.05},
        {"loss_type": "grpo", "beta": 0.05, "use_bias_correction_kl": False},
    ),
    (
        "grpo",
        {"beta_kl": 0.05, "kl_bias_correction": True},
        {"loss_type": "grpo", "beta": 0.05, "use_bias_correction_kl": True},
    ),
    ("bnpo", {}, {"loss_type": "bnpo"}),
    (
        "bnpo",
        {"epsilon_low": 0.1, "epsilon_high": 0.3},
        {"loss_type": "bnpo", "epsilon": 0.1, "epsilon_high": 0.3},
    ),
    ("dapo", {}, {"loss_type": "dapo", "epsilon_high": 0.28}),
    (
        "dapo",
        {"beta_kl": 0.1, "kl_bias_correction": True},
        {"loss_type": "dapo", "epsilon_high": 0.28, "beta": 0.1},  # TRL corrects by default
    ),
    ("dr_grpo", {"max_completion_length": MAX_COMPLETION_LENGTH}, {"loss_type": "dr_grpo"}),
    (
        "gspo",
        {"epsilon_low": 0.02, "epsilon_high": 0.03},
        {
            "loss_type": "grpo",
            "importance_sampling_level": "sequence",
            "epsilon": 0.02,
            "epsilon_high": 0.03,
        },
    ),
    (
        "gspo",
        {},
        {
            "loss_type": "grpo",
            "importance_sampling_level": "sequence",
            "epsilon": 3e-4,
            "epsilon_high": 4e-4,
        },
    ),
]


@pytest.mark.parametrize(("name", "params", "config"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
@pytest.mark.parametrize("on_policy", [False, True], ids=["off_policy", "on_policy"])
def test_matches_trl_compute_loss(name: str, params: dict, config: dict, on_policy: bool) -> None:
    trainer = _trainer(**config)
    model = trainer.model
    inputs = _inputs(with_ref="beta" in config)

    logps = _fill_logps(trainer, inputs)
    if on_policy:
        inputs["old_per_token_logps"] = None
    batch = GroupBatch(
        logps=logps,
        mask=inputs["completion_mask"],
        rewards=torch.zeros(N),  # unused: advantages are given
        group_ids=torch.arange(N) // 4,
        old_logps=inputs["old_per_token_logps"],
        ref_logps=inputs.get("ref_per_token_logps"),
        advantages=inputs["advantages"],
        num_items_in_batch=inputs["num_items_in_batch"],
    )
    ours = objectives.get(name)(batch, **params)
    ours.loss.backward()
    our_grads = _grads(model)
    model.zero_grad()

    theirs = trainer._compute_loss(model, inputs)
    theirs.backward()
    their_grads = _grads(model)

    assert ours.loss.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours.loss, theirs, rtol=1e-5, atol=1e-6)
    assert our_grads.keys() == their_grads.keys() and len(our_grads) > 0
    for key in our_grads:
        torch.testing.assert_close(our_grads[key], their_grads[key], rtol=1e-5, atol=1e-6, msg=key)

    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    for metric in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
        assert ours.metrics[metric] == pytest.approx(logged[metric], abs=1e-6), metric
    if "beta" in config:
        assert ours.metrics["kl"] == pytest.approx(logged["kl"], rel=1e-5)
    if not on_policy and name != "gspo":
        assert logged["clip_ratio/region_mean"] > 0  # the test exercises clipping
