"""The example script's launch composes into a valid verl configuration (no GPU needed).

The script runs with ``LAUNCH`` replaced by ``printf`` (it prints its Hydra overrides instead of
training); dmpo's launcher adds its defaults; Hydra composes verl's own ``ppo_trainer`` config
with them, and verl's ``validate_config`` accepts it. The DMPO parameters reach the estimator.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

verl = pytest.importorskip("verl")

from hydra import compose, initialize_config_dir  # noqa: E402

from dmpo.engines.verl.launch import build_overrides  # noqa: E402
from dmpo.engines.verl.plugin import dmpo_params  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "verl_8gpu_7b.sh"


def test_the_example_script_composes_into_a_valid_verl_config(tmp_path):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    for name in ("train.parquet", "val.parquet"):  # present: the script does not generate them
        (tmp_path / name).write_text("")
    printed = subprocess.run(
        ["bash", str(SCRIPT), "trainer.total_epochs=2"], capture_output=True, text=True, check=True,
        env={**os.environ, "DATA_DIR": str(tmp_path), "LAUNCH": "printf %s\\n"}, timeout=60,
    ).stdout.split("\n")
    overrides = build_overrides([line for line in printed if line])
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose("ppo_trainer", overrides=overrides)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg),
                    use_critic=need_critic(cfg))
    assert cfg.algorithm.adv_estimator == "dmpo"
    assert cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.actor.optim.lr == 1e-6
    assert cfg.actor_rollout_ref.actor.ppo_mini_batch_size == cfg.data.train_batch_size
    assert cfg.trainer.total_epochs == 2  # the user's argument wins
    assert cfg.reward.custom_reward_function.path.endswith("dmpo/engines/verl/reward.py")
    params = dmpo_params(cfg.algorithm)
    assert params["lam"] == 2.0 and abs(params["alpha"] - 1 / 15) < 1e-12
    assert params["loss_agg_mode"] == cfg.actor_rollout_ref.actor.loss_agg_mode
