"""``dmpo eval``: k samples per held-out instance; success rate, QR, diversity, pass@k.

    dmpo eval --model runs/x --k 16 --output runs/x/eval.json

Every setting flag is a field of :class:`dmpo.pipeline.settings.EvalSettings`.
"""

from __future__ import annotations

import argparse
import json

from dmpo.cli.options import add_settings_arguments, settings_from_args
from dmpo.paths import output_file
from dmpo.pipeline.settings import EvalSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("eval", help="k samples per held-out instance: QR, success, diversity, pass@k",
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
    model, instances, result = evaluate(settings, keep_completions=args.keep_completions,
                                        progress=not args.no_progress)
    print(npbench.format_table(result.summary, title=f"{model}: {len(instances)} instances, k={settings.k}"))
    print("QR@j (j = 1..k): " + " ".join(f"{v:.1f}" for v in result.qr_curve))
    print("mean over tasks: " + ", ".join(f"{k} {v:.2f}" for k, v in result.headline.items()))
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        print(f"results written to {output}")
    return 0
