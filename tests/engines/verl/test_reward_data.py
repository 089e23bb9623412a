"""NP-Bench data in verl's parquet layout, the verl reward function, and the launcher's overrides.

The first tests need no verl (they run in the main environment too); the last runs our parquet
rows through verl's own reward-function loader and ``NaiveRewardManager``.
"""

from __future__ import annotations

import json
import time

import pytest

from dmpo import npbench
from dmpo.engines.verl import reward as reward_module
from dmpo.engines.verl.data import save_verl_parquet, verl_rows
from dmpo.engines.verl.launch import build_overrides
from dmpo.engines.verl.reward import compute_score
from dmpo.errors import DmpoError


@pytest.fixture(scope="module")
def instances():
    task = npbench.get_task("knapsack")
    return [task.generate(seed=s, difficulty="tiny") for s in (0, 1)]


def test_rows_have_verl_layout_and_round_trip_the_instance(instances):
    rows = verl_rows(instances, prompt_style="compact")
    row = rows[1]
    assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["data_source"] == "npbench"
    assert row["prompt"] == [{"role": "user", "content": npbench.get_task("knapsack").prompt(
        instances[1], style="compact")}]
    assert row["reward_model"]["style"] == "rule"
    back = npbench.Instance.from_dict(json.loads(row["reward_model"]["ground_truth"]))
    assert (back.id, back.optimum, back.question) == (instances[1].id, instances[1].optimum,
                                                      instances[1].question)
    assert row["extra_info"] == {"split": "train", "index": 1, "id": instances[1].id,
                                 "task": "knapsack", "difficulty": "tiny"}


def test_compute_score_judges_and_a_crash_or_time_out_costs_only_that_completion(
        instances, monkeypatch):
    inst = instances[0]
    truth = inst.to_json()
    best = compute_score("npbench", f"thinking...\nAnswer: {inst.solution}", truth, {})
    assert best == {"score": 1.1, "valid": 1.0, "well_formed": 1.0, "quality_ratio": 1.0, "failed": 0.0}
    junk = compute_score("npbench", "no answer here", truth)
    assert junk["score"] == 0.0 and junk["failed"] == 0.0 and junk["well_formed"] == 0.0

    task = npbench.get_task("knapsack")

    def crash(*args, **kwargs):
        raise RuntimeError("validator bug")

    monkeypatch.setattr(type(task), "evaluate", crash)
    assert compute_score("npbench", "Answer: [0]", truth)["failed"] == 1.0

    def slow(*args, **kwargs):
        time.sleep(2)

    monkeypatch.setattr(type(task), "evaluate", slow)
    monkeypatch.setattr(reward_module, "TIMEOUT_S", 0.2)
    started = time.monotonic()
    out = compute_score("npbench", "Answer: [0]", truth)
    assert out == {"score": 0.0, "valid": 0.0, "well_formed": 0.0, "quality_ratio": 0.0, "failed": 1.0}
    assert time.monotonic() - started < 1.5


def test_a_ground_truth_that_is_no_instance_is_a_clear_error():
    with pytest.raises(DmpoError, match="instance JSON"):
        compute_score("npbench", "Answer: [0]", "not json")
    with pytest.raises(DmpoError, match="instance"):
        compute_score("npbench", "Answer: [0]", None)


def test_the_launcher_adds_dmpo_defaults_and_keeps_user_overrides():
    out = build_overrides(["data.train_files=x.parquet", "algorithm.dmpo.lam=1.0",
                           "actor_rollout_ref.rollout.n=4"])
    assert out[:3] == ["data.train_files=x.parquet", "+algorithm.dmpo.lam=1.0",
                       "actor_rollout_ref.rollout.n=4"]
    assert "algorithm.adv_estimator=dmpo" in out
    assert "actor_rollout_ref.rollout.n=8" not in out
    assert "+algorithm.dmpo.loss_agg_mode=seq-mean-token-mean" in out
    assert any(o.startswith("reward.custom_reward_function.path=") and o.endswith("reward.py")
               for o in out)
    mode = build_overrides(["actor_rollout_ref.actor.loss_agg_mode=token-mean"])
    assert "+algorithm.dmpo.loss_agg_mode=token-mean" in mode
    with pytest.raises(DmpoError, match="differs"):
        build_overrides(["actor_rollout_ref.actor.loss_agg_mode=token-mean",
                         "algorithm.dmpo.loss_agg_mode=seq-mean-token-mean"])
    with pytest.raises(DmpoError, match="KEY=VALUE"):
        build_overrides(["oops"])
    from dmpo.engines.verl.launch import main

    with pytest.raises(SystemExit, match="dmpo: error: expected Hydra overrides"):
        main(["oops"])


def test_our_parquet_rows_through_verl_reward_manager(instances, tmp_path):
    pytest.importorskip("verl")
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    from dmpo.engines.verl.launch import DEFAULTS
    from dmpo.models.tiny import build_tokenizer

    path = save_verl_parquet(instances, tmp_path / "train.parquet")
    rows = pq.read_table(path).to_pylist()
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": DEFAULTS["reward.custom_reward_function.path"], "name": "compute_score"}}})
    score_fn = get_custom_reward_fn(config)
    tokenizer = build_tokenizer()
    manager = NaiveRewardManager(config, tokenizer, score_fn)
    texts = [f"Answer: {instances[0].solution}", "Answer: nonsense"]
    got = []
    for row, text in zip(rows, texts):
        prompt = torch.tensor([tokenizer.encode("p:")])
        response = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
        data = DataProto.from_dict(
            tensors={"prompts": prompt, "responses": response,
                     "attention_mask": torch.ones(1, prompt.shape[1] + response.shape[1],
                                                  dtype=torch.long)},
            non_tensors={k: np.array([row[k]], dtype=object)
                         for k in ("data_source", "reward_model", "extra_info")},
        )
        got.append(manager.loop.run_until_complete(manager.run_single(data)))
    assert got[0]["reward_score"] == 1.1 and got[0]["reward_extra_info"]["valid"] == 1.0
    assert got[1]["reward_score"] == 0.0 and got[1]["reward_extra_info"]["failed"] == 0.0


def test_bench_generate_format_verl_writes_the_parquet(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    from dmpo.cli.main import main

    out = tmp_path / "np.parquet"
    assert main(["bench", "generate", "--tasks", "knapsack", "--difficulty", "tiny", "--count", "2",
                 "--format", "verl", "-o", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["extra_info"]["id"] for r in rows] == ["knapsack-tiny-0", "knapsack-tiny-1"]
    assert rows[0]["prompt"][0]["role"] == "user"
    truth = rows[0]["reward_model"]["ground_truth"]
    assert compute_score("npbench", "Answer: nonsense", truth)["score"] == 0.0
    assert "wrote 2 instances" in capsys.readouterr().out
