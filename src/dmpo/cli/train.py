"""``dmpo sft | train | eval | demo``: training and evaluation on the TRL engine.

    dmpo train --objective dmpo --max-steps 2 --output-dir runs/x     # offline, built-in model
    dmpo train --config train.yaml --learning-rate 1e-4               # flags override the file
    dmpo eval --model runs/x --k 8 --output runs/x/eval.json
    dmpo demo                                                         # GRPO vs DMPO report
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
from pathlib import Path

from dmpo.cli.config import coerce, load_yaml, merge, parse_key_values
from dmpo.engines.settings import DEFAULT_TASKS, SFTSettings, TrainSettings
from dmpo.errors import DmpoError

# Without the trl extra main.py leaves these commands out. The engine itself is imported only
# when a command runs, so that building the parser (every `dmpo` call) stays fast.
if importlib.util.find_spec("trl") is None:
    raise ImportError("dmpo sft/train/eval/demo need the TRL engine: pip install 'dmpo[trl]'")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    _add_sft(commands)
    _add_train(commands)
    _add_eval(commands)
    _add_demo(commands)


# ---- dmpo sft ---------------------------------------------------------------------------------
def _add_sft(commands: argparse._SubParsersAction) -> None:
    d = SFTSettings()
    p = commands.add_parser("sft", help="warm-start the built-in tiny model (or any model) with SFT",
                            description="Build SFT data from solver answers of varied quality on tiny "
                                        "instances and fine-tune with TRL's SFTTrainer. Without --output-dir "
                                        "the result goes to the cache that `dmpo train` reads.")
    p.add_argument("--tasks", default=",".join(d.tasks), help=f"comma-separated tasks (default: {','.join(d.tasks)})")
    p.add_argument("--instances-per-task", type=int, default=d.instances_per_task)
    p.add_argument("--answers-per-instance", type=int, default=d.answers_per_instance)
    p.add_argument("--optimal-fraction", type=float, default=d.optimal_fraction,
                   help="share of examples that are optimal answers; the rest are feasible, weighted by QR^2")
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--hidden-size", type=int, default=d.hidden_size)
    p.add_argument("--num-layers", type=int, default=d.num_layers)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--model", default=None,
                   help="fine-tune this model folder / hub id instead of building the tiny model "
                        "(needs --output-dir)")
    p.add_argument("--output-dir", default=None, help="where to write the model (default: the cache)")
    p.set_defaults(func=cmd_sft)


def cmd_sft(args: argparse.Namespace) -> int:
    from dmpo.engines.trl import sft

    settings = SFTSettings(
        tasks=_tasks(args.tasks), instances_per_task=args.instances_per_task,
        answers_per_instance=args.answers_per_instance, optimal_fraction=args.optimal_fraction,
        epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
        hidden_size=args.hidden_size, num_layers=args.num_layers, seed=args.seed)
    if args.model is not None:
        if args.output_dir is None:
            raise DmpoError("--model needs --output-dir: the cache holds only the built-in model")
        data = sft.build_sft_examples(
            settings.tasks, instances_per_task=settings.instances_per_task,
            answers_per_instance=settings.answers_per_instance, optimal_fraction=settings.optimal_fraction,
            seed=sft.SFT_SEED_START + settings.seed)
        path, _ = sft.train_sft(args.model, data, args.output_dir, epochs=settings.epochs,
                                learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                                seed=settings.seed)
    elif args.output_dir is not None:
        path = sft.build_sft_model(settings, args.output_dir)
    else:
        path = sft.ensure_default_model(settings)
    info_path = Path(path) / sft.MARKER
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        print(f"{'task':22}{'examples':>10}{'optimal':>10}{'mean QR':>10}{'optima/inst':>13}")
        for task, row in info["data"]["tasks"].items():
            print(f"{task:22}{row['examples']:>10}{row['optimal_fraction']:>10.2f}"
                  f"{row['mean_quality_ratio']:>10.2f}{row['distinct_optima_per_instance']:>13.2f}")
        if info.get("final_loss") is not None:
            print(f"final SFT loss {info['final_loss']:.4f}")
    print(f"SFT model: {path}")
    return 0


# ---- dmpo train -------------------------------------------------------------------------------
def _add_train(commands: argparse._SubParsersAction) -> None:
    d = TrainSettings()
    p = commands.add_parser(
        "train", help="RL on NP-Bench with a group objective (DMPO, GRPO, ...)",
        description="Train with any group objective on NP-Bench prompts through TRL. Every option can "
                    "also be given in a YAML file (--config, same names); flags override the file.")
    # Every default is None so that a YAML value is kept unless the flag is given.
    p.add_argument("--config", default=None, help="YAML file with any of these options (flags win)")
    p.add_argument("--objective", default=None, help=f"group objective (default: {d.objective}); "
                                                      "see dmpo.objectives.names('group')")
    p.add_argument("--tasks", default=None, help=f"comma-separated tasks (default: {','.join(d.tasks)})")
    p.add_argument("--difficulty", default=None, help=f"instance difficulty (default: {d.difficulty})")
    p.add_argument("--model", default=None,
                   help="model folder or hub id (default: the built-in tiny model, SFT-warm-started; "
                        "built and cached on first use)")
    p.add_argument("--max-steps", type=int, default=None, help=f"optimiser steps (default: {d.max_steps})")
    p.add_argument("--num-generations", type=int, default=None,
                   help=f"group size G, completions per prompt (default: {d.num_generations})")
    p.add_argument("--per-device-batch", type=int, default=None,
                   help=f"completions per device and step, a multiple of G (default: {d.per_device_batch})")
    p.add_argument("--learning-rate", type=float, default=None, help=f"(default: {d.learning_rate})")
    p.add_argument("--seed", type=int, default=None, help=f"(default: {d.seed})")
    p.add_argument("--output-dir", default=None, help=f"(default: {d.output_dir})")
    p.add_argument("--save-steps", type=int, default=None,
                   help="write a checkpoint every N steps (default: none; the final model is always saved)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from a checkpoint folder, or (no value) from the latest in --output-dir")
    p.add_argument("--objective-param", action="append", default=None, metavar="KEY=VALUE",
                   help="objective parameter, repeatable: --objective-param lam=2 --objective-param alpha=0.1")
    p.add_argument("--num-prompts", type=int, default=None,
                   help=f"training instances per task (default: {d.num_prompts})")
    p.add_argument("--max-completion-length", type=int, default=None,
                   help=f"(default: {d.max_completion_length})")
    p.add_argument("--temperature", type=float, default=None, help=f"(default: {d.temperature})")
    p.add_argument("--logging-steps", type=int, default=None, help=f"(default: {d.logging_steps})")
    p.add_argument("--trainer-arg", action="append", default=None, metavar="KEY=VALUE",
                   help="any further DMPOConfig / GRPOConfig field, repeatable: --trainer-arg beta=0.04")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def train_settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """TrainSettings from defaults ← the YAML file ← the flags given."""
    file_values = coerce(TrainSettings, load_yaml(args.config), source=args.config) if args.config else {}
    flags = {name: getattr(args, name, None) for name in TrainSettings.field_names()
             if name not in ("objective_params", "trainer")}
    flags["objective_params"] = parse_key_values(args.objective_param, "--objective-param") or None
    flags["trainer"] = parse_key_values(args.trainer_arg, "--trainer-arg") or None
    flag_values = coerce(TrainSettings, {k: v for k, v in flags.items() if v is not None}, source="flags")
    return merge(TrainSettings, file_values, flag_values)


def cmd_train(args: argparse.Namespace) -> int:
    from dmpo.engines.trl.run import train
    from dmpo.evaluation.report import training_summary

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


# ---- dmpo eval --------------------------------------------------------------------------------
def _add_eval(commands: argparse._SubParsersAction) -> None:
    from dmpo.evaluation.sampling import EVAL_SEED_START

    p = commands.add_parser("eval", help="k samples per held-out instance: QR, success, diversity, pass@k",
                            description="Sample k answers per instance (a held-out generated set, or "
                                        "--data FILE) and report success rate and QR (single sample and "
                                        "best-of-k), distinct valid and optimal answers, pass@k, QR@k.")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the built-in SFT model)")
    p.add_argument("--k", type=int, default=8, help="samples per instance (default: 8)")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="tasks of the generated held-out set")
    p.add_argument("--difficulty", default="tiny")
    p.add_argument("--count", type=int, default=16, help="held-out instances per task (default: 16)")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED_START,
                   help=f"first instance seed of the held-out set (default: {EVAL_SEED_START}, disjoint "
                        "from training data)")
    p.add_argument("--data", default=None, help="evaluate on this instance file instead (npbench.load formats)")
    p.add_argument("--prompt-style", choices=("compact", "nl"), default="compact")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=64, help="rows per generate call")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--keep-completions", action="store_true", help="include the raw samples in the JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from dmpo import npbench
    from dmpo.engines.trl.sft import ensure_default_model
    from dmpo.evaluation.sampling import evaluate_model, heldout_instances

    progress = not args.no_progress
    if args.k < 1:
        raise DmpoError(f"--k must be at least 1, got {args.k}")
    if args.data is not None:
        instances = npbench.load(args.data)
        if not instances:
            raise DmpoError(f"{args.data} holds no instances")
    else:
        instances = heldout_instances(_tasks(args.tasks), difficulty=args.difficulty, count=args.count,
                                      seed=args.eval_seed, progress=progress)
    model = args.model or ensure_default_model(progress=progress)
    result = evaluate_model(model, instances, k=args.k, temperature=args.temperature, top_p=args.top_p,
                            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                            prompt_style=args.prompt_style, keep_completions=args.keep_completions,
                            progress=progress)
    print(npbench.format_table(result.summary, title=f"{model}: {len(instances)} instances, k={args.k}"))
    print("QR@j (j = 1..k): " + " ".join(f"{v:.1f}" for v in result.qr_curve))
    print("mean over tasks: " + ", ".join(f"{k} {v:.2f}" for k, v in result.headline.items()))
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        print(f"results written to {path}")
    return 0


# ---- dmpo demo --------------------------------------------------------------------------------
def _add_demo(commands: argparse._SubParsersAction) -> None:
    from dmpo.demo import DemoSettings

    d = DemoSettings()
    p = commands.add_parser("demo", help="SFT → GRPO and DMPO → evaluation → report (CPU, minutes)",
                            description="The whole comparison in one command: SFT warm start (cached), "
                                        "GRPO and DMPO from the same checkpoint, seed and budget, evaluation "
                                        "of all three on one held-out set, and a report folder with a "
                                        "table and plots.")
    p.add_argument("--output-dir", default=d.output_dir, help=f"report folder (default: {d.output_dir})")
    p.add_argument("--quick", action="store_true", help="a budget of seconds, for a smoke test")
    p.add_argument("--max-steps", type=int, default=None, help=f"steps per objective (default: {d.max_steps})")
    p.add_argument("--seed", type=int, default=None, help=f"(default: {d.seed})")
    p.add_argument("--objectives", default=None,
                   help=f"comma-separated objectives to compare (default: {','.join(d.objectives)})")
    p.add_argument("--model", default=None, help="start from this model instead of the built-in SFT model")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from dmpo.demo import DemoSettings, quick_settings, run_demo

    settings = quick_settings(args.output_dir) if args.quick else DemoSettings(output_dir=args.output_dir)
    changes = {"max_steps": args.max_steps, "seed": args.seed, "model": args.model,
               "objectives": _tasks(args.objectives) if args.objectives else None}
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes.get("max_steps", 1) < 1:
        raise DmpoError(f"--max-steps must be at least 1, got {args.max_steps}")
    settings = dataclasses.replace(settings, **changes)
    run_demo(settings, progress=not args.no_progress)
    return 0


def _tasks(spec: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    if not names:
        raise DmpoError(f"expected a comma-separated list, got {spec!r}")
    return names
