"""Pair objectives against TRL 1.16 as a numerical oracle: same models, same batch, same loss
and policy gradients.

``dpo``, ``ipo``, ``hinge``, ``rpo`` and ``ld_dpo`` are compared with ``DPOTrainer.compute_loss``
(which runs policy and reference through TRL's fused LM head); ``simpo`` with
``trl.experimental.cpo.CPOTrainer.get_batch_loss_metrics`` (``loss_type="simpo"``,
``cpo_alpha=0``). Our side computes per-token log-probs from the same two models with a plain
forward and ``log_softmax``, builds a :class:`PairBatch`, and calls the registered objective.
Everything is built in memory: a character-level tokenizer and two tiny random Llamas.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from trl import DPOConfig, DPOTrainer  # noqa: E402
from trl.experimental.cpo import CPOConfig, CPOTrainer  # noqa: E402

from dmpo.objectives import PairBatch, get  # noqa: E402

pytestmark = [pytest.mark.trl, pytest.mark.filterwarnings("ignore::FutureWarning")]

CHARS = "abcdefghijklmnopqrstuvwxyz "
# Chosen longer than rejected in some pairs, shorter in others, so LD-DPO has tails on both sides.
DATA = {
    "prompt": ["ab", "cde", "f", "gh"],
    "chosen": ["xyz", "q", "rstu v", "a"],
    "rejected": ["k", "lmno", "p", "ww"],
}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def tokenizer():
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(CHARS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def dataset():
    datasets.disable_progress_bars()
    return datasets.Dataset.from_dict(DATA)


def tiny_llama(seed: int) -> transformers.LlamaForCausalLM:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        # Larger than the default 0.02, so that log-probs (and the losses) are far from uniform.
        initializer_range=0.5,
    )
    return transformers.LlamaForCausalLM(config).float()


def token_logps(model, input_ids, attention_mask, targets):
    """log π(target_t | prefix) for the next-token targets ``input_ids[:, 1:]`` (or labels)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)


def policy_gradients(model) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def assert_same_gradients(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert ours.keys() == theirs.keys() and ours
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], **TOLERANCE, msg=name)
    assert max(g.abs().max().item() for g in theirs.values()) > 1e-3  # a gradient worth comparing


DPO_CASES = {
    "dpo": ({"beta": 0.5}, {"beta": 0.5, "loss_type": ["sigmoid"]}),
    "ipo": ({"beta": 0.5}, {"beta": 0.5, "loss_type": ["ipo"]}),
    "hinge": ({"beta": 0.5}, {"beta": 0.5, "loss_type": ["hinge"]}),
    "rpo": (
        {"beta": 0.5, "eta": 0.7, "nll_form": "token_mean"},
        {"beta": 0.5, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.7]},
    ),
    "ld_dpo": (
        {"beta": 0.5, "alpha": 0.3},
        {"beta": 0.5, "loss_type": ["sigmoid"], "ld_alpha": 0.3},
    ),
}


@pytest.mark.parametrize("name", sorted(DPO_CASES))
def test_matches_trl_dpo_trainer(name, tokenizer, dataset, tmp_path):
    ours_params, trl_params = DPO_CASES[name]
    policy, reference = tiny_llama(0), tiny_llama(1)
    args = DPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        max_length=None,
        per_device_train_batch_size=len(dataset),
        **trl_params,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(dataset))])
    trl_loss = trainer.compute_loss(trainer.model, inputs)
    trl_loss.backward()
    trl_grads = policy_gradients(policy)
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}

    # The collator stacks [chosen; rejected] rows; completion_mask[:, 1:] marks the scored targets.
    ids, attention = inputs["input_ids"], inputs["attention_mask"]
    mask = inputs["completion_mask"][:, 1:].float()
    logps = token_logps(policy, ids, attention, ids[:, 1:])
    with torch.no_grad():
        ref_logps = token_logps(reference, ids, attention, ids[:, 1:])
    n = len(dataset)
    batch = PairBatch(
        chosen_logps=logps[:n],
        chosen_mask=mask[:n],
        rejected_logps=logps[n:],
        rejected_mask=mask[n:],
        ref_chosen_logps=ref_logps[:n],
        ref_rejected_logps=ref_logps[n:],
    )
    out = get(name)(batch, **ours_params)
    out.loss.backward()

    torch.testing.assert_close(out.loss, trl_loss, **TOLERANCE)
    assert_same_gradients(policy_gradients(policy), trl_grads)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert out.metrics[key] == pytest.approx(trl_metrics[key], rel=1e-5, abs=1e-5), key


def test_simpo_matches_trl_cpo_trainer(tokenizer, dataset, tmp_path):
    beta, gamma_beta_ratio = 2.0, 0.25
    policy = tiny_llama(0)
    args = CPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        max_length=64,
        per_device_train_batch_size=len(dataset),
        loss_type="simpo",
        cpo_alpha=0.0,
        beta=beta,
        simpo_gamma=gamma_beta_ratio * beta,
    )
    trainer = CPOTrainer(model=policy, args=args, train_dataset=dataset, processing_class=tokenizer)
    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(dataset))])
    trl_loss, trl_metrics = trainer.get_batch_loss_metrics(trainer.model, inputs)
    trl_loss.backward()
    trl_grads = policy_gradients(policy)

    sides = {}
    for side in ("chosen", "rejected"):
        ids, labels = inputs[f"{side}_input_ids"], inputs[f"{side}_labels"]
        targets = labels[:, 1:]
        logps = token_logps(policy, ids, inputs[f"{side}_attention_mask"], targets)
        sides[side] = (logps, (targets != -100).float())
    batch = PairBatch(*sides["chosen"], *sides["rejected"])
    out = get("simpo")(batch, beta=beta, gamma_beta_ratio=gamma_beta_ratio)
    out.loss.backward()

    torch.testing.assert_close(out.loss, trl_loss, **TOLERANCE)
    assert_same_gradients(policy_gradients(policy), trl_grads)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert out.metrics[key] == pytest.approx(trl_metrics[key], rel=1e-5, abs=1e-5), key
