"""``dmpo train``: RL with any group objective (TRL engine) on NP-Bench, math or reasoning-gym tasks.

    dmpo train --objective dmpo --max-steps 2 --output-dir runs/x     # offline, built-in model
    dmpo train --config train.yaml --learning-rate 1e-4               # flags override the file
    dmpo train --tasks math:train.jsonl,rg:countdown --model M --prompt-style nl --chat

Every flag is a field of :class:`dmpo.pipeline.settings.TrainSettings` (and a YAML key).
"""

from __future__ import annotations

import argparse

from dmpo.cli.options import add_settings_arguments, settings_from_args
from dmpo.pipeline.settings import TrainSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train", help="RL with a group objective (DMPO, GRPO, ...) on NP-Bench, math or reasoning-gym",
        description="Train with any group objective through TRL on NP-Bench prompts, math problems "
                    "(math:FILE, math:synthetic) or reasoning-gym tasks (rg:NAME); see docs/sources.md. "
                    "Every option can also be given in a YAML file (--config, same names); flags "
                    "override the file.")
    p.add_argument("--config", default=None, help="YAML file with any of these options (flags win)")
    add_settings_arguments(p, TrainSettings)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def train_settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """TrainSettings from defaults ← the YAML file ← the flags given."""
    return settings_from_args(TrainSettings, args, config=args.config)


def cmd_train(args: argparse.Namespace) -> int:
    from dmpo.evaluation.report import training_summary
    from dmpo.pipeline.train import train

    settings = train_settings_from_args(args)
    result = train(settings, progress=not args.no_progress)
    summary = training_summary(result.history)
    print(f"\n{'metric':36}{'first steps':>14}{'last steps':>14}")
    for key in dict.fromkeys(k.rsplit(" (", 1)[0] for k in summary):
        print(f"{key:36}{summary[f'{key} (first)']:>14.4f}{summary[f'{key} (last)']:>14.4f}")
    steps = max((int(r["step"]) for r in result.history if "step" in r), default=0)
    print(f"\n{settings.objective}: {steps} steps in {result.seconds:.0f} s; model and history.json in "
          f"{result.model_dir}")
    return 0
