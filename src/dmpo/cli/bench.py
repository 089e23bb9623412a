"""``dmpo bench``: list tasks, generate instances, score predictions, render images.

Every mistake in the arguments or the files is one ``dmpo: error: ...`` line (exit 2), found
before any long work where possible. Output paths: a file output (``generate -o x.jsonl``,
``score --json``) overwrites an existing file, but never a folder, never one of the command's
own input files, and never a path under a file; a folder output (``generate --format hf``,
``render -o``) may exist, but ``--format hf`` refuses a non-empty folder that is not a
datasets folder.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.base import check_time_limit
from dmpo.npbench.io import load, load_predictions, reference_report, save_hf, save_jsonl
from dmpo.npbench.scoring import format_table, score_completions, summarize
from dmpo.npbench.vlmevalkit import load_vlmevalkit, save_vlmevalkit
from dmpo.paths import check_output_dir, check_output_file

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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
    p.add_argument("--time-limit", type=float, default=None,
                   help="solver limit per instance in seconds (> 0; default: each task's own)")
    p.add_argument("--allow-unproved", action="store_true",
                   help="store instances whose optimum was not proved within the time limit "
                        "(proved=false, optimum = best value found); by default that is an error")
    p.add_argument("--format", choices=("jsonl", "hf", "vlmevalkit"), default="jsonl",
                   help="jsonl file, a Hugging Face datasets folder, or a VLMEvalKit image-dataset TSV")
    _add_vlmevalkit_arguments(p)
    p.add_argument("--prompt-style", choices=("nl", "compact"), default="nl",
                   help="prompt column of a datasets folder, question column of a VLMEvalKit TSV")
    p.add_argument("--output", "-o", required=True,
                   help="output file (jsonl, overwritten if it exists) or folder (hf)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="score predictions against instances (NP-Bench, math, reasoning-gym)")
    p.add_argument("data", help="instances: our JSONL, the public JSON, or a datasets folder; or a task "
                                "source: math:FILE, math:synthetic, rg:NAME (items rebuilt from the "
                                "predictions' ids, e.g. countdown-1000000)")
    p.add_argument("predictions", help="JSONL rows {id, completion|completions}, JSON {id: completion(s)}, "
                                       "or a VLMEvalKit prediction file (.tsv or .xlsx with a prediction column)")
    p.add_argument("--protocol", choices=("text", "vision"), default="text")
    p.add_argument("--cap", action="store_true", help="cap QR at 1 (for heuristic references)")
    p.add_argument("--pass-k", default="1",
                   help="comma-separated k for pass@k; every item needs at least k samples")
    p.add_argument("--no-solve", action="store_true",
                   help="score public files against their ground_truth instead of solving them exactly")
    p.add_argument("--solve-cache", default=None,
                   help="JSON file that remembers the exact optima of public items between runs")
    p.add_argument("--json", dest="json_out", default=None,
                   help="also write the summary as JSON here (overwritten if it exists)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("render", help="render instances as PNG images")
    p.add_argument("data", help="instance file")
    p.add_argument("--output-dir", "-o", required=True)
    p.add_argument("--limit", type=int, default=None, help="render only the first N instances (N ≥ 1)")
    p.add_argument("--render", choices=npbench.RENDERS, default=None,
                   help="the vision prompt's image: drawing (448 px square) or grid (the pixel encoding); "
                        "default: the drawing at the renderer's own size")
    p.set_defaults(func=cmd_render)


def _task_names(spec: str) -> list[str]:
    if spec.strip() == "all":
        return npbench.list_tasks()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise DmpoError(f"--tasks {spec!r} names no task; give comma-separated names or 'all'")
    for name in names:
        npbench.get_task(name)  # raises a clear error for an unknown name
    canonical = [npbench.get_task(name).name for name in names]
    repeated = sorted({n for n in canonical if canonical.count(n) > 1})
    if repeated:
        raise DmpoError(f"--tasks lists {repeated} more than once")
    return canonical


def _pass_k(spec: str) -> tuple[int, ...]:
    values = []
    for part in spec.split(","):
        try:
            k = int(part.strip())
        except ValueError:
            raise DmpoError(f"--pass-k must be comma-separated integers ≥ 1, got {spec!r}") from None
        if k < 1:
            raise DmpoError(f"--pass-k values must be ≥ 1, got {k}")
        values.append(k)
    return tuple(sorted(set(values)))


def _output_folder(path: Path, flag: str, *, datasets: bool = False) -> None:
    """DmpoError unless a folder can be written at ``path`` (see the module docstring)."""
    check_output_dir(path, flag)
    if datasets and path.is_dir() and any(path.iterdir()) and not (path / "dataset_info.json").exists():
        raise DmpoError(f"{flag} {path} is a non-empty folder that is not a datasets folder; "
                        "refusing to write into it")


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
    try:
        check_time_limit(args.time_limit)
    except DmpoError:
        raise DmpoError(f"--time-limit must be a finite number of seconds > 0, got {args.time_limit}") from None
    names = _task_names(args.tasks)
    output = Path(args.output)
    _check_vlmevalkit_arguments(args)
    if args.format in ("jsonl", "vlmevalkit"):
        check_output_file(output, "--output")
    else:
        _output_folder(output, "--output", datasets=True)
    instances = []
    unproved = []
    with tqdm(total=len(names) * args.count, desc="generating", unit="inst") as bar:
        for name in names:
            task = npbench.get_task(name)
            for i in range(args.count):
                inst = task.generate(seed=args.seed + i, difficulty=args.difficulty, time_limit=args.time_limit)
                if not inst.proved:
                    if not args.allow_unproved:  # stop at once: the file would not be usable
                        limit = task.solver_time_limit if args.time_limit is None else args.time_limit
                        raise DmpoError(
                            f"{inst.id} was not proved optimal within the solver time limit ({limit:g} s); "
                            "nothing was written. Raise --time-limit, or pass --allow-unproved to store "
                            "such instances with proved=false (their optimum is then only the best value "
                            "found)")
                    unproved.append(inst.id)
                instances.append(inst)
                bar.update()
    try:
        if args.format == "jsonl":
            path = save_jsonl(instances, output)
        elif args.format == "vlmevalkit":
            path = _save_vlmevalkit(instances, output, args)
        else:
            path = save_hf(instances, output, prompt_style=args.prompt_style)
    except OSError as exc:
        raise DmpoError(f"cannot write {output}: {exc.strerror or exc}") from None
    note = f" ({len(unproved)} without a proved optimum: proved=false)" if unproved else " (all proved optimal)"
    print(f"wrote {len(instances)} instances{note} to {path}")
    return 0


def _add_vlmevalkit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--render", choices=npbench.RENDERS, default=None,
                   help="--format vlmevalkit: the image of each question (default drawing: VLMEvalKit "
                        "stores images as JPEG, which keeps drawings legible but blurs grid cells)")


def _check_vlmevalkit_arguments(args: argparse.Namespace) -> None:
    if args.render is not None and args.format != "vlmevalkit":
        raise DmpoError("--render is for --format vlmevalkit")
    if args.format == "vlmevalkit" and Path(args.output).suffix.lower() != ".tsv":
        raise DmpoError(f"--format vlmevalkit writes a .tsv file; got --output {args.output}")


def _save_vlmevalkit(instances: list[npbench.Instance], output: Path, args: argparse.Namespace) -> Path:
    """The VLMEvalKit TSV: the vision prompt (``--prompt-style``) and image of each instance."""
    return save_vlmevalkit(instances, output, render=args.render or "drawing", style=args.prompt_style)


def _is_source_spec(data: str) -> bool:
    from dmpo.sources import split_spec

    return not Path(data).exists() and split_spec(data)[0] in ("math", "rg")


def cmd_score(args: argparse.Namespace) -> int:
    pass_k = _pass_k(args.pass_k)
    if _is_source_spec(args.data):
        return _score_source(args, pass_k)
    data, preds = Path(args.data), Path(args.predictions)
    if args.json_out:
        check_output_file(Path(args.json_out), "--json", inputs=(data, preds))
    index_to_id = None
    if data.suffix.lower() == ".tsv" and data.is_file():  # VLMEvalKit: predictions may name rows by index
        items = load_vlmevalkit(data)
        instances = [item.instance for item in items]
        index_to_id = {item.index: item.instance.id for item in items}
    else:
        instances = load(data, solve=not args.no_solve, cache=args.solve_cache)
    if not instances:
        raise DmpoError(f"{data} holds no instances")
    predictions = load_predictions(preds, index_to_id=index_to_id)
    ids = {inst.id for inst in instances}
    if not ids & set(predictions):
        example = next(iter(predictions), None)
        raise DmpoError(f"none of the {len(instances)} items of {data} has a prediction in {preds} "
                        + (f"(its ids look like {example!r}, the items' like {next(iter(ids))!r})"
                           if example is not None else "(it holds no predictions)"))
    samples = max(len(predictions[i]) for i in ids & set(predictions))
    short = [(inst.id, len(predictions[inst.id])) for inst in instances
             if inst.id in predictions and len(predictions[inst.id]) < max(pass_k)]
    if short:
        item, k = short[0]
        raise DmpoError(f"pass@{max(pass_k)} needs at least {max(pass_k)} samples per item; "
                        f"{len(short)} item(s) have fewer (e.g. {item!r} has {k})")
    items, missing = [], 0
    for inst in tqdm(instances, desc="scoring", unit="item"):
        completions = predictions.get(inst.id)
        if not completions:
            missing += 1
            completions = [""] * samples  # an item without a prediction scores as no answer
        items.append(score_completions(inst, completions, cap=args.cap))
    summary = summarize(items, protocol=args.protocol, pass_k=pass_k)
    summary["missing_predictions"] = missing
    references = reference_report(instances)
    summary["references"] = references
    print(format_table(summary, title=f"NP-Bench ({args.protocol} protocol, {len(items)} items)"))
    if missing:
        print(f"{missing} item(s) had no prediction and scored 0")
    if references["checked"]:
        print(f"file ground_truth: {references['wrong']} of {references['checked']} value(s) differ from "
              f"the proved optimum ({references['inflated']} better than possible, "
              f"{references['suboptimal']} suboptimal); QR uses the proved optima")
    if references["unverified"]:
        print(f"{references['unverified']} item(s) scored against an unproved value "
              + ("(--no-solve)" if args.no_solve else "(the solver's time limit ran out)"))
    if args.json_out:
        try:
            Path(args.json_out).write_text(json.dumps(summary, indent=2))
        except OSError as exc:
            raise DmpoError(f"cannot write {args.json_out}: {exc.strerror or exc}") from None
        print(f"summary written to {args.json_out}")
    return 0


def _score_source(args: argparse.Namespace, pass_k: tuple[int, ...]) -> int:
    """``dmpo bench score math:FILE|math:synthetic|rg:NAME PREDICTIONS``: per-source metrics."""
    from dmpo.evaluation.sources import format_source_table, score_source_completions
    from dmpo.pipeline.sources import get_source

    ignored = [flag for flag, given in (("--protocol vision", args.protocol != "text"), ("--cap", args.cap),
                                        ("--no-solve", args.no_solve), ("--solve-cache", args.solve_cache))
               if given]
    if ignored:
        raise DmpoError(f"{', '.join(ignored)}: only for NP-Bench instance files, not {args.data}")
    preds = Path(args.predictions)
    if args.json_out:
        check_output_file(Path(args.json_out), "--json", inputs=(preds,))
    source = get_source(args.data)
    predictions = load_predictions(preds)
    if not predictions:
        raise DmpoError(f"{preds} holds no predictions")
    if source.generated:  # the items are the predictions' ids (seeds)
        items = {item_id: source.item_for_id(item_id) for item_id in predictions}
    else:
        items = {item.id: item for item in source.items()}
    skipped = [i for i in predictions if i in source.skipped]
    unknown = [i for i in predictions if i not in items and i not in source.skipped]
    if unknown:
        raise DmpoError(f"{len(unknown)} prediction id(s) name no item of {args.data} "
                        f"(e.g. {unknown[0]!r}; its ids look like {next(iter(items), '?')!r})")
    samples = max(len(v) for v in predictions.values())
    short = [(i, len(predictions[i])) for i in items if i in predictions and len(predictions[i]) < max(pass_k)]
    if short:
        raise DmpoError(f"pass@{max(pass_k)} needs at least {max(pass_k)} samples per item; "
                        f"{len(short)} item(s) have fewer (e.g. {short[0][0]!r} has {short[0][1]})")
    missing = [i for i in items if i not in predictions]
    pairs = [(source, items[i]) for i in items]
    completions = [predictions.get(i) or [""] * samples for i in items]
    ks = {len(c) for c in completions}
    if len(ks) != 1:
        raise DmpoError(f"every item needs the same number of samples, got {sorted(ks)}")
    result = score_source_completions(pairs, completions, [source], pass_k=pass_k)
    summary = {**result.summary, "missing_predictions": len(missing), "skipped_predictions": len(skipped)}
    print(format_source_table(summary, title=f"{args.data} ({len(pairs)} items, k={samples})"))
    if missing:
        print(f"{len(missing)} item(s) had no prediction and scored 0")
    if source.skipped:
        print(f"{len(source.skipped)} item(s) skipped: their gold answer could not be parsed "
              f"({len(skipped)} of them had predictions, not scored); e.g. "
              + "; ".join(f"{k}: {v}" for k, v in list(source.skipped.items())[:3]))
    if args.json_out:
        try:
            Path(args.json_out).write_text(json.dumps(summary, indent=2))
        except OSError as exc:
            raise DmpoError(f"cannot write {args.json_out}: {exc.strerror or exc}") from None
        print(f"summary written to {args.json_out}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise DmpoError(f"--limit must be at least 1, got {args.limit}")
    out = Path(args.output_dir)
    _output_folder(out, "--output-dir")
    instances = load(args.data, solve=False)[: args.limit]
    if not instances:
        raise DmpoError(f"{args.data} holds no instances")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i, inst in enumerate(tqdm(instances, desc="rendering", unit="img")):
            # Ids come from the file: keep them inside the folder ("../x" is not a name).
            name = _UNSAFE.sub("_", inst.id).lstrip(".") or f"{inst.task}-{i}"
            _image(inst, args.render).save(out / f"{name}.png")
    except OSError as exc:
        raise DmpoError(f"cannot write images to {out}: {exc.strerror or exc}") from None
    print(f"wrote {len(instances)} images to {out}")
    return 0


def _image(inst: npbench.Instance, render: str | None) -> Any:
    task = npbench.get_task(inst.task)
    return task.render(inst) if render is None else task.vision_prompt(inst, render).image
