"""Evaluation metrics on hand-made completions with known answers, and sampling with a model."""

from __future__ import annotations

import pytest

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.evaluation import evaluate_completions, heldout_instances
from dmpo.evaluation.sampling import headline, pass_k_for
from dmpo.npbench.splits import EVAL_SEED_START, SFT_SEED_START, TRAIN_SEED_START

KNAPSACK = npbench.get_task("knapsack")


def knapsack_instance() -> npbench.Instance:
    """Capacity 10; items (weight, value): 0 (5, 10), 1 (5, 10), 2 (5, 10), 3 (10, 5).
    Optimum 20, reached by three different pairs; [3] is valid with value 5 (QR 0.25)."""
    question = {"capacity": 10, "items": {"0": {"weight": 5, "value": 10}, "1": {"weight": 5, "value": 10},
                                          "2": {"weight": 5, "value": 10}, "3": {"weight": 10, "value": 5}}}
    return npbench.Instance("knapsack", "tiny", None, question, 20.0, True, "[0, 1]", "hand-0")


def test_metrics_on_known_completions():
    inst = knapsack_instance()
    completions = [
        "Answer: [0, 1]",  # optimal
        "Answer: [1, 0]",  # the same answer written differently: one distinct answer
        "Answer: [1, 2]",  # another optimum
        "Answer: [3]",  # valid, QR 0.25
        "Answer: [0, 1, 2]",  # over capacity: invalid
        "no answer at all",  # not well formed
    ]
    result = evaluate_completions([inst], [completions])
    (item,) = result.items
    assert item.k == 6
    assert item.valid_rate == pytest.approx(4 / 6)
    assert item.success is True
    assert item.qr_mean == pytest.approx((1 + 1 + 1 + 0.25) / 6)
    assert item.qr_best == 1.0
    assert item.distinct_valid == 3  # {0,1}, {1,2}, {3}
    assert item.distinct_optimal == 2  # {0,1}, {1,2}
    assert item.num_optimal == 3
    assert item.pass_at(1) == pytest.approx(0.5)
    assert item.pass_at(6) == 1.0

    row = result.summary["tasks"]["knapsack"]
    assert row["sr"] == pytest.approx(100 * 4 / 6)
    assert row["qr"] == pytest.approx(100 * 3.25 / 6)
    assert row["qr_best"] == pytest.approx(100.0)
    assert row["pass@1"] == pytest.approx(50.0)
    assert row["pass@6"] == pytest.approx(100.0)
    assert result.headline["distinct_valid"] == 3.0
    # QR@1 is the mean single-sample QR; QR@6 the best of all six.
    assert result.qr_curve[0] == pytest.approx(100 * 3.25 / 6)
    assert result.qr_curve[-1] == pytest.approx(100.0)
    assert result.completions is None


def test_two_items_average_and_zero_scores():
    good = knapsack_instance()
    bad = npbench.Instance("knapsack", "tiny", None, good.question, 20.0, True, "[0, 1]", "hand-1")
    result = evaluate_completions([good, bad], [["Answer: [0, 2]", "Answer: [3]"], ["x", "Answer: [9]"]],
                                  keep_completions=True)
    row = result.summary["tasks"]["knapsack"]
    assert row["n"] == 2
    assert row["sr_best"] == pytest.approx(50.0)  # one item has a valid sample
    assert row["qr_best"] == pytest.approx(50.0)  # (1.0 + 0.0) / 2
    assert row["qr"] == pytest.approx(100 * (1.25 / 2 + 0) / 2)
    assert row["distinct_valid"] == pytest.approx(1.0)  # (2 + 0) / 2
    assert row["distinct_optimal"] == pytest.approx(0.5)
    assert row["pass@1"] == pytest.approx(25.0)  # item 0: 1/2, item 1: 0
    assert result.completions == [["Answer: [0, 2]", "Answer: [3]"], ["x", "Answer: [9]"]]
    data = result.to_dict()
    assert data["num_items"] == 2 and data["k"] == 2 and len(data["items"]) == 2
    assert data["completions"][1] == {"id": "hand-1", "completions": ["x", "Answer: [9]"]}


def test_headline_weights_tasks_equally_and_includes_tasks_outside_categories():
    summary = {"tasks": {"knapsack": {"n": 10, "qr": 80.0, "pass@1": 10.0},
                         "vertex_cover": {"n": 1, "qr": 20.0, "pass@1": 30.0}}}
    assert headline(summary) == {"qr": 50.0, "pass@1": 20.0}


def test_clear_errors():
    inst = knapsack_instance()
    with pytest.raises(DmpoError, match="empty"):
        evaluate_completions([], [])
    with pytest.raises(DmpoError, match="same positive number"):
        evaluate_completions([inst, inst], [["a"], ["a", "b"]])
    with pytest.raises(DmpoError, match="2 items but 1"):
        evaluate_completions([inst], [["a"], ["b"]])
    with pytest.raises(DmpoError, match="at least 1 instance"):
        heldout_instances(["knapsack"], count=0)
    with pytest.raises(DmpoError, match="unknown task"):
        heldout_instances(["no_such_task"], count=1)


def test_heldout_seeds_are_disjoint_from_training_seeds():
    assert SFT_SEED_START < TRAIN_SEED_START < EVAL_SEED_START
    instances = heldout_instances(["knapsack"], count=3, progress=False)
    assert [i.seed for i in instances] == [EVAL_SEED_START, EVAL_SEED_START + 1, EVAL_SEED_START + 2]
    assert all(i.difficulty == "tiny" and i.proved for i in instances)
    assert pass_k_for(1) == (1,) and pass_k_for(8) == (1, 8)


class ScriptedModel:
    """A stand-in for a causal LM: ``generate`` appends a scripted answer's tokens to each row."""

    def __init__(self, tokenizer, answers):
        import torch

        self.tokenizer = tokenizer
        self.answers = answers
        self.calls = []
        self.training = False
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        yield self.weight

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        import torch

        self.calls.append(dict(rows=input_ids.shape[0], **kwargs))
        rows = []
        for i in range(input_ids.shape[0]):
            text = self.answers[(len(self.calls) - 1, i)]
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            rows.append(ids[:max_new_tokens])
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        new = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new], dim=1)


def test_sample_completions_batches_prompt_major_and_decodes():
    pytest.importorskip("transformers")
    from dmpo.evaluation.sampling import evaluate_model
    from dmpo.models import build_tokenizer

    tokenizer = build_tokenizer()
    inst = knapsack_instance()
    # 2 prompts × k=3 = 6 rows in batches of 4: call 0 has rows 0-3, call 1 rows 4-5.
    answers = {(0, 0): "Answer: [0, 1]", (0, 1): "Answer: [3]", (0, 2): "nothing",
               (0, 3): "Answer: [1, 2]", (1, 0): "Answer: [0, 2]", (1, 1): "Answer: [0, 1, 2]"}
    model = ScriptedModel(tokenizer, answers)
    result = evaluate_model((model, tokenizer), [inst, inst], k=3, batch_size=4, temperature=0.7,
                            keep_completions=True, progress=False)
    assert [c["rows"] for c in model.calls] == [4, 2]
    assert model.calls[0]["do_sample"] is True and model.calls[0]["temperature"] == 0.7
    assert result.completions == [["Answer: [0, 1]", "Answer: [3]", "nothing"],
                                                 ["Answer: [1, 2]", "Answer: [0, 2]", "Answer: [0, 1, 2]"]]
    first, second = result.items
    assert (first.qr_best, first.distinct_valid, first.num_optimal) == (1.0, 2, 1)
    assert (second.qr_best, second.distinct_valid, second.distinct_optimal) == (1.0, 2, 2)
    greedy = ScriptedModel(tokenizer, answers)
    evaluate_model((greedy, tokenizer), [inst, inst], k=3, batch_size=4, temperature=0, progress=False)
    assert greedy.calls[0]["do_sample"] is False


def test_sampling_a_real_tiny_model_is_reproducible(tmp_path):
    pytest.importorskip("transformers")
    from dmpo.evaluation.sampling import sample_completions
    from dmpo.models import build_tiny_model, load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(build_tiny_model(tmp_path, hidden_size=32, num_layers=1, heads=2))
    prompts = ["knapsack\ncap 3\n0:1,2\n", "vertex_cover\nn 2\nedges 0-1\n"]
    a = sample_completions(model, tokenizer, prompts, k=3, max_new_tokens=5, batch_size=4, seed=1, progress=False)
    b = sample_completions(model, tokenizer, prompts, k=3, max_new_tokens=5, batch_size=2, seed=1, progress=False)
    c = sample_completions(model, tokenizer, prompts, k=3, max_new_tokens=5, batch_size=4, seed=2, progress=False)
    assert [len(x) for x in a] == [3, 3]
    assert all(len(text) <= 5 for row in a for text in row)  # one character per token
    assert a == sample_completions(model, tokenizer, prompts, k=3, max_new_tokens=5, batch_size=4, seed=1,
                                   progress=False)
    assert a != c
    assert len(b) == 2
    with pytest.raises(DmpoError, match="k"):
        sample_completions(model, tokenizer, prompts, k=0)
