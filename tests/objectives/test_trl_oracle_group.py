"""Peer oracle: our GRPO family (grpo, bnpo, dapo, dr_grpo, gspo, luspo), cispo, sapo, vespo, and the
surrogate's options (importance_sampling_level, delta, top_entropy_quantile, entropy_coef,
off_policy_mask_threshold), also as DMPO's base, against TRL 1.16 `GRPOTrainer._compute_loss`.

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


def _fill_logps(trainer: GRPOTrainer, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Current per-token log-probs and entropies (with grad) via TRL's own path; fills old/ref
    from the log-probs."""
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, input_ids, attention_mask, C, compute_entropy=True
    )
    gen = torch.Generator().manual_seed(2)
    inputs["old_per_token_logps"] = logps.detach() + 0.3 * torch.randn(N, C, generator=gen)
    if "ref_per_token_logps" in inputs:
        inputs["ref_per_token_logps"] = logps.detach() + 0.2 * torch.randn(N, C, generator=gen)
    return logps, entropies


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


SEQ = {"importance_sampling_level": "sequence"}
KL = ({"beta_kl": 0.05, "kl_bias_correction": True}, {"beta": 0.05})  # TRL corrects by default
# TRL's losses beyond the GRPO family, each as TRL defaults it (epsilon_high = epsilon = 0.2 for
# cispo and luspo, luspo at token level) and with other values.
CASES += [
    ("luspo", {"epsilon_low": 0.2, "epsilon_high": 0.2, "importance_sampling_level": "token"},
     {"loss_type": "luspo"}),
    ("luspo", {"epsilon_low": 0.02, "epsilon_high": 0.03},
     {"loss_type": "luspo", "epsilon": 0.02, "epsilon_high": 0.03, **SEQ}),
    ("luspo", {"epsilon_low": 0.05, "epsilon_high": 0.05, **KL[0]},
     {"loss_type": "luspo", "epsilon": 0.05, **SEQ, **KL[1]}),
    ("cispo", {"epsilon_high": 0.2}, {"loss_type": "cispo"}),
    ("cispo", {"epsilon_high": 1.2}, {"loss_type": "cispo", "epsilon_high": 1.2}),
    ("cispo", {"epsilon_high": 1.05, **SEQ}, {"loss_type": "cispo", "epsilon_high": 1.05, **SEQ}),
    ("cispo", {"epsilon_high": 5.0, **KL[0]}, {"loss_type": "cispo", "epsilon_high": 5.0, **KL[1]}),
    ("sapo", {}, {"loss_type": "sapo"}),
    ("sapo", {"sapo_temperature_pos": 2.5, "sapo_temperature_neg": 0.5, **SEQ},
     {"loss_type": "sapo", "sapo_temperature_pos": 2.5, "sapo_temperature_neg": 0.5, **SEQ}),
    ("sapo", KL[0], {"loss_type": "sapo", **KL[1]}),
    ("vespo", {}, {"loss_type": "vespo"}),
    ("vespo", {"vespo_k_pos": 1.5, "vespo_lambda_pos": 2.0, "vespo_k_neg": 4.0,
               "vespo_lambda_neg": 1.0, **KL[0]},
     {"loss_type": "vespo", "vespo_k_pos": 1.5, "vespo_lambda_pos": 2.0, "vespo_k_neg": 4.0,
      "vespo_lambda_neg": 1.0, **KL[1]}),
    ("vespo", {**SEQ, **KL[0]}, {"loss_type": "vespo", **SEQ, **KL[1]}),
]  # fmt: skip
# The surrogate's options, on several losses.
CASES += [
    ("grpo", {"delta": 1.1}, {"loss_type": "grpo", "delta": 1.1}),
    ("dapo", {"delta": 1.15, "epsilon_high": 0.28},
     {"loss_type": "dapo", "delta": 1.15, "epsilon_high": 0.28}),
    ("luspo", {"delta": 1.02, "epsilon_low": 0.01, "epsilon_high": 0.01},
     {"loss_type": "luspo", "delta": 1.02, "epsilon": 0.01, **SEQ}),
    ("bnpo", SEQ, {"loss_type": "bnpo", **SEQ}),
    ("dapo", {"epsilon_high": 0.2, **SEQ}, {"loss_type": "dapo", **SEQ}),
    ("dr_grpo", {"max_completion_length": MAX_COMPLETION_LENGTH, **SEQ, **KL[0]},
     {"loss_type": "dr_grpo", **SEQ, **KL[1]}),
    ("grpo", {"top_entropy_quantile": 0.3}, {"loss_type": "grpo", "top_entropy_quantile": 0.3}),
    ("dapo", {"top_entropy_quantile": 0.5, **KL[0]},
     {"loss_type": "dapo", "epsilon_high": 0.28, "top_entropy_quantile": 0.5, **KL[1]}),
    ("cispo", {"epsilon_high": 1.2, "top_entropy_quantile": 0.0},
     {"loss_type": "cispo", "epsilon_high": 1.2, "top_entropy_quantile": 0.0}),
    ("sapo", {"top_entropy_quantile": 0.4}, {"loss_type": "sapo", "top_entropy_quantile": 0.4}),
    ("vespo", {"top_entropy_quantile": 0.6}, {"loss_type": "vespo", "top_entropy_quantile": 0.6}),
    ("grpo", {"entropy_coef": 0.3}, {"loss_type": "grpo", "entropy_coef": 0.3}),
    ("dr_grpo", {"max_completion_length": MAX_COMPLETION_LENGTH, "entropy_coef": -0.2},
     {"loss_type": "dr_grpo", "entropy_coef": -0.2}),
    ("dapo", {"entropy_coef": 0.1, "top_entropy_quantile": 0.5, "epsilon_high": 0.28},
     {"loss_type": "dapo", "entropy_coef": 0.1, "top_entropy_quantile": 0.5, "epsilon_high": 0.28}),
    ("vespo", {"entropy_coef": 0.2}, {"loss_type": "vespo", "entropy_coef": 0.2}),
    ("grpo", {"off_policy_mask_threshold": 0.0}, {"loss_type": "grpo", "off_policy_mask_threshold": 0.0}),
    ("dapo", {"off_policy_mask_threshold": 0.05, "epsilon_high": 0.28, **KL[0]},
     {"loss_type": "dapo", "off_policy_mask_threshold": 0.05, "epsilon_high": 0.28, **KL[1]}),
    ("sapo", {"off_policy_mask_threshold": -0.02, **SEQ},
     {"loss_type": "sapo", "off_policy_mask_threshold": -0.02, **SEQ}),
    ("gspo", {"epsilon_low": 0.02, "epsilon_high": 0.03, "delta": 1.05, "top_entropy_quantile": 0.5,
              "entropy_coef": 0.1, "off_policy_mask_threshold": 0.0},
     {"loss_type": "grpo", "epsilon": 0.02, "epsilon_high": 0.03, "delta": 1.05,
      "top_entropy_quantile": 0.5, "entropy_coef": 0.1, "off_policy_mask_threshold": 0.0, **SEQ}),
]  # fmt: skip
# DMPO with λ = 0 is its base, whichever it is, options included.
CASES += [
    ("dmpo", {"lam": 0.0, "base": "cispo", "epsilon_high": 1.2}, {"loss_type": "cispo", "epsilon_high": 1.2}),
    ("dmpo", {"lam": 0.0, "base": "sapo"}, {"loss_type": "sapo"}),
    ("dmpo", {"lam": 0.0, "base": "vespo", **KL[0]}, {"loss_type": "vespo", **KL[1]}),
    ("dmpo", {"lam": 0.0, "base": "luspo", "epsilon_low": 0.02, "epsilon_high": 0.03},
     {"loss_type": "luspo", "epsilon": 0.02, "epsilon_high": 0.03, **SEQ}),
    ("dmpo", {"lam": 0.0, "base": "grpo", "delta": 1.1, "top_entropy_quantile": 0.5,
              "entropy_coef": 0.1, "off_policy_mask_threshold": 0.0},
     {"loss_type": "grpo", "delta": 1.1, "top_entropy_quantile": 0.5, "entropy_coef": 0.1,
      "off_policy_mask_threshold": 0.0}),
]  # fmt: skip
OPTIONS = ("delta", "top_entropy_quantile", "entropy_coef", "off_policy_mask_threshold")


def _case_id(case: tuple) -> str:
    name, params, config = case
    extra = "-".join(f"{k}={v}" for k, v in config.items() if k != "loss_type")
    return f"{name}-{config['loss_type']}" + (f"-{extra}" if extra else "") + (
        f"-base={params['base']}" if "base" in params else ""
    )


@pytest.mark.parametrize(("name", "params", "config"), CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("on_policy", [False, True], ids=["off_policy", "on_policy"])
def test_matches_trl_compute_loss(name: str, params: dict, config: dict, on_policy: bool) -> None:
    trainer = _trainer(**config)
    model = trainer.model
    inputs = _inputs(with_ref="beta" in config)

    logps, entropies = _fill_logps(trainer, inputs)
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
        entropies=entropies,
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
    loss_type = config["loss_type"]
    metrics = {
        "cispo": ["cispo_clip_ratio"],
        "vespo": ["vespo/phi_seq_mean"],
        "sapo": [],
    }.get(loss_type, ["clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"])
    if "beta" in config:
        metrics.append("kl")
    if "entropy_coef" in config:
        metrics.append("policy_loss")
    assert metrics == [m for m in metrics if m in ours.metrics and m in logged]
    for metric in metrics:
        assert ours.metrics[metric] == pytest.approx(logged[metric], rel=1e-5, abs=1e-6), metric
    if not on_policy and loss_type not in ("sapo", "vespo") and name != "gspo":
        clipped = logged.get("clip_ratio/region_mean", logged.get("cispo_clip_ratio"))
        if config.get("epsilon_high") != 5.0 and config.get("epsilon", 0.2) >= 0.02:
            assert clipped > 0, "the test exercises clipping"
    options = {k: v for k, v in params.items() if k in OPTIONS}
    if options and not on_policy:  # each option changes the loss here
        plain = objectives.get(name)(batch, **{k: v for k, v in params.items() if k not in OPTIONS})
        assert abs(plain.loss.item() - ours.loss.item()) > 1e-6, options
