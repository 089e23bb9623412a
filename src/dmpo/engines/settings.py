"""Plain settings of the training pipeline, importable without any engine (the ``dmpo``
command builds its parser from them without importing torch or TRL).

- :class:`SFTSettings`: everything that determines the built-in warm-started model; a hash of
  it names the model's cache folder (:func:`default_model_path`).
- :class:`TrainSettings`: one RL run; its fields are ``dmpo train``'s flags and YAML keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError

# Tasks the built-in model is warm-started and trained on by default: several feasible answers
# per tiny instance, several optima for most (room for diversity), selection and graph families.
DEFAULT_TASKS: tuple[str, ...] = ("knapsack", "max_independent_set", "vertex_cover")
# Bump when the SFT data recipe or training loop changes, so cached models are rebuilt.
RECIPE_VERSION = 1
MARKER = "dmpo_sft.json"


@dataclass(frozen=True)
class SFTSettings:
    """The built-in model and its supervised warm start (see ``dmpo.engines.trl.sft``)."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    difficulty: str = "tiny"
    instances_per_task: int = 300
    answers_per_instance: int = 4
    optimal_fraction: float = 0.5
    quality_power: float = 2.0
    explore_steps: int = 300
    seed: int = 0
    # The tiny model (dmpo.models.build_tiny_model).
    hidden_size: int = 128
    num_layers: int = 2
    heads: int = 4
    # Training.
    epochs: float = 3.0
    learning_rate: float = 2e-3
    batch_size: int = 32
    max_length: int = 256

    def __post_init__(self) -> None:
        if not self.tasks:
            raise DmpoError("SFT needs at least one task")
        for name in self.tasks:
            npbench.get_task(name)
        if self.instances_per_task < 1 or self.answers_per_instance < 1:
            raise DmpoError(
                f"instances_per_task and answers_per_instance must be at least 1, got "
                f"{self.instances_per_task}, {self.answers_per_instance}")
        if not 0 <= self.optimal_fraction <= 1:
            raise DmpoError(f"optimal_fraction must be in [0, 1], got {self.optimal_fraction}")
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1:
            raise DmpoError("epochs, learning_rate and batch_size must be positive")

    def key(self) -> str:
        payload = json.dumps({"recipe": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """``$DMPO_CACHE``, else ``~/.cache/dmpo``."""
    return Path(os.environ.get("DMPO_CACHE") or Path.home() / ".cache" / "dmpo").expanduser()


def default_model_path(settings: SFTSettings | None = None) -> Path:
    """Cache folder of the warm-started model for ``settings`` (built or not)."""
    settings = settings or SFTSettings()
    return cache_dir() / f"tiny-sft-{settings.key()}"


def is_built(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file() and (Path(path) / "config.json").is_file()


@dataclass
class TrainSettings:
    """An RL run on NP-Bench. Every field is a ``dmpo train`` flag and a key of its YAML config."""

    objective: str = field(default="dmpo", metadata={"help": "group objective (dmpo, grpo, dapo, ...)"})
    tasks: tuple[str, ...] = field(default=DEFAULT_TASKS, metadata={"help": "NP-Bench tasks to train on"})
    difficulty: str = field(default="tiny", metadata={"help": "instance difficulty"})
    model: str | None = field(
        default=None, metadata={"help": "model folder or hub id (default: the built-in SFT model)"})
    max_steps: int = field(default=100, metadata={"help": "optimiser steps"})
    num_generations: int = field(default=8, metadata={"help": "group size G: completions per prompt"})
    per_device_batch: int = field(
        default=32, metadata={"help": "completions per device and micro-batch (a multiple of G)"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate (constant after warm-up)"})
    seed: int = field(default=0, metadata={"help": "seed of sampling, shuffling and initialisation"})
    output_dir: str = field(default="runs/train", metadata={"help": "checkpoints, final model, history"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0: only the final model)"})
    resume: str | None = field(
        default=None, metadata={"help": "checkpoint folder to resume from, or 'auto' for the latest in output_dir"})
    objective_params: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "objective parameters, e.g. {lam: 2.0, alpha: 0.1}"})
    num_prompts: int = field(default=512, metadata={"help": "training instances per task"})
    max_completion_length: int = field(default=32, metadata={"help": "tokens per completion at most"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature during training"})
    logging_steps: int = field(default=1, metadata={"help": "log metrics every N steps"})
    trainer: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "further DMPOConfig / GRPOConfig fields, passed through"})

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        self.tasks = tuple(self.tasks)
        if not self.tasks:
            raise DmpoError("no tasks to train on; give --tasks knapsack,vertex_cover (or similar)")
        for name in self.tasks:
            npbench.get_task(name)
        for name in ("max_steps", "per_device_batch", "num_prompts", "max_completion_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise DmpoError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise DmpoError(f"num_generations (group size) must be at least 2, got {self.num_generations}")
        if self.per_device_batch % self.num_generations != 0:
            raise DmpoError(
                f"per_device_batch ({self.per_device_batch}) must be a multiple of num_generations "
                f"({self.num_generations}): the batch counts completions and must hold whole groups")
        if self.save_steps < 0:
            raise DmpoError(f"save_steps must be ≥ 0, got {self.save_steps}")
        if self.learning_rate <= 0:
            raise DmpoError(f"learning_rate must be positive, got {self.learning_rate}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
