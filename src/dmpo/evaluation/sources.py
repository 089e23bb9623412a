"""k sampled answers per item of any task source (NP-Bench, math, reasoning-gym), scored per source:
accuracy, success@k, pass@k, mean reward, well-formed rate, distinct correct answers@k.

    sources = [MathSource("math:synthetic"), ReasoningGymSource("rg:countdown")]
    items = heldout_items(sources, count=16)                 # seeds from EVAL_SEED_START
    result = evaluate_sources_model("runs/x", items, k=8)
    print(format_source_table(result.summary))

Scoring is a pure function of the completions (:func:`score_source_completions`), so
``dmpo bench score math:FILE PREDICTIONS`` and other samplers reuse it without a model.

Each completion is judged under ``timeout_s``; a judgement that raises or times out scores as
no answer (reward 0) and is counted (``failed``); items a source skipped while loading (a gold
answer that cannot be parsed) are counted (``skipped``), never scored.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dmpo.errors import DmpoError
from dmpo.evaluation.sampling import (
    load_for_sampling,
    pass_k_for,
    render_prompts,
    sample_completions,
    samples_per_item,
)
from dmpo.npbench.scoring import pass_at_k
from dmpo.npbench.splits import EVAL_SEED_START
from dmpo.sources import RewardTimeout, call_with_timeout, failed_verdict

# Rates ×100; reward as is; distinct answers as counts per item.
SOURCE_METRICS: tuple[str, ...] = ("accuracy", "success", "reward", "well_formed", "distinct_correct",
                                   "distinct_valid")


@dataclass
class SourceItemScore:
    """Metrics of one item from its k sampled answers."""

    id: str
    source: str
    k: int
    num_correct: int
    num_valid: int
    num_well_formed: int
    reward_mean: float
    distinct_correct: int
    distinct_valid: int
    failed: int  # judgements that raised or timed out

    def pass_at(self, j: int) -> float:
        """Unbiased pass@j, "pass" = a correct answer (NP-Bench: an optimal one)."""
        return pass_at_k(self.k, self.num_correct, j)


def judge(source: Any, item: Any, completion: str, timeout_s: float | None = 10.0) -> tuple[Any, bool]:
    """(verdict, failed): the source's verdict under ``timeout_s``; a judgement that raises
    (anything but a DmpoError) or times out, or a non-finite reward, is a failed verdict."""
    try:
        verdict = call_with_timeout(source.score, timeout_s, item, completion)
        if not math.isfinite(float(verdict.reward)):
            return failed_verdict(f"non-finite reward {verdict.reward}"), True
        return verdict, False
    except DmpoError:
        raise
    except RewardTimeout as exc:
        return failed_verdict(str(exc)), True
    except Exception as exc:
        return failed_verdict(f"{type(exc).__name__}: {exc}"[:200]), True


def score_source_item(source: Any, item: Any, completions: Sequence[str], *,
                      timeout_s: float | None = 10.0) -> SourceItemScore:
    if not completions:
        raise DmpoError(f"item {item.id!r} has no sampled answers to score")
    judged = [judge(source, item, text, timeout_s) for text in completions]
    verdicts = [v for v, _ in judged]
    return SourceItemScore(
        id=str(item.id),
        source=source.name,
        k=len(verdicts),
        num_correct=sum(bool(v.correct) for v in verdicts),
        num_valid=sum(bool(v.valid) for v in verdicts),
        num_well_formed=sum(bool(v.well_formed) for v in verdicts),
        reward_mean=sum(float(v.reward) for v in verdicts) / len(verdicts),
        distinct_correct=len({v.answer for v in verdicts if v.correct and v.answer is not None}),
        distinct_valid=len({v.answer for v in verdicts if v.valid and v.answer is not None}),
        failed=sum(failed for _, failed in judged),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize_sources(items: Sequence[SourceItemScore], sources: Sequence[Any], *,
                      pass_k: Sequence[int] = (1,)) -> dict:
    """Per source: ``n`` items, ``skipped`` (left out while loading), ``accuracy`` (correct single
    samples, %), ``success`` (items with a correct sample among k, %), ``pass@j`` (%), ``reward``
    (mean), ``well_formed`` (%), ``distinct_correct`` / ``distinct_valid`` (distinct canonical
    answers per item), ``failed`` (judgements that raised or timed out). ``overall``: the
    unweighted mean over sources of every rate."""
    by_source: dict[str, list[SourceItemScore]] = defaultdict(list)
    for item in items:
        by_source[item.source].append(item)
    rows: dict[str, dict[str, Any]] = {}
    for source in sources:
        mine = by_source.get(source.name, [])
        row: dict[str, Any] = {"n": len(mine), "skipped": len(source.skipped)}
        if mine:
            row.update({
                "accuracy": 100 * _mean([r.num_correct / r.k for r in mine]),
                "success": 100 * _mean([float(r.num_correct > 0) for r in mine]),
                "reward": _mean([r.reward_mean for r in mine]),
                "well_formed": 100 * _mean([r.num_well_formed / r.k for r in mine]),
                "distinct_correct": _mean([r.distinct_correct for r in mine]),
                "distinct_valid": _mean([r.distinct_valid for r in mine]),
            })
            for j in pass_k:
                usable = [r for r in mine if r.k >= j]
                if usable:
                    row[f"pass@{j}"] = 100 * _mean([r.pass_at(j) for r in usable])
        row["failed"] = sum(r.failed for r in mine)
        rows[source.name] = row
    scored = [row for row in rows.values() if row["n"]]
    metrics = [m for m in (*SOURCE_METRICS, *(f"pass@{j}" for j in pass_k))
               if any(m in row for row in scored)]
    overall = {m: _mean([row[m] for row in scored if m in row]) for m in metrics}
    return {"sources": rows, "overall": overall}


def format_source_table(summary: dict, *, title: str = "task sources") -> str:
    """A plain-text table, one row per source, then the mean over sources."""
    pass_columns = sorted((k for k in summary["overall"] if k.startswith("pass@")),
                          key=lambda k: int(k.split("@")[1]))
    columns = ["n", "skipped", "accuracy", "success", *pass_columns, "reward", "well_formed",
               "distinct_correct", "failed"]
    width = max([24, *(len(name) + 2 for name in summary["sources"])])
    lines = [title, f"{'':{width}}" + "".join(f"{c:>17}" for c in columns)]

    def cell(column: str, values: dict) -> str:
        if column not in values:
            return f"{'-':>17}"
        value = values[column]
        return f"{value:>17d}" if isinstance(value, int) else f"{value:>17.2f}"

    for name, values in summary["sources"].items():
        lines.append(f"{name:{width}}" + "".join(cell(c, values) for c in columns))
    if len(summary["sources"]) > 1 and summary["overall"]:
        lines.append(f"{'MEAN':{width}}" + "".join(cell(c, summary["overall"]) for c in columns))
    return "\n".join(lines)


@dataclass
class SourceEvalResult:
    """Scores of one model (or one predictions file) on items of several sources."""

    k: int
    items: list[SourceItemScore]
    summary: dict
    completions: list[list[str]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> dict[str, float]:
        return dict(self.summary["overall"])

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "num_items": len(self.items),
            "headline": self.headline,
            "summary": self.summary,
            "settings": self.settings,
            "items": [asdict(item) for item in self.items],
            **({"completions": [{"id": item.id, "source": item.source, "completions": texts}
                                for item, texts in zip(self.items, self.completions)]}
               if self.completions is not None else {}),
        }


def heldout_items(sources: Sequence[Any], *, count: int = 16, seed: int = EVAL_SEED_START) -> list[tuple[Any, Any]]:
    """(source, item) pairs: ``count`` items with seeds from ``seed`` (held out by default) of
    each generated source, every item of a file source."""
    if count < 1:
        raise DmpoError(f"the evaluation set needs at least 1 item per source, got count={count}")
    pairs = [(source, item) for source in sources for item in source.items(start=seed, count=count)]
    if not pairs:
        raise DmpoError("nothing to evaluate: the sources hold no items")
    return pairs


def score_source_completions(
    pairs: Sequence[tuple[Any, Any]],
    completions: Sequence[Sequence[str]],
    sources: Sequence[Any],
    *,
    pass_k: Sequence[int] | None = None,
    timeout_s: float | None = 10.0,
    keep_completions: bool = False,
    settings: dict[str, Any] | None = None,
) -> SourceEvalResult:
    """Score ``completions[i]`` (the k samples of ``pairs[i]``); every item needs the same k."""
    k = samples_per_item(pairs, completions, "item")
    items = [score_source_item(source, item, list(texts), timeout_s=timeout_s)
             for (source, item), texts in zip(pairs, completions)]
    summary = summarize_sources(items, sources, pass_k=pass_k or pass_k_for(k))
    return SourceEvalResult(k, items, summary,
                            [list(c) for c in completions] if keep_completions else None, dict(settings or {}))


def evaluate_sources_model(
    model: str | os.PathLike | tuple[Any, Any],
    pairs: Sequence[tuple[Any, Any]],
    sources: Sequence[Any],
    *,
    k: int = 8,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
    prompt_style: str = "compact",
    chat: bool = False,
    system_prompt: str | None = None,
    timeout_s: float | None = 10.0,
    keep_completions: bool = False,
    progress: bool = True,
    desc: str = "evaluating",
) -> SourceEvalResult:
    """Sample k answers per item from ``model`` and score them per source."""
    if not pairs:
        raise DmpoError("nothing to evaluate: the item set is empty")
    lm, tokenizer = load_for_sampling(model, chat=chat)
    prompts = render_prompts(tokenizer, [source.prompt(item, style=prompt_style) for source, item in pairs],
                             chat=chat, system_prompt=system_prompt)
    completions = sample_completions(
        lm, tokenizer, prompts, k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
        batch_size=batch_size, seed=seed, progress=progress, desc=desc, add_special_tokens=not chat)
    settings = {"k": k, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
                "seed": seed, "prompt_style": prompt_style, "chat": chat, "system_prompt": system_prompt,
                "model": None if isinstance(model, tuple) else os.fspath(model)}
    return score_source_completions(pairs, completions, sources, timeout_s=timeout_s,
                                    keep_completions=keep_completions, settings=settings)
