"""One RL run on NP-Bench with a group objective, as plain values in and a history out.

    result = run_training("dmpo", tasks=["knapsack"], max_steps=50, output_dir="runs/dmpo")
    result.history     # TRL's log history, one row per logged step
    result.model_dir   # the trained model, loadable by dmpo.models.load_model_and_tokenizer

``dmpo train``, ``dmpo demo`` and the benchmark harness all train through :func:`train`.
Settings are a dataclass (:class:`~dmpo.pipeline.settings.TrainSettings`) whose fields are the
command's flags and the YAML config's keys; ``trainer`` passes any further
``DMPOConfig``/``GRPOConfig`` field through. An objective parameter keeps its name all the way:
``--objective-param lam=4`` → ``TrainSettings.objective_params["lam"]`` →
``DMPOConfig.objective_kwargs["lam"]`` → ``dmpo(batch, lam=4)``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dmpo.engines.trl.config import SHARED_FIELDS
from dmpo.engines.trl.progress import set_progress
from dmpo.errors import DmpoError
from dmpo.npbench.splits import TRAIN_SEED_START
from dmpo.pipeline.settings import DEFAULT_TASKS, TrainSettings
from dmpo.pipeline.sft import ensure_default_model

HISTORY_FILE = "history.json"
SETTINGS_FILE = "dmpo_train.json"
# Logged metrics shown beside the progress bar.
PROGRESS_METRICS = {"reward": "reward", "npbench/quality_ratio": "QR",
                    "npbench/distinct_valid_answers": "distinct", "entropy_q": "H(q)"}


@dataclass
class TrainResult:
    settings: TrainSettings
    model_dir: Path
    history: list[dict[str, Any]]
    seconds: float
    resumed_from: str | None = None


def split_objective_params(params: dict[str, Any]) -> dict[str, Any]:
    """Config fields for objective parameters: a parameter that TRL reads too has a GRPOConfig
    field (``epsilon_low`` → ``epsilon``, ``beta_kl`` → ``beta``) and goes there; a GRPOConfig
    field name is kept; anything else goes to ``objective_kwargs`` under its own name (the
    config validates every name)."""
    by_param = {param: name for name, param in SHARED_FIELDS.items()}
    fields_: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in params.items():
        if key in by_param:
            fields_[by_param[key]] = value
        elif key in SHARED_FIELDS:
            fields_[key] = value
        else:
            extra[key] = value
    if extra:
        fields_["objective_kwargs"] = extra
    return fields_


def build_config(settings: TrainSettings, *, progress: bool = True) -> Any:
    """The ``DMPOConfig`` for ``settings``: CPU-safe on a machine without a GPU (use_cpu,
    no bf16, no activation checkpointing), TRL's defaults on a GPU."""
    import torch

    from dmpo.engines.trl.config import DMPOConfig

    kwargs: dict[str, Any] = {
        "output_dir": settings.output_dir,
        "objective": settings.objective,
        "num_generations": settings.num_generations,
        "per_device_train_batch_size": settings.per_device_batch,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": min(10, settings.max_steps // 10),
        "max_steps": settings.max_steps,
        "seed": settings.seed,
        "max_completion_length": settings.max_completion_length,
        "temperature": settings.temperature,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps" if settings.save_steps else "no",
        "save_steps": settings.save_steps or 500,
        "report_to": "none",
        "disable_tqdm": not progress,
        **split_objective_params(settings.objective_params),
        **settings.trainer,
    }
    unknown = sorted(set(settings.trainer) - {f.name for f in fields(DMPOConfig)})
    if unknown:
        raise DmpoError(f"unknown trainer option(s) {unknown}: 'trainer' takes DMPOConfig / GRPOConfig fields")
    try:
        if torch.cuda.is_available():
            kwargs.setdefault("bf16", torch.cuda.is_bf16_supported())
            return DMPOConfig(**kwargs)
        return DMPOConfig.for_cpu(**kwargs)
    except TypeError as exc:  # a wrongly typed value in the trainer pass-through
        raise DmpoError(f"invalid trainer option: {exc}") from None


def find_resume_checkpoint(resume: str | None, output_dir: str | os.PathLike) -> str | None:
    """``None`` (start fresh), a checkpoint folder, or 'auto': the latest ``checkpoint-N`` in
    ``output_dir``. A missing folder, or 'auto' with no checkpoint, is an error."""
    if resume is None:
        return None
    if resume == "auto":
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
        if last is None:
            raise DmpoError(f"--resume: no checkpoint-N folder in {output_dir} to resume from; "
                            "train with --save-steps N to write checkpoints")
        return last
    if not Path(resume, "trainer_state.json").is_file():
        raise DmpoError(f"--resume {resume}: not a checkpoint folder (it has no trainer_state.json)")
    return str(resume)


def run_training(
    objective: str = "dmpo",
    model_path: str | os.PathLike | None = None,
    tasks: tuple[str, ...] | list[str] = DEFAULT_TASKS,
    max_steps: int = 100,
    seed: int = 0,
    output_dir: str | os.PathLike = "runs/train",
    *,
    progress: bool = True,
    desc: str | None = None,
    **settings: Any,
) -> TrainResult:
    """Train ``model_path`` (default: the built-in SFT model) with ``objective`` on NP-Bench
    prompts of ``tasks`` and save the final model, its tokenizer, ``history.json`` (TRL's log
    history) and ``dmpo_train.json`` (the settings) to ``output_dir``.

    ``settings`` are further :class:`TrainSettings` fields (num_generations, per_device_batch,
    learning_rate, objective_params, trainer, ...)."""
    return train(TrainSettings(objective=objective, model=None if model_path is None else os.fspath(model_path),
                               tasks=tuple(tasks), max_steps=max_steps, seed=seed,
                               output_dir=os.fspath(output_dir), **settings),
                 progress=progress, desc=desc)


def train(settings: TrainSettings, *, progress: bool = True, desc: str | None = None) -> TrainResult:
    """:func:`run_training` from a :class:`TrainSettings`."""
    from dmpo.engines.trl import DMPOTrainer, build_npbench_dataset, make_npbench_reward
    from dmpo.models import load_model_and_tokenizer

    started = time.perf_counter()
    config = build_config(settings, progress=progress)
    resume = find_resume_checkpoint(settings.resume, settings.output_dir)
    model_path = settings.model or str(ensure_default_model(progress=progress))
    model, tokenizer = load_model_and_tokenizer(model_path)
    dataset = build_npbench_dataset(list(settings.tasks), difficulty=settings.difficulty,
                                    count=settings.num_prompts, seed=TRAIN_SEED_START)
    trainer = DMPOTrainer(model, reward_funcs=make_npbench_reward(), args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    set_progress(trainer, progress, desc or f"train {settings.objective}", PROGRESS_METRICS)
    trainer.train(resume_from_checkpoint=resume)
    out = Path(settings.output_dir)
    trainer.save_model(str(out))  # by the main process only, under accelerate launch
    history = list(trainer.state.log_history)
    seconds = time.perf_counter() - started
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        record = {**asdict(settings), "model": model_path, "resumed_from": resume, "seconds": seconds}
        (out / SETTINGS_FILE).write_text(json.dumps(record, indent=2, default=str))
        (out / HISTORY_FILE).write_text(json.dumps(history, indent=2))
    return TrainResult(settings, out, history, seconds, resume)
