"""One evaluation from :class:`~dmpo.pipeline.settings.EvalSettings`: the instance set (a
generated held-out set, or a benchmark file), the model (default: the built-in SFT model), k
samples per instance, NP-Bench's metrics."""

from __future__ import annotations

from pathlib import Path

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.evaluation.sampling import EvalResult, evaluate_model, heldout_instances
from dmpo.pipeline.settings import EvalSettings, apply_threads


def instances_for(settings: EvalSettings, *, progress: bool = True) -> list[npbench.Instance]:
    """The instances ``settings`` names: ``data``'s file, else the generated held-out set."""
    if settings.data is not None:
        instances = npbench.load(settings.data)
        if not instances:
            raise DmpoError(f"{settings.data} holds no instances")
        return instances
    return heldout_instances(settings.tasks, difficulty=settings.difficulty, count=settings.count,
                             seed=settings.eval_seed, progress=progress)


def evaluate(settings: EvalSettings, *, keep_completions: bool = False, progress: bool = True,
             desc: str = "evaluating") -> tuple[str, list[npbench.Instance], EvalResult]:
    """(model, instances, result) of the evaluation ``settings`` describe."""
    from dmpo.pipeline.sft import ensure_default_model

    apply_threads(settings.threads)
    instances = instances_for(settings, progress=progress)
    model = settings.model or str(ensure_default_model(progress=progress))
    if settings.model is not None and not Path(settings.model).exists() and "/" not in settings.model:
        raise DmpoError(f"--model {settings.model}: no such folder")
    result = evaluate_model(model, instances, k=settings.k, temperature=settings.temperature,
                            top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                            batch_size=settings.batch_size, seed=settings.seed,
                            prompt_style=settings.prompt_style, keep_completions=keep_completions,
                            progress=progress, desc=desc)
    return model, instances, result
