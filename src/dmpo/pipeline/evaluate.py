"""One evaluation from :class:`~dmpo.pipeline.settings.EvalSettings`: the instance set (a
generated held-out set, or a benchmark file), the model (default: the built-in SFT model), k
samples per instance, and the metrics: NP-Bench's when every task is an NP-Bench task, else
per source (``dmpo.evaluation.sources``: accuracy, pass@k, mean reward, distinct correct
answers) for math files, ``math:synthetic`` and reasoning-gym tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.evaluation.sampling import EvalResult, evaluate_model, heldout_instances
from dmpo.evaluation.sources import SourceEvalResult, evaluate_sources_model, heldout_items
from dmpo.pipeline.settings import EvalSettings, SFTSettings, apply_threads
from dmpo.pipeline.sources import get_sources, is_npbench
from dmpo.sources import split_spec


def uses_sources(settings: EvalSettings) -> bool:
    """Whether ``settings`` name a task beyond NP-Bench (scored per source)."""
    return settings.data is None and not all(is_npbench(spec) for spec in settings.tasks)


def instances_for(settings: EvalSettings, *, progress: bool = True) -> list[npbench.Instance]:
    """The instances ``settings`` names: ``data``'s file, else the generated held-out set."""
    if settings.data is not None:
        instances = npbench.load(settings.data)
        if not instances:
            raise DmpoError(f"{settings.data} holds no instances")
        return instances
    return heldout_instances([split_spec(spec)[1] for spec in settings.tasks], difficulty=settings.difficulty,
                             count=settings.count, seed=settings.eval_seed, progress=progress)


def evaluate(settings: EvalSettings, *, keep_completions: bool = False, progress: bool = True,
             desc: str = "evaluating") -> tuple[str, list[Any], EvalResult | SourceEvalResult]:
    """(model, items, result) of the evaluation ``settings`` describe: NP-Bench instances and an
    :class:`EvalResult`, or (with a math or reasoning-gym task) (source, item) pairs and a
    :class:`SourceEvalResult`."""
    from dmpo.pipeline.sft import ensure_default_model
    from dmpo.pipeline.train import check_modality

    apply_threads(settings.threads)
    sampling = {"k": settings.k, "temperature": settings.temperature, "top_p": settings.top_p,
                "max_new_tokens": settings.max_new_tokens, "batch_size": settings.batch_size,
                "seed": settings.seed, "prompt_style": settings.prompt_style, "chat": settings.chat,
                "system_prompt": settings.system_prompt, "keep_completions": keep_completions,
                "progress": progress, "desc": desc}
    if uses_sources(settings):
        sources = get_sources(settings.tasks, difficulty=settings.difficulty)
        items: list[Any] = heldout_items(sources, count=settings.count, seed=settings.eval_seed)
    else:
        items = instances_for(settings, progress=progress)
    vision = settings.modality == "vision"
    if vision and uses_sources(settings):
        raise DmpoError("--modality vision: image prompts exist for NP-Bench tasks only")
    if vision:
        outside = sorted({inst.task for inst in items} - set(npbench.list_tasks()))
        if outside:
            raise DmpoError(f"--modality vision: no image prompts for {outside}")
    model = settings.model or str(ensure_default_model(SFTSettings(modality=settings.modality), progress=progress))
    if settings.model is not None and not Path(settings.model).exists() and "/" not in settings.model:
        raise DmpoError(f"--model {settings.model}: no such folder")
    check_modality(settings.modality, model)
    if uses_sources(settings):
        return model, items, evaluate_sources_model(model, items, sources, **sampling)
    if vision:
        sampling = {**sampling, "render": settings.render, "include_text": settings.include_text}
    return model, items, evaluate_model(model, items, **sampling)
