"""``python -m dmpo.engines.verl [HYDRA OVERRIDES]``: verl's ``main_ppo`` with dmpo's defaults.

The arguments are verl's Hydra overrides (``data.train_files=...``, ``trainer.n_gpus_per_node=8``);
dmpo adds, for every key the user did not set:

    algorithm.adv_estimator=dmpo                          (GRPO + the folded DM term)
    actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean   (the paper's GRPO average)
    actor_rollout_ref.actor.ppo_mini_batch_size=${data.train_batch_size}
    actor_rollout_ref.actor.ppo_epochs=1                  (one exact update per batch)
    actor_rollout_ref.rollout.n=8                          (G = 8)
    actor_rollout_ref.actor.optim.lr=1e-6
    reward.custom_reward_function.path=<dmpo/engines/verl/reward.py>, name=compute_score

and ``+algorithm.dmpo.loss_agg_mode`` equal to the actor's, which the fold needs. DMPO's own
parameters may be written ``algorithm.dmpo.lam=2.0`` (the ``+`` Hydra needs for a new key is
added). Everything else is verl's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dmpo.errors import DmpoError

__all__ = ["DEFAULTS", "build_overrides", "main"]

_ACTOR = "actor_rollout_ref.actor"
DEFAULTS: dict[str, str] = {
    "algorithm.adv_estimator": "dmpo",
    f"{_ACTOR}.loss_agg_mode": "seq-mean-token-mean",
    f"{_ACTOR}.ppo_mini_batch_size": "${data.train_batch_size}",
    f"{_ACTOR}.ppo_epochs": "1",
    "actor_rollout_ref.rollout.n": "8",
    f"{_ACTOR}.optim.lr": "1e-6",
    "reward.custom_reward_function.path": str(Path(__file__).with_name("reward.py")),
    "reward.custom_reward_function.name": "compute_score",
}
_DMPO = "algorithm.dmpo."


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def build_overrides(argv: list[str]) -> list[str]:
    """The user's overrides (``algorithm.dmpo.*`` given its ``+``) followed by dmpo's defaults
    for the keys the user did not set (module docstring)."""
    out = []
    for arg in argv:
        if "=" not in arg and not arg.startswith("-"):
            raise DmpoError(f"expected Hydra overrides KEY=VALUE, got {arg!r}")
        if arg.startswith(_DMPO):
            arg = "+" + arg
        out.append(arg)
    given = {_key(a): a.split("=", 1)[1] for a in out if "=" in a}
    for key, value in DEFAULTS.items():
        if key not in given:
            out.append(f"{key}={value}")
            given[key] = value
    if f"{_DMPO}loss_agg_mode" not in given:
        out.append(f"+{_DMPO}loss_agg_mode={given[f'{_ACTOR}.loss_agg_mode']}")
    elif given[f"{_DMPO}loss_agg_mode"] != given[f"{_ACTOR}.loss_agg_mode"]:
        raise DmpoError(
            f"algorithm.dmpo.loss_agg_mode={given[f'{_DMPO}loss_agg_mode']} differs from "
            f"{_ACTOR}.loss_agg_mode={given[f'{_ACTOR}.loss_agg_mode']}: the DM term's fold "
            "must use the actor's aggregation"
        )
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return
    try:
        overrides = build_overrides(args)
        from verl.trainer import main_ppo
    except DmpoError as exc:
        sys.exit(f"dmpo: error: {exc}")
    except ImportError:
        sys.exit("dmpo: error: verl is not installed (pip install 'dmpo[verl]', or make verl-setup)")
    sys.argv = [sys.argv[0], *overrides]
    main_ppo.main()
