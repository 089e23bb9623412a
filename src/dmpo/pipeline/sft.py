"""Supervised warm start of the built-in tiny model on solver-generated answers.

The data comes from NP-Bench's solvers (here); the fine-tuning is TRL's ``SFTTrainer``
(:func:`dmpo.engines.trl.sft.train_sft`).

A randomly initialised model never writes a valid answer, so RL from it gets no reward
signal. Warm-starting it on feasible answers teaches the format and a rough sense of
quality. The data holds a *spread* of answers, not only optima, so that RL has something to
choose between and a diversity-seeking objective has more than one mode to keep:

- for each ``tiny`` instance, :func:`dmpo.npbench.explore.explore_answers` walks from the
  solver's witness to other feasible answers (every one checked by the strict validator);
- each of the ``answers_per_instance`` examples is, with probability ``optimal_fraction``,
  an optimal answer (uniform over the distinct optima found, so several optima are taught
  when they exist); otherwise a feasible answer with 0 < QR < 1 drawn with weight
  ``QR ** quality_power`` (better answers are more frequent; QR² makes a QR-0.9 answer 4×
  as likely as a QR-0.45 one). Answers with QR 0 (e.g. an empty knapsack) are never used.
  An instance whose explorer found only optima gets only optima.

The vision model (``SFTSettings(modality="vision")``) is the built-in tiny VLM
(``dmpo.models.vlm``) warm-started on the same answers with image prompts: the instance as a
picture (``render``, ``grid`` by default) and the task's name as the text; cached beside the text
model under its own key.

A completion is ``"Answer: <answer>"``; TRL's SFT trainer appends the EOS token and, for a
prompt–completion dataset, puts the loss on the completion only.

The warm-started model is cached under ``$DMPO_CACHE`` (default ``~/.cache/dmpo``) in a
folder named by a hash of :class:`SFTSettings`, so every later run reuses it:
``ensure_default_model()`` returns that folder, building it first when missing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.explore import FoundAnswer, explore_answers
from dmpo.npbench.scoring import OPTIMAL_TOL
from dmpo.npbench.splits import SFT_SEED_START
from dmpo.pipeline.settings import (
    DEFAULT_TASKS,
    MARKER,
    SFTSettings,
    default_model_path,
    is_built,
)
from dmpo.pipeline.sources import get_source, is_npbench
from dmpo.sources import split_spec


@dataclass
class SFTData:
    """SFT examples (``prompt``, ``completion``, ``task``, ``quality_ratio``) and their stats."""

    examples: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def build_sft_examples(
    tasks: Sequence[str] = DEFAULT_TASKS,
    *,
    difficulty: str = "tiny",
    instances_per_task: int = 300,
    answers_per_instance: int = 4,
    optimal_fraction: float = 0.5,
    quality_power: float = 2.0,
    explore_steps: int = 300,
    seed: int = SFT_SEED_START,
    progress: bool = True,
    render: str | None = None,
) -> SFTData:
    """Compact prompts and ``Answer: ...`` completions with a spread of quality (module doc).

    With ``render`` (``grid`` or ``drawing``) the examples are for a vision-language model: the
    ``prompt`` is a conversation holding the compact vision prompt's text (the task's name; the
    instance is in the picture) and ``image`` the instance's picture
    (``task.vision_prompt(instance, render, style="compact")``), one picture per instance."""
    if instances_per_task < 1:
        raise DmpoError(f"instances_per_task must be at least 1, got {instances_per_task}")
    if not tasks:
        raise DmpoError("no tasks given for the SFT data")
    task_objects = [npbench.get_task(split_spec(name)[1]) for name in tasks if is_npbench(name)]
    sources = [get_source(name) for name in tasks if not is_npbench(name)]
    rng = random.Random(f"dmpo/sft/{seed}")
    examples: list[dict[str, Any]] = []
    per_task: dict[str, dict[str, float]] = {}
    total = len(tasks) * instances_per_task
    with tqdm(total=total, desc="SFT data", unit="inst", disable=not progress) as bar:
        for source in sources:
            rows, stats = _source_examples(source, rng, instances_per_task=instances_per_task,
                                           answers_per_instance=answers_per_instance, seed=seed, bar=bar)
            examples += rows
            per_task[source.name] = stats
        for task in task_objects:
            optimal_count = 0
            distinct_optima = 0
            start = len(examples)
            for i in range(instances_per_task):
                inst = task.generate(seed=seed + i, difficulty=difficulty)
                found = explore_answers(task, inst, rng=random.Random(f"{task.name}/{seed + i}"),
                                        steps=explore_steps)
                optima = [a for a in found if a.quality_ratio >= 1 - OPTIMAL_TOL]
                others = [a for a in found if 0 < a.quality_ratio < 1 - OPTIMAL_TOL]
                if not optima:  # no proved witness (should not happen for tiny instances)
                    bar.update()
                    continue
                distinct_optima += len(optima)
                image = None
                if render is None:
                    prompt: Any = task.prompt(inst, style="compact")
                else:
                    vision = task.vision_prompt(inst, render, style="compact")
                    prompt, image = [{"role": "user", "content": vision.text}], vision.image
                for _ in range(answers_per_instance):
                    if not others or rng.random() < optimal_fraction:
                        answer = rng.choice(optima)
                        optimal_count += 1
                    else:
                        weights = [a.quality_ratio ** quality_power for a in others]
                        answer = rng.choices(others, weights=weights)[0]
                    completion = f"Answer: {_canonical_text(task, inst, answer)}"
                    example = {"prompt": prompt, "completion": completion, "task": task.name,
                               "quality_ratio": answer.quality_ratio}
                    if image is not None:
                        example["completion"] = [{"role": "assistant", "content": completion}]
                        example["image"] = image
                    examples.append(example)
                bar.update()
            rows = examples[start:]
            if rows:
                per_task[task.name] = {
                    "examples": len(rows),
                    "optimal_fraction": optimal_count / len(rows),
                    "mean_quality_ratio": sum(r["quality_ratio"] for r in rows) / len(rows),
                    "distinct_optima_per_instance": distinct_optima / instances_per_task,
                }
    if not examples:
        raise DmpoError(f"no SFT examples could be built for tasks {list(tasks)}")
    rng.shuffle(examples)
    return SFTData(examples, {"num_examples": len(examples), "tasks": per_task})


def _source_examples(source: Any, rng: random.Random, *, instances_per_task: int, answers_per_instance: int,
                     seed: int, bar: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """SFT examples of a math or reasoning-gym source: each item's correct answers (the source's
    ``answers``: every countdown solution, else the reference answer), ``answers_per_instance``
    drawn uniformly with replacement; an item without a known correct answer is left out."""
    if not hasattr(source, "answers"):
        raise DmpoError(f"{source.name}: this source has no known correct answers to warm-start on")
    items = source.items(start=seed, count=instances_per_task) if source.generated else \
        list(source.items())[:instances_per_task]
    rows: list[dict[str, Any]] = []
    answered, distinct = 0, 0
    for item in items:
        answers = source.answers(item)
        bar.update()
        if not answers:
            continue
        answered += 1
        distinct += len(answers)
        prompt = source.prompt(item, style="compact")
        rows += [{"prompt": prompt, "completion": f"Answer: {rng.choice(answers)}", "task": source.name,
                  "quality_ratio": 1.0} for _ in range(answers_per_instance)]
    if not rows:
        raise DmpoError(f"{source.name}: none of {len(items)} items has a known correct answer for SFT")
    stats = {"examples": len(rows), "items": len(items), "items_with_answers": answered,
             "distinct_answers_per_item": distinct / answered}
    return rows, stats


def _canonical_text(task: npbench.Task, instance: npbench.Instance, answer: FoundAnswer) -> str:
    """The answer written in its canonical form (a set in sorted order) when that form is itself
    a valid answer with the same canonical form; else as found. One spelling per answer is
    easier for a small model to learn and changes no score."""
    text = task.format_answer(_thaw(answer.canonical))
    if text == answer.text:
        return text
    verdict = task.evaluate(instance, f"Answer: {text}")
    return text if verdict.valid and verdict.answer == answer.canonical else answer.text


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def build_sft_model(settings: SFTSettings, output_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Build the tiny model (the tiny VLM for ``modality="vision"``, trained on image prompts
    rendered with ``settings.render``), warm-start it with SFT, and write it (with
    ``dmpo_sft.json``, the settings, data statistics and loss history) to ``output_dir``."""
    from dmpo.engines.trl.sft import train_sft
    from dmpo.models import build_tiny_model, build_tiny_vlm

    started = time.perf_counter()
    output_dir = Path(output_dir)
    with tempfile.TemporaryDirectory(prefix="dmpo-tiny-base-") as base:
        if settings.vision:
            build_tiny_vlm(base, hidden_size=settings.hidden_size, num_layers=settings.num_layers,
                           heads=settings.heads, vision_hidden_size=settings.vision_hidden_size,
                           vision_layers=settings.vision_layers, seed=settings.seed)
        else:
            build_tiny_model(base, hidden_size=settings.hidden_size, num_layers=settings.num_layers,
                             heads=settings.heads, seed=settings.seed)
        data = build_sft_examples(
            settings.tasks, difficulty=settings.difficulty,
            instances_per_task=settings.instances_per_task,
            answers_per_instance=settings.answers_per_instance,
            optimal_fraction=settings.optimal_fraction, quality_power=settings.quality_power,
            explore_steps=settings.explore_steps, seed=SFT_SEED_START + settings.seed, progress=progress,
            render=settings.render if settings.vision else None,
        )
        _, history = train_sft(base, data.examples, output_dir, epochs=settings.epochs,
                               learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                               max_length=settings.max_length, seed=settings.seed, progress=progress)
    losses = [row["loss"] for row in history if "loss" in row]
    info = {
        "settings": asdict(settings),
        "key": settings.key(),
        "data": data.stats,
        "final_loss": losses[-1] if losses else None,
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    (output_dir / MARKER).write_text(json.dumps(info, indent=2))
    return output_dir


def ensure_default_model(settings: SFTSettings | None = None, *, progress: bool = True) -> Path:
    """The cached warm-started tiny model for ``settings``, built (tiny model + SFT) when missing.

    Building writes to a temporary folder beside the cache entry and renames it into place,
    so an interrupted build never leaves a half-written model behind, and two concurrent
    builds both end with a complete one.
    """
    settings = settings or SFTSettings()
    path = default_model_path(settings)
    if is_built(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    what = "VLM" if settings.vision else "model"
    print(f"dmpo: building the built-in tiny {what} and its SFT warm start (once; cached at {path})",
          flush=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        build_sft_model(settings, staging / "model", progress=progress)
        try:
            os.rename(staging / "model", path)
        except OSError:
            if not is_built(path):  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
