"""``dmpo demo``: SFT → GRPO and DMPO from the same checkpoint → evaluation → report."""

from __future__ import annotations

import argparse
import dataclasses

from dmpo.errors import DmpoError
from dmpo.pipeline.demo import DemoSettings, quick_settings, quick_vision_settings, vision_settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    d = DemoSettings()
    p = commands.add_parser("demo", help="SFT → GRPO and DMPO → evaluation → report (CPU, minutes)",
                            description="The whole comparison in one command: SFT warm start (cached), "
                                        "GRPO and DMPO from the same checkpoint, seed and budget, evaluation "
                                        "of all three on one held-out set, and a report folder with a "
                                        "table and plots.")
    p.add_argument("--output-dir", default=d.output_dir, help=f"report folder (default: {d.output_dir})")
    p.add_argument("--quick", action="store_true", help="a budget of seconds, for a smoke test")
    p.add_argument("--modality", choices=("text", "vision"), default="text",
                   help="vision: the built-in tiny VLM on grid images of vertex cover (default: text)")
    p.add_argument("--max-steps", type=int, default=None,
                   help=f"steps per objective (default: {d.train.max_steps})")
    p.add_argument("--seed", type=int, default=None, help=f"(default: {d.seed})")
    p.add_argument("--objectives", default=None,
                   help=f"comma-separated objectives to compare (default: {','.join(d.objectives)})")
    p.add_argument("--model", default=None, help="start from this model instead of the built-in SFT model")
    p.add_argument("--workers", type=int, default=None,
                   help=f"processes at a time for the training arms and evaluations, one torch thread each on "
                        f"a CPU (default: {d.workers}; 1: all in this process, with progress bars)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from dmpo.pipeline.demo import run_demo

    if args.modality == "vision":
        output = args.output_dir if args.output_dir != DemoSettings().output_dir else "runs/demo-vision"
        settings = quick_vision_settings(output) if args.quick else vision_settings(output)
    else:
        settings = quick_settings(args.output_dir) if args.quick else DemoSettings(output_dir=args.output_dir)
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise DmpoError(f"--max-steps must be at least 1, got {args.max_steps}")
        settings = dataclasses.replace(settings, train=dataclasses.replace(settings.train, max_steps=args.max_steps))
    changes = {"seeds": None if args.seed is None else (args.seed,), "model": args.model,
               "objectives": args.objectives, "workers": args.workers}
    settings = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
    run_demo(settings, progress=not args.no_progress)
    return 0
