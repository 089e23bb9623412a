"""Two CPU processes under ``accelerate launch``: groups stay whole and on one process.

accelerate 1.15 runs ``--cpu`` with several processes only through MPI (``--mpirun_hostfile``);
without it, ``--cpu --num_processes 2`` silently starts one process. The torchrun launcher
(``--multi_gpu``) with no GPU visible and ``use_cpu=True`` starts two gloo processes on the CPU.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("accelerate")
pytestmark = [pytest.mark.trl, pytest.mark.slow]

import torch  # noqa: E402

SCRIPT = Path(__file__).with_name("multiproc_script.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_keep_groups_whole(tiny_model_path, tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        str(SCRIPT), str(tiny_model_path), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["num_processes"] == 2 and r["global_step"] == 2 for r in results)
    # Both processes hold the same parameters (gradients were synchronised), and they moved.
    assert results[0]["param_sum"] == pytest.approx(results[1]["param_sum"], rel=0, abs=1e-6)
    assert results[0]["param_abs_change"] > 0
    # Every micro-batch is one whole group (checked in each process); the two processes trained
    # on different groups and different prompts at every step.
    for step in (0, 1):
        batches = [[b for b in r["micro_batches"] if b["step"] == step] for r in results]
        assert all(len(b) == 2 for b in batches)
        ids = [{g for b in rank for g in b["group_ids"]} for rank in batches]
        prompts = [{tuple(p) for b in rank for p in b["prompts"]} for rank in batches]
        assert ids[0].isdisjoint(ids[1]) and prompts[0].isdisjoint(prompts[1])
        assert all(len(rank) == 2 for rank in ids)
    keys = set(results[0]["logged_keys"])
    assert {"dm_loss", "max_q", "group/zero_std_frac", "npbench/distinct_valid_answers"} <= keys


SPLIT_SCRIPT = Path(__file__).with_name("split_multiproc_script.py")


def _whole_batch_step(model_path, ranks, objective):
    """One SGD step of ``objective`` on every process's rows as one batch of whole groups, in this
    process: the objective's own group form (DMPO's DM term over the whole group), no trainer."""
    from transformers import AutoModelForCausalLM

    from dmpo import objectives

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    logps, masks = [], []
    for rank in ranks:  # each process's rows, padded as that process padded them
        rows = {k: torch.tensor(v) for k, v in rank["rows"].items()}
        ids = torch.cat([rows["prompt_ids"], rows["completion_ids"]], dim=1)
        attention = torch.cat([rows["prompt_mask"], rows["completion_mask"]], dim=1)
        width = rows["completion_ids"].size(1)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, -width - 1 : -1].float()
        logps.append(torch.log_softmax(logits, -1).gather(-1, rows["completion_ids"].unsqueeze(-1)).squeeze(-1))
        masks.append(rows["completion_mask"].float())
    width = max(lp.size(1) for lp in logps)
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.size(1)))  # noqa: E731
    column = lambda key: torch.tensor([x for rank in ranks for x in rank["rows"][key]])  # noqa: E731
    batch = objectives.GroupBatch(
        logps=torch.cat([pad(lp) for lp in logps]), mask=torch.cat([pad(m) for m in masks]),
        rewards=column("rewards").float(), group_ids=column("group_ids"), advantages=column("advantages").float(),
    )  # fmt: skip
    params = ranks[0]["params"]
    loss = objectives.get(objective)(batch, **params).loss
    loss.backward()
    lr = ranks[0]["learning_rate"]
    return {name: (p - lr * p.grad).detach() for name, p in model.named_parameters()}


def test_groups_split_over_processes_and_micro_batches_train_as_whole_groups(tiny_model_path, tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        str(SPLIT_SCRIPT), str(tiny_model_path), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    from transformers import AutoModelForCausalLM

    start = dict(AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).named_parameters())
    for objective in ("grpo", "dmpo"):
        ranks = [json.loads((tmp_path / f"{objective}-rank{r}.json").read_text()) for r in (0, 1)]
        # One group of 8, half of it on each process: it straddles processes and micro-batches.
        ids = [set(rank["rows"]["group_ids"]) for rank in ranks]
        assert ids[0] == ids[1] and len(ids[0]) == 1
        assert all(len(rank["rows"]["rewards"]) == 4 for rank in ranks)
        assert ranks[0]["coefficient_form"] is (objective == "dmpo")
        trained = torch.load(tmp_path / f"{objective}-params.pt")
        reference = _whole_batch_step(tiny_model_path, ranks, objective)
        moved = max((reference[k] - start[k]).abs().max().item() for k in reference)
        assert moved > 1e-4
        for name, value in reference.items():
            torch.testing.assert_close(trained[name], value, rtol=1e-4, atol=1e-5 * moved, msg=name)
        if objective == "dmpo":
            # The DM term carries the step: without it (λ = 0) the reference moves elsewhere.
            assert {"dm_loss", "max_q"} <= set(ranks[0]["logged_keys"])
            ranks[0]["params"] = {**ranks[0]["params"], "lam": 0.0}
            base_only = _whole_batch_step(tiny_model_path, ranks, objective)
            gap = max((base_only[k] - reference[k]).abs().max().item() for k in reference)
            assert gap > 100 * 1e-5 * moved
