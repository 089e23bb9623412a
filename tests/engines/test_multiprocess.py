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
