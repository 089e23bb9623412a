"""One RL run with a group objective on task sources (NP-Bench by default; math files,
``math:synthetic`` and reasoning-gym tasks through ``tasks``), as plain values in and a history out.

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
import math
import os
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dmpo.engines.trl.config import SHARED_FIELDS
from dmpo.engines.trl.progress import set_progress
from dmpo.errors import DmpoError
from dmpo.npbench.splits import TRAIN_SEED_START
from dmpo.paths import output_dir
from dmpo.pipeline.settings import DEFAULT_TASKS, SFTSettings, TrainSettings, apply_threads
from dmpo.pipeline.sft import ensure_default_model
from dmpo.pipeline.sources import get_sources, is_npbench
from dmpo.sources import describe_skipped, split_spec

HISTORY_FILE = "history.json"
SETTINGS_FILE = "dmpo_train.json"
# Logged metrics shown beside the progress bar.
PROGRESS_METRICS = {"reward": "reward", "npbench/quality_ratio": "QR",
                    "npbench/distinct_valid_answers": "distinct", "source/correct_frac": "correct",
                    "source/distinct_correct_answers": "distinct", "entropy_q": "H(q)"}


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
        **_typed_trainer_args(settings.trainer, DMPOConfig),
    }
    try:
        if torch.cuda.is_available():
            kwargs.setdefault("bf16", torch.cuda.is_bf16_supported())
            return DMPOConfig(**kwargs)
        return DMPOConfig.for_cpu(**kwargs)
    except TypeError as exc:  # a wrongly typed value in the trainer pass-through
        raise DmpoError(f"invalid trainer option: {exc}") from None


def _typed_trainer_args(values: dict[str, Any], config_cls: type) -> dict[str, Any]:
    """``trainer`` pass-through values checked against the config's fields: known names only,
    numbers and booleans of the field's type (a string where a number belongs, or a NaN, is an
    error here rather than a crash or silent garbage later)."""
    defaults = {f.name: f.default for f in fields(config_cls)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise DmpoError(f"unknown trainer option(s) {unknown}: 'trainer' takes DMPOConfig / GRPOConfig fields")
    out: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise DmpoError(f"trainer option {key} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)) and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DmpoError(f"trainer option {key} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise DmpoError(f"trainer option {key} must be finite, got {value!r}")
        out[key] = value
    return out


def find_resume_checkpoint(resume: str | None, output_dir: str | os.PathLike) -> str | None:
    """``None`` (start fresh), a checkpoint folder, or 'auto': the latest *complete*
    ``checkpoint-N`` in ``output_dir`` (one the trainer finished writing; a folder cut off by a
    killed run is passed over). A missing, incomplete or unreadable checkpoint is an error."""
    from dmpo.engines.trl.trainer import CHECKPOINT_COMPLETE

    if resume is None:
        return None
    if resume == "auto":
        folders = sorted((int(m.group(1)), path) for path in Path(output_dir).glob("checkpoint-*")
                         if path.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", path.name)))
        complete = [path for _, path in folders if (path / CHECKPOINT_COMPLETE).is_file()]
        if not complete:
            cut = f" ({len(folders)} incomplete)" if folders else ""
            raise DmpoError(f"--resume: no checkpoint-N folder in {output_dir} written to the end{cut}; "
                            "train with --save-steps N to write checkpoints")
        resume = str(complete[-1])
    folder = Path(resume)
    if not (folder / "trainer_state.json").is_file():
        raise DmpoError(f"--resume {resume}: not a checkpoint folder (it has no trainer_state.json)")
    _check_weights_readable(folder)
    return str(folder)


def _check_weights_readable(folder: Path) -> None:
    """A clear error for a checkpoint whose weight files are missing, truncated or corrupt."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files and not any(folder.glob("*.bin")):
        raise DmpoError(f"--resume {folder}: the checkpoint holds no model weights")
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    handle.get_slice(key)
        except Exception as exc:  # safetensors raises its own error types
            raise DmpoError(f"--resume {folder}: {path.name} is truncated or corrupt ({exc})") from None


# The language model's projections (Llama, Qwen2 and Qwen2-VL names); in a VLM only those under
# ``language_model`` (the vision tower's are named qkv/proj/fc1/fc2 anyway), so LoRA leaves the
# vision tower frozen.
LORA_PROJECTIONS = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"


def lora_config(rank: int, *, vision: bool) -> Any:
    """A PEFT ``LoraConfig`` of rank ``rank`` (alpha 2·rank) on the language model's projections,
    or None for ``rank`` 0."""
    if rank <= 0:
        return None
    from peft import LoraConfig

    target = rf".*language_model.*\.({LORA_PROJECTIONS})" if vision else LORA_PROJECTIONS.split("|")
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=target)


def check_modality(modality: str, model_path: str) -> None:
    """A clear error when the model does not fit the modality: a text model with image prompts or
    a vision-language model with text prompts."""
    from dmpo.models import is_vision_model

    vlm = is_vision_model(model_path)
    if modality == "vision" and not vlm:
        raise DmpoError(f"--modality vision needs a vision-language model; {model_path!r} is a text model "
                        "(leave --model out for the built-in tiny VLM)")
    if modality == "text" and vlm:
        raise DmpoError(f"{model_path!r} is a vision-language model: give --modality vision")


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
    """Train ``model_path`` (default: the built-in SFT model) with ``objective`` on prompts of
    ``tasks`` (NP-Bench names, ``math:...``, ``rg:...``) and save the final model, its tokenizer, ``history.json`` (TRL's log
    history) and ``dmpo_train.json`` (the settings) to ``output_dir``.

    ``settings`` are further :class:`TrainSettings` fields (num_generations, per_device_batch,
    learning_rate, objective_params, trainer, ...)."""
    return train(TrainSettings(objective=objective, model=None if model_path is None else os.fspath(model_path),
                               tasks=tuple(tasks), max_steps=max_steps, seed=seed,
                               output_dir=os.fspath(output_dir), **settings),
                 progress=progress, desc=desc)


def train(settings: TrainSettings, *, progress: bool = True, desc: str | None = None) -> TrainResult:
    """:func:`run_training` from a :class:`TrainSettings`."""
    from dmpo.engines.trl import (
        DMPOTrainer,
        build_npbench_dataset,
        build_npbench_vision_dataset,
        build_source_dataset,
        make_npbench_reward,
        make_source_reward,
    )
    from dmpo.models import load_model_and_tokenizer, require_chat_template

    started = time.perf_counter()
    apply_threads(settings.threads)
    output_dir(settings.output_dir, "output_dir")
    config = build_config(settings, progress=progress)
    resume = find_resume_checkpoint(settings.resume, settings.output_dir)
    prompts = {"prompt_style": settings.prompt_style, "chat": settings.chat,
               "system_prompt": settings.system_prompt}
    skipped: dict[str, dict[str, str]] = {}
    vision = settings.modality == "vision"
    if vision:  # image prompts (TRL's vision-language path), NP-Bench's reward
        dataset = build_npbench_vision_dataset(
            [split_spec(spec)[1] for spec in settings.tasks], difficulty=settings.difficulty,
            count=settings.num_prompts, seed=TRAIN_SEED_START, render=settings.render,
            prompt_style=settings.prompt_style, include_text=settings.include_text,
            system_prompt=settings.system_prompt)
        reward = make_npbench_reward()
    elif all(is_npbench(spec) for spec in settings.tasks):  # NP-Bench's own reward and metrics
        dataset = build_npbench_dataset([split_spec(spec)[1] for spec in settings.tasks],
                                        difficulty=settings.difficulty, count=settings.num_prompts,
                                        seed=TRAIN_SEED_START, **prompts)
        reward = make_npbench_reward()
    else:
        sources = get_sources(settings.tasks, difficulty=settings.difficulty)
        dataset = build_source_dataset(sources, count=settings.num_prompts, seed=TRAIN_SEED_START, **prompts)
        reward = make_source_reward(sources)
        skipped = {source.name: source.skipped for source in sources if source.skipped}
        for line in describe_skipped(sources):
            print(f"dmpo: {line}", flush=True)
    # The data first: a bad file is an error before the model is built or loaded.
    model_path = settings.model or str(ensure_default_model(SFTSettings(modality=settings.modality),
                                                            progress=progress))
    check_modality(settings.modality, model_path)
    model, tokenizer = load_model_and_tokenizer(model_path)  # the processor for a VLM
    if settings.chat and not vision:
        require_chat_template(tokenizer, model_path)
    trainer = DMPOTrainer(model, reward_funcs=reward, args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=lora_config(settings.lora_r, vision=vision))
    set_progress(trainer, progress, desc or f"train {settings.objective}", PROGRESS_METRICS)
    trainer.train(resume_from_checkpoint=resume)
    out = Path(settings.output_dir)
    if settings.lora_r:  # the merged model, loadable as any model (checkpoints hold the adapter)
        if trainer.is_world_process_zero():
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            for name, param in merged.named_parameters():
                if not bool(param.detach().isfinite().all()):
                    raise DmpoError(f"refusing to save the model: parameter {name} holds NaN or ±inf")
            merged.save_pretrained(str(out))
    else:
        trainer.save_model(str(out))  # by the main process only, under accelerate launch
    history = list(trainer.state.log_history)
    seconds = time.perf_counter() - started
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        record = {**asdict(settings), "model": model_path, "resumed_from": resume, "seconds": seconds,
                  "skipped": {name: {"count": len(ids), "first": dict(list(ids.items())[:20])}
                              for name, ids in skipped.items()}}
        (out / SETTINGS_FILE).write_text(json.dumps(record, indent=2, default=str))
        (out / HISTORY_FILE).write_text(json.dumps(history, indent=2))
    return TrainResult(settings, out, history, seconds, resume)
