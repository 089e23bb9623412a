"""``dmpo bench``: list tasks, generate instances, score predictions, render images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.io import load, load_predictions, save_hf, save_jsonl
from dmpo.npbench.scoring import format_table, score_completions, summarize


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="NP-Bench: list, generate, score, render")
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("list", help="the tasks with their category and sense")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("generate", help="generate instances with exact optima")
    p.add_argument("--tasks", default="all", help="comma-separated task names, or 'all'")
    p.add_argument("--difficulty", default="easy", choices=npbench.DIFFICULTIES)
    p.add_argument("--count", type=int, default=10, help="instances per task")
    p.add_argument("--seed", type=int, default=0, help="first seed; instance i uses seed+i")
    p.add_argument("--time-limit", type=float, default=None, help="solver limit per instance (s)")
    p.add_argument("--format", choices=("jsonl", "hf"), default="jsonl",
                   help="jsonl file, or a Hugging Face datasets folder")
    p.add_argument("--prompt-style", choices=("nl", "compact"), default="nl",
                   help="prompt column of a datasets folder")
    p.add_argument("--output", "-o", required=True, help="output file (jsonl) or folder (hf)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="score predictions against instances")
    p.add_argument("data", help="instances: our JSONL, the public JSON, or a datasets folder")
    p.add_argument("predictions", help="JSONL rows {id, completion|completions} or JSON {id: completion(s)}")
    p.add_argument("--protocol", choices=("text", "vision"), default="text")
    p.add_argument("--cap", action="store_true", help="cap QR at 1 (for heuristic references)")
    p.add_argument("--pass-k", default="1", help="comma-separated k for pass@k")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("render", help="render instances as PNG images")
    p.add_argument("data", help="instance file")
    p.add_argument("--output-dir", "-o", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.set_defaults(func=cmd_render)


def _task_names(spec: str) -> list[str]:
    if spec == "all":
        return npbench.list_tasks()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        npbench.get_task(name)  # raises a clear error for an unknown name
    return names


def cmd_list(args: argparse.Namespace) -> int:
    print(f"{'task':22}{'category':12}{'vision group':14}{'sense':6}public name")
    for name in npbench.list_tasks():
        task = npbench.get_task(name)
        print(f"{name:22}{npbench.category_of(name) or '-':12}"
              f"{npbench.category_of(name, protocol='vision') or '-':14}{task.sense:6}{task.public_name}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise DmpoError("--count must be at least 1")
    names = _task_names(args.tasks)
    instances = []
    unproved = 0
    with tqdm(total=len(names) * args.count, desc="generating", unit="inst") as bar:
        for name in names:
            task = npbench.get_task(name)
            for i in range(args.count):
                inst = task.generate(seed=args.seed + i, difficulty=args.difficulty, time_limit=args.time_limit)
                unproved += not inst.proved
                instances.append(inst)
                bar.update()
    if args.format == "jsonl":
        path = save_jsonl(instances, args.output)
    else:
        path = save_hf(instances, args.output, prompt_style=args.prompt_style)
    print(f"wrote {len(instances)} instances ({unproved} without a proved optimum) to {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    instances = load(args.data)
    predictions = load_predictions(args.predictions)
    pass_k = tuple(int(k) for k in args.pass_k.split(","))
    items, missing = [], 0
    for inst in tqdm(instances, desc="scoring", unit="item"):
        completions = predictions.get(inst.id)
        if not completions:
            missing += 1
            completions = [""]  # an item without a prediction scores as no answer
        items.append(score_completions(inst, completions, cap=args.cap))
    summary = summarize(items, protocol=args.protocol, pass_k=pass_k)
    summary["missing_predictions"] = missing
    print(format_table(summary, title=f"NP-Bench ({args.protocol} protocol, {len(items)} items)"))
    if missing:
        print(f"{missing} item(s) had no prediction and scored 0")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
        print(f"summary written to {args.json_out}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    instances = load(args.data)[: args.limit]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, inst in enumerate(tqdm(instances, desc="rendering", unit="img")):
        name = inst.id or f"{inst.task}-{i}"
        npbench.get_task(inst.task).render(inst).save(out / f"{name}.png")
    print(f"wrote {len(instances)} images to {out}")
    return 0
