"""The pipeline's settings, each declared once with its help text. Importable without any
engine: the ``dmpo`` command builds its flags from these fields (``dmpo.cli.options``), YAML
configs use the same names as keys, and the demo and the benchmarks hold these objects rather
than copies of their fields.

- :class:`SFTSettings`: everything that determines the built-in warm-started model; a hash of
  it names the model's cache folder (:func:`default_model_path`). ``dmpo sft``'s flags.
- :class:`TrainSettings`: one RL run. ``dmpo train``'s flags and YAML keys.
- :class:`EvalSettings`: one evaluation (k samples per held-out instance). ``dmpo eval``'s flags.
- :class:`ComparisonSettings`: several objectives (× seeds) from one start with one budget,
  evaluated on one held-out set: the demo and the quality benchmark.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.npbench.splits import EVAL_SEED_START
from dmpo.pipeline.sources import get_source, is_npbench
from dmpo.sources import split_spec

# Tasks the built-in model is warm-started and trained on by default: several feasible answers
# per tiny instance, several optima for most (room for diversity), selection and graph families.
DEFAULT_TASKS: tuple[str, ...] = ("knapsack", "max_independent_set", "vertex_cover")
# Bump when the SFT data recipe or training loop changes, so cached models are rebuilt.
RECIPE_VERSION = 1
# Bump when the vision SFT recipe (the built-in tiny VLM's) changes.
VISION_RECIPE_VERSION = 1
MODALITIES = ("text", "vision")
RENDERS = ("grid", "drawing")
# SFT fields that only the vision model reads: left out of the text model's cache key, so adding
# them did not change where the text model is cached.
_VISION_ONLY_SFT_FIELDS = ("modality", "render", "vision_hidden_size", "vision_layers")
MODALITY_HELP = ("text: text prompts and a causal LM; vision: image prompts (task.vision_prompt) and a "
                 "vision-language model (default: the built-in tiny VLM)")
RENDER_HELP = ("vision: the picture of an instance: grid (a pixel encoding for models trained from scratch) "
               "or drawing (labelled graph / table, for pretrained VLMs)")
MARKER = "dmpo_sft.json"
PROMPT_STYLES = ("compact", "nl")
THREADS_HELP = ("torch CPU threads of this process (0: one on a CPU — for the built-in tiny model two "
                "threads are 1.35x faster on an idle 2-core machine but 2.7x slower when one other "
                "process is busy (BENCHMARKS.md §8), so dmpo runs independent work as one-thread "
                "processes in parallel; torch's default on a GPU)")


def apply_threads(threads: int) -> int:
    """Set torch's CPU thread count for this process as ``threads`` says; returns it."""
    import torch

    if threads < 0:
        raise DmpoError(f"threads must be ≥ 0, got {threads}")
    if threads == 0:
        if torch.cuda.is_available():
            return torch.get_num_threads()
        threads = 1
    torch.set_num_threads(threads)
    return threads


def option(default: Any = None, help: str = "", **meta: Any) -> Any:
    """A settings field with its help text (and CLI hints: ``flag``, ``const``, ``choices``)."""
    return field(default=default, metadata={"help": help, **meta})



def _tasks_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(t.strip() for t in value if str(t).strip())


TASKS_HELP = ("tasks, comma-separated: NP-Bench names (knapsack,tsp), math:PATH (a JSONL/JSON/CSV/parquet "
              "file or datasets folder with 'problem' and 'answer' columns; rename with "
              "math:PATH?problem=COL&answer=COL), math:synthetic, rg:NAME (a reasoning-gym task, "
              "config fields as rg:NAME?FIELD=VALUE)")


def _check_task_specs(tasks: tuple[str, ...], difficulty: str) -> None:
    """Every spec names a source (DmpoError otherwise); NP-Bench names are checked cheaply."""
    for spec in tasks:
        if is_npbench(spec):
            npbench.get_task(split_spec(spec)[1])
        else:
            get_source(spec, difficulty=difficulty)


def _check_chat(obj: Any) -> None:
    if obj.system_prompt is not None and not obj.chat:
        raise DmpoError("system_prompt is a message of chat prompts: give --chat too")


def _check_positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise DmpoError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class SFTSettings:
    """The built-in model and its supervised warm start (see ``dmpo.pipeline.sft``)."""

    tasks: tuple[str, ...] = option(
        DEFAULT_TASKS, "tasks of the SFT data: NP-Bench names, math:..., rg:NAME (sources with known "
        "correct answers, e.g. rg:countdown)")
    difficulty: str = option("tiny", "instance difficulty of the SFT data")
    instances_per_task: int = option(300, "instances per task")
    answers_per_instance: int = option(4, "SFT examples per instance")
    optimal_fraction: float = option(
        0.5, "share of examples that are optimal answers; the rest are feasible, weighted by QR^power")
    quality_power: float = option(2.0, "weight QR^power of a non-optimal feasible answer")
    explore_steps: int = option(300, "random-walk steps that look for feasible answers per instance")
    seed: int = option(0, "seed of data, initialisation and training")
    hidden_size: int = option(128, "hidden size of the built-in tiny Llama")
    num_layers: int = option(2, "layers of the built-in tiny Llama")
    heads: int = option(4, "attention heads of the built-in tiny Llama")
    epochs: float = option(3.0, "SFT epochs")
    learning_rate: float = option(2e-3, "SFT peak learning rate (cosine schedule)")
    batch_size: int = option(32, "SFT batch size")
    max_length: int = option(256, "SFT sequence length limit in tokens")
    modality: str = option("text", "text: the built-in tiny Llama on text prompts; vision: the built-in tiny "
                                   "VLM (Qwen2-VL) on image prompts", choices=MODALITIES)
    render: str = option("grid", RENDER_HELP, choices=RENDERS)
    vision_hidden_size: int = option(64, "vision: hidden size of the tiny VLM's vision tower")
    vision_layers: int = option(2, "vision: blocks of the tiny VLM's vision tower")

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", _tasks_tuple(self.tasks))
        _check_modality(self)
        _check_positive(self, "vision_hidden_size", "vision_layers")
        if not self.tasks:
            raise DmpoError("SFT needs at least one task")
        _check_task_specs(self.tasks, self.difficulty)
        if self.instances_per_task < 1 or self.answers_per_instance < 1:
            raise DmpoError(
                f"instances_per_task and answers_per_instance must be at least 1, got "
                f"{self.instances_per_task}, {self.answers_per_instance}")
        if not 0 <= self.optimal_fraction <= 1:
            raise DmpoError(f"optimal_fraction must be in [0, 1], got {self.optimal_fraction}")
        _check_positive(self, "epochs", "learning_rate", "batch_size", "quality_power", "max_length",
                        "hidden_size", "num_layers", "heads")

    @property
    def vision(self) -> bool:
        return self.modality == "vision"

    def key_fields(self) -> dict[str, Any]:
        """The fields that name the model: all of them for the vision model; without the
        vision-only ones for the text model (so its key is what it was before they existed)."""
        values = asdict(self)
        if not self.vision:
            for name in _VISION_ONLY_SFT_FIELDS:
                values.pop(name)
        return values

    def key(self) -> str:
        values = self.key_fields()
        if self.vision:
            values["vision_recipe"] = VISION_RECIPE_VERSION
        prompts = {spec: version for spec in self.tasks if not is_npbench(spec)
                   if (version := getattr(get_source(spec), "prompt_version", 1)) != 1}
        if prompts:  # a source whose compact prompt changed: models warm-started on the old one are stale
            values["prompt_versions"] = prompts
        payload = json.dumps({"recipe": RECIPE_VERSION, **values}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """``$DMPO_CACHE``, else ``~/.cache/dmpo``."""
    return Path(os.environ.get("DMPO_CACHE") or Path.home() / ".cache" / "dmpo").expanduser()


def default_model_path(settings: SFTSettings | None = None) -> Path:
    """Cache folder of the warm-started model for ``settings`` (built or not)."""
    settings = settings or SFTSettings()
    return cache_dir() / f"{'tiny-vlm-sft' if settings.vision else 'tiny-sft'}-{settings.key()}"


def _check_modality(obj: Any) -> None:
    if obj.modality not in MODALITIES:
        raise DmpoError(f"modality must be one of {list(MODALITIES)}, got {obj.modality!r}")
    if obj.render not in RENDERS:
        raise DmpoError(f"unknown render style {obj.render!r}; valid: {list(RENDERS)}")
    if obj.modality == "vision":
        others = [t for t in obj.tasks if not is_npbench(t)]
        if others:
            raise DmpoError(f"--modality vision: image prompts exist for NP-Bench tasks only, not {others}")


def is_built(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file() and (Path(path) / "config.json").is_file()


@dataclass
class TrainSettings:
    """An RL run on task sources (NP-Bench by default; math and reasoning-gym: ``tasks``). Every
    field is a ``dmpo train`` flag and a key of its YAML config."""

    objective: str = option("dmpo", "group objective (dmpo, grpo, dapo, ...; see `objectives.names('group')`)")
    tasks: tuple[str, ...] = option(DEFAULT_TASKS, TASKS_HELP)
    difficulty: str = option("tiny", "instance difficulty")
    model: str | None = option(
        None, "model folder or hub id (default: the built-in tiny model, SFT-warm-started; built and "
              "cached on first use)")
    max_steps: int = option(100, "optimiser steps")
    num_generations: int = option(8, "group size G: completions per prompt")
    per_device_batch: int = option(
        32, "completions per device and micro-batch (a multiple of G keeps groups whole; fewer split "
            "groups over micro-batches, for the objectives that allow it)")
    learning_rate: float = option(2e-4, "peak learning rate (constant after warm-up)")
    seed: int = option(0, "seed of sampling, shuffling and initialisation")
    output_dir: str = option("runs/train", "checkpoints, final model, history.json")
    save_steps: int = option(0, "write a checkpoint every N steps (0: only the final model)")
    resume: str | None = option(
        None, "resume from a checkpoint folder, or (no value / 'auto') from the latest in output_dir",
        const="auto")
    objective_params: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "objective parameter by the objective's own name, repeatable: --objective-param lam=2",
        "flag": "--objective-param"})
    num_prompts: int = option(512, "training instances per generated task (a math file is used whole)")
    prompt_style: str = option("compact", "prompt layout: compact (the problem only) or nl (with "
                               "instructions, for chat models)", choices=PROMPT_STYLES)
    chat: bool = option(False, "prompts as a conversation, rendered by the tokenizer's chat template")
    system_prompt: str | None = option(None, "system message of chat prompts (with --chat)")
    max_completion_length: int = option(32, "tokens per completion at most (raise it for models that "
                                            "reason before answering, e.g. 1024)")
    temperature: float = option(1.0, "sampling temperature during training")
    logging_steps: int = option(1, "log metrics every N steps")
    threads: int = option(0, THREADS_HELP)
    trainer: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "any further DMPOConfig / GRPOConfig field, repeatable: --trainer-arg beta=0.04",
        "flag": "--trainer-arg"})
    modality: str = option("text", MODALITY_HELP, choices=MODALITIES)
    render: str = option("grid", RENDER_HELP, choices=RENDERS)
    include_text: bool = option(False, "vision: put the text encoding of the instance in the prompt too "
                                       "(an ablation)")
    lora_r: int = option(0, "LoRA rank on the language model's attention and MLP projections (0: train "
                            "every parameter)")

    def __post_init__(self) -> None:
        self.tasks = _tasks_tuple(self.tasks)
        if not self.tasks:
            raise DmpoError("no tasks to train on; give --tasks knapsack,vertex_cover (or similar)")
        _check_task_specs(self.tasks, self.difficulty)
        _check_modality(self)
        if self.lora_r < 0:
            raise DmpoError(f"lora_r must be ≥ 0, got {self.lora_r}")
        if self.prompt_style not in PROMPT_STYLES:
            raise DmpoError(f"prompt_style must be one of {list(PROMPT_STYLES)}, got {self.prompt_style!r}")
        _check_chat(self)
        for name in ("max_steps", "per_device_batch", "num_prompts", "max_completion_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise DmpoError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise DmpoError(f"num_generations (group size) must be at least 2, got {self.num_generations}")
        if self.save_steps < 0:
            raise DmpoError(f"save_steps must be ≥ 0, got {self.save_steps}")
        if self.threads < 0:
            raise DmpoError(f"threads must be ≥ 0, got {self.threads}")
        _check_positive(self, "learning_rate", "temperature")
        # Whole groups per batch is the engine's rule (DMPOConfig checks it, with its remedies).

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class EvalSettings:
    """k samples per instance of a held-out set (or of a benchmark file). ``dmpo eval``'s flags."""

    model: str | None = option(None, "model folder or hub id (default: the built-in SFT model)")
    k: int = option(8, "samples per instance")
    tasks: tuple[str, ...] = option(DEFAULT_TASKS, "tasks of the held-out set: " + TASKS_HELP)
    difficulty: str = option("tiny", "difficulty of the generated held-out set")
    count: int = option(16, "held-out instances per generated task (a math file is used whole)")
    eval_seed: int = option(
        EVAL_SEED_START, "first instance seed of the held-out set (disjoint from training data)")
    data: str | None = option(None, "evaluate on this instance file instead (npbench.load formats)")
    prompt_style: str = option("compact", "prompt layout", choices=PROMPT_STYLES)
    chat: bool = option(False, "prompts as a conversation, rendered by the tokenizer's chat template")
    system_prompt: str | None = option(None, "system message of chat prompts (with --chat)")
    temperature: float = option(1.0, "sampling temperature")
    top_p: float = option(1.0, "nucleus sampling mass")
    max_new_tokens: int = option(48, "tokens per sample at most")
    batch_size: int = option(64, "rows per generate call")
    seed: int = option(0, "sampling seed")
    threads: int = option(0, THREADS_HELP)
    modality: str = option("text", MODALITY_HELP, choices=MODALITIES)
    render: str = option("grid", RENDER_HELP, choices=RENDERS)
    include_text: bool = option(False, "vision: put the text encoding of the instance in the prompt too")

    def __post_init__(self) -> None:
        self.tasks = _tasks_tuple(self.tasks)
        if self.data is None:
            if not self.tasks:
                raise DmpoError("no tasks for the held-out set; give --tasks knapsack,tsp (or --data FILE)")
            _check_task_specs(self.tasks, self.difficulty)
            _check_modality(self)
        elif self.modality not in MODALITIES or self.render not in RENDERS:
            _check_modality(self)
        if self.prompt_style not in PROMPT_STYLES:
            raise DmpoError(f"prompt_style must be one of {list(PROMPT_STYLES)}, got {self.prompt_style!r}")
        _check_chat(self)
        for name in ("k", "count", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise DmpoError(f"{name} must be at least 1, got {getattr(self, name)}")
        _check_positive(self, "temperature", "top_p")
        if self.threads < 0:
            raise DmpoError(f"threads must be ≥ 0, got {self.threads}")
        if self.top_p > 1:
            raise DmpoError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class ComparisonSettings:
    """Objectives × seeds trained from one start with one budget (``train``), all evaluated with
    ``evaluation`` on one held-out set of the training tasks. The held-out set's tasks and
    difficulty and the samples' length are the training run's (set here, not in ``evaluation``).
    ``objective_params`` holds each objective's own parameters, by objective name."""

    objectives: tuple[str, ...] = ("grpo", "dmpo")
    seeds: tuple[int, ...] = (0,)
    model: str | None = None  # None: the built-in tiny model, warm-started with ``sft`` (cached)
    sft: SFTSettings = field(default_factory=SFTSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    objective_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.objectives = _tasks_tuple(self.objectives)
        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise DmpoError(f"a comparison needs distinct objectives, got {list(self.objectives)}")
        if not self.seeds:
            raise DmpoError("a comparison needs at least one seed")
        if self.model is None and self.sft.modality != self.train.modality:
            raise DmpoError(f"the comparison trains with modality {self.train.modality!r} but its built-in model "
                            f"is warm-started for {self.sft.modality!r}")
        self.evaluation = dataclasses.replace(
            self.evaluation, tasks=self.train.tasks, difficulty=self.train.difficulty,
            max_new_tokens=self.train.max_completion_length, data=None, modality=self.train.modality,
            render=self.train.render, include_text=self.train.include_text)

    def run(self, objective: str, seed: int, output_dir: str | os.PathLike, model: str | None) -> TrainSettings:
        """The settings of one run of the comparison."""
        return dataclasses.replace(
            self.train, objective=objective, seed=seed, output_dir=os.fspath(output_dir), model=model,
            objective_params=dict(self.objective_params.get(objective, {})))
