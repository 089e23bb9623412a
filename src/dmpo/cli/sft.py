"""``dmpo sft``: warm-start the built-in tiny model (or any model) with SFT on solver answers.

    dmpo sft                                   # build and cache the default model
    dmpo sft --hidden-size 256 --output-dir runs/sft-256
    dmpo sft --modality vision                 # the built-in tiny VLM on grid images (cached)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dmpo.cli.options import add_settings_arguments, settings_from_args
from dmpo.errors import DmpoError
from dmpo.pipeline.settings import SFTSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sft", help="warm-start the built-in tiny model (or any model) with SFT",
                            description="Build SFT data from solver answers of varied quality on tiny "
                                        "instances and fine-tune with TRL's SFTTrainer. Without --output-dir "
                                        "the result goes to the cache that `dmpo train` reads.")
    add_settings_arguments(p, SFTSettings)
    p.add_argument("--model", default=None,
                   help="fine-tune this model folder / hub id instead of building the tiny model "
                        "(needs --output-dir)")
    p.add_argument("--output-dir", default=None, help="where to write the model (default: the cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sft)


def cmd_sft(args: argparse.Namespace) -> int:
    from dmpo.engines.trl.sft import train_sft
    from dmpo.pipeline import sft

    settings = settings_from_args(SFTSettings, args)
    progress = not args.no_progress
    if args.model is not None:
        if args.output_dir is None:
            raise DmpoError("--model needs --output-dir: the cache holds only the built-in model")
        data = sft.build_sft_examples(
            settings.tasks, difficulty=settings.difficulty, instances_per_task=settings.instances_per_task,
            answers_per_instance=settings.answers_per_instance, optimal_fraction=settings.optimal_fraction,
            quality_power=settings.quality_power, explore_steps=settings.explore_steps,
            seed=sft.SFT_SEED_START + settings.seed, progress=progress,
            render=settings.render if settings.vision else None)
        path, _ = train_sft(args.model, data.examples, args.output_dir, epochs=settings.epochs,
                            learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                            max_length=settings.max_length, seed=settings.seed, progress=progress)
    elif args.output_dir is not None:
        path = sft.build_sft_model(settings, args.output_dir, progress=progress)
    else:
        path = sft.ensure_default_model(settings, progress=progress)
    info_path = Path(path) / sft.MARKER
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        print(f"{'task':22}{'examples':>10}{'optimal':>10}{'mean QR':>10}{'optima/inst':>13}")
        for task, row in info["data"]["tasks"].items():
            if "optimal_fraction" in row:
                print(f"{task:22}{row['examples']:>10}{row['optimal_fraction']:>10.2f}"
                      f"{row['mean_quality_ratio']:>10.2f}{row['distinct_optima_per_instance']:>13.2f}")
            else:  # a math or reasoning-gym source: correct answers only
                print(f"{task}\n{'':22}{row['examples']:>10}  examples of {row['items_with_answers']} items with "
                      f"a known answer (of {row['items']}), {row['distinct_answers_per_item']:.2f} distinct "
                      "correct answers per item")
        if info.get("final_loss") is not None:
            print(f"final SFT loss {info['final_loss']:.4f}")
    print(f"SFT model: {path}")
    return 0
