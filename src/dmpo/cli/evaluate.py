"""``dmpo eval``: k samples per held-out instance; success rate, QR, diversity, pass@k.

    dmpo eval --model runs/x --k 16 --output runs/x/eval.json
    dmpo eval --model runs/x --tasks math:test.jsonl,rg:countdown --prompt-style nl --chat

NP-Bench tasks get NP-Bench's table (QR, success, distinct valid/optimal answers); with a math
or reasoning-gym task, one row per source (accuracy, success@k, pass@k, mean reward, distinct
correct answers, skipped gold answers, failed judgements).

Every setting flag is a field of :class:`dmpo.pipeline.settings.EvalSettings`.
"""

from __future__ import annotations

import argparse
import json

from dmpo.cli.options import add_settings_arguments, settings_from_args
from dmpo.paths import output_file
from dmpo.pipeline.settings import EvalSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("eval", help="k samples per held-out item: QR or accuracy, success, diversity, pass@k",
                            description="Sample k answers per instance (a held-out generated set, or "
                                        "--data FILE) and report success rate and QR (single sample and "
                                        "best-of-k), distinct valid and optimal answers, pass@k, QR@k.")
    add_settings_arguments(p, EvalSettings)
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--keep-completions", action="store_true", help="include the raw samples in the JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from dmpo import npbench
    from dmpo.pipeline.evaluate import evaluate

    settings = settings_from_args(EvalSettings, args)
    output = output_file(args.output, "--output") if args.output else None
    from dmpo.evaluation.sources import SourceEvalResult, format_source_table

    model, instances, result = evaluate(settings, keep_completions=args.keep_completions,
                                        progress=not args.no_progress)
    if isinstance(result, SourceEvalResult):
        print(format_source_table(result.summary, title=f"{model}: {len(instances)} items, k={settings.k}"))
        skipped = {name: row["skipped"] for name, row in result.summary["sources"].items() if row["skipped"]}
        for name, count in skipped.items():
            print(f"{name}: {count} item(s) skipped (gold answer could not be parsed or generation failed)")
    else:
        print(npbench.format_table(result.summary, title=f"{model}: {len(instances)} instances, k={settings.k}"))
        print("QR@j (j = 1..k): " + " ".join(f"{v:.1f}" for v in result.qr_curve))
        print("mean over tasks: " + ", ".join(f"{k} {v:.2f}" for k, v in result.headline.items()))
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        print(f"results written to {output}")
    return 0
