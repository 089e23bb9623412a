"""k sampled answers per instance from a causal LM (or, with image prompts, a vision-language
model), scored with NP-Bench's metrics.

    instances = heldout_instances(["knapsack"], count=16)       # seeds from 1_000_000
    result = evaluate_model("runs/sft", instances, k=8)
    print(format_table(result.summary))

Held-out instances use seeds from ``EVAL_SEED_START`` on (``dmpo.npbench.splits``), disjoint
from the seeds that supervised data and RL prompts are drawn from, so an evaluation never
scores an instance the model was trained on.

Scoring is a pure function of the completions (:func:`evaluate_completions`), so tests and
other samplers (vLLM, an API) reuse it without a model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from dmpo.errors import DmpoError
from dmpo.npbench import Instance, ItemScore, get_task, score_completions, summarize
from dmpo.npbench.scoring import qr_curve
from dmpo.npbench.splits import EVAL_SEED_START

# Columns of the one-line-per-model view (``headline``): rates and QR ×100, diversity as counts.
HEADLINE_METRICS: tuple[str, ...] = ("qr", "qr_best", "sr", "sr_best", "distinct_valid", "distinct_optimal")


@dataclass
class EvalResult:
    """Scores of one model on one instance set.

    ``summary`` is :func:`dmpo.npbench.summarize` (per task, category, overall of the text
    protocol); ``headline`` the unweighted mean over the tasks present (every task counts, also
    those outside the text protocol's categories); ``qr_curve[j-1]`` the expected best QR of j
    samples (×100); ``completions`` the raw samples when kept.
    """

    k: int
    items: list[ItemScore]
    summary: dict
    headline: dict[str, float]
    qr_curve: list[float]
    completions: list[list[str]] | None = None  # aligned with items
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "num_items": len(self.items),
            "headline": self.headline,
            "summary": self.summary,
            "qr_curve": self.qr_curve,
            "settings": self.settings,
            "items": [asdict(item) for item in self.items],
            **({"completions": [{"id": item.id, "completions": texts}
                                for item, texts in zip(self.items, self.completions)]}
               if self.completions is not None else {}),
        }


def heldout_instances(
    tasks: Sequence[str],
    *,
    difficulty: str = "tiny",
    count: int = 16,
    seed: int = EVAL_SEED_START,
    progress: bool = True,
) -> list[Instance]:
    """``count`` instances per task with seeds ``seed, seed+1, ...`` (held out by default)."""
    if count < 1:
        raise DmpoError(f"the evaluation set needs at least 1 instance per task, got count={count}")
    if not tasks:
        raise DmpoError("no tasks given for the evaluation set")
    names = [get_task(name).name for name in tasks]
    with tqdm(total=len(names) * count, desc="eval instances", unit="inst", disable=not progress) as bar:
        instances = []
        for name in names:
            for i in range(count):
                instances.append(get_task(name).generate(seed=seed + i, difficulty=difficulty))
                bar.update()
    return instances


def pass_k_for(k: int) -> tuple[int, ...]:
    """pass@1 and pass@k (one value when k = 1)."""
    return (1,) if k == 1 else (1, k)


def samples_per_item(items: Sequence[Any], completions: Sequence[Sequence[str]], noun: str) -> int:
    """k, the number of samples every item has; a clear error for an empty set, a count
    mismatch, or items with different (or zero) numbers of samples."""
    if not items:
        raise DmpoError(f"nothing to evaluate: the {noun} set is empty")
    if len(completions) != len(items):
        raise DmpoError(f"got completions for {len(completions)} items but {len(items)} {noun}s")
    ks = {len(c) for c in completions}
    if len(ks) != 1 or 0 in ks:
        raise DmpoError(f"every item needs the same positive number of samples, got {sorted(ks)}")
    (k,) = ks
    return k


def evaluate_completions(
    instances: Sequence[Instance],
    completions: Sequence[Sequence[str]],
    *,
    cap: bool = False,
    keep_completions: bool = False,
    settings: dict[str, Any] | None = None,
    protocol: str = "text",
) -> EvalResult:
    """Score ``completions[i]`` (the k samples of ``instances[i]``); every item needs the same k.
    ``protocol`` picks the summary's categories (``text``, or ``vision`` for image prompts)."""
    k = samples_per_item(instances, completions, "instance")
    items = [score_completions(inst, list(texts), cap=cap) for inst, texts in zip(instances, completions)]
    summary = summarize(items, protocol=protocol, pass_k=pass_k_for(k))
    return EvalResult(
        k=k,
        items=items,
        summary=summary,
        headline=headline(summary),
        qr_curve=qr_curve(items),
        completions=[list(texts) for texts in completions] if keep_completions else None,
        settings=dict(settings or {}),
    )


def headline(summary: dict) -> dict[str, float]:
    """Mean over the summary's tasks (each task weighted equally) of every metric."""
    rows = list(summary["tasks"].values())
    metrics = [m for m in rows[0] if m != "n"] if rows else []
    return {m: sum(r[m] for r in rows if m in r) / sum(m in r for r in rows) for m in metrics}


def _check_sampling(k: int, batch_size: int, max_new_tokens: int, temperature: float, top_p: float) -> None:
    if k < 1:
        raise DmpoError(f"k (samples per instance) must be at least 1, got {k}")
    if batch_size < 1 or max_new_tokens < 1:
        raise DmpoError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise DmpoError(f"need temperature ≥ 0 and 0 < top_p ≤ 1, got {temperature}, {top_p}")


def _generate_rows(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Any],
    encode: Any,
    *,
    k: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    progress: bool,
    desc: str,
    **generate_kwargs: Any,
) -> list[list[str]]:
    """The sampling loop of both prompt kinds: ``encode(batch)`` → model inputs, ``batch_size``
    rows per ``generate`` call under a forked RNG seeded with ``seed``; the decoded new tokens,
    k consecutive rows per prompt."""
    import torch

    texts: list[str] = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # top_k=0: plain temperature / nucleus sampling, whatever the model's generation config says.
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0 else {
        "do_sample": False}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        torch.manual_seed(seed)
        with tqdm(total=len(rows), desc=desc, unit="sample", disable=not progress) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                encoded = encode(batch).to(device)
                out = model.generate(**encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                     **generate_kwargs, **sampling)
                new_tokens = out[:, encoded["input_ids"].shape[1]:]
                texts.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
                bar.update(len(batch))
    model.train(was_training)
    return [texts[i * k:(i + 1) * k] for i in range(len(rows) // k)]


def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    k: int = 8,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    desc: str = "sampling",
    add_special_tokens: bool = True,
) -> list[list[str]]:
    """k completions per prompt with ``model.generate`` (greedy when temperature is 0).

    Rows are prompt-major (the k samples of a prompt are consecutive) and batched
    ``batch_size`` rows at a time; the sampling is reproducible for a given ``seed``.
    ``add_special_tokens=False`` for prompts that hold them already (rendered chat templates).
    """
    _check_sampling(k, batch_size, max_new_tokens, temperature, top_p)
    if tokenizer.pad_token_id is None:
        raise DmpoError("the tokenizer has no pad token; set tokenizer.pad_token first")

    def encode(batch: Sequence[str]) -> Any:
        return tokenizer(batch, return_tensors="pt", padding=True, padding_side="left",
                         add_special_tokens=add_special_tokens)

    return _generate_rows(model, tokenizer, [p for p in prompts for _ in range(k)], encode, k=k,
                          temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, seed=seed, progress=progress, desc=desc)


def sample_vision_completions(
    model: Any,
    processor: Any,
    prompts: Sequence[tuple[str, Any]],
    *,
    k: int = 8,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    desc: str = "sampling",
    system_prompt: str | None = None,
) -> list[list[str]]:
    """k completions per ``(text, image)`` prompt from a vision-language model: each prompt is a
    one-turn conversation (the image, then the text; an optional system message) rendered by the
    processor's chat template. Rows prompt-major, ``batch_size`` rows per ``generate`` call,
    reproducible for a given ``seed`` (as :func:`sample_completions`)."""
    from dmpo.sources import chat_messages

    _check_sampling(k, batch_size, max_new_tokens, temperature, top_p)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or not hasattr(processor, "image_processor"):
        raise DmpoError("image prompts need a vision-language model and its processor; this model has a plain "
                        "tokenizer (a text model): leave --modality vision off or give a VLM")

    def conversation(text: str, image: Any) -> list[dict[str, Any]]:
        messages = chat_messages(text, system_prompt)
        last = messages[-1]
        return [*messages[:-1], {"role": last["role"], "content": [{"type": "image", "image": image},
                                                                   {"type": "text", "text": last["content"]}]}]

    def encode(batch: Sequence[Any]) -> Any:
        return processor.apply_chat_template(batch, add_generation_prompt=True, tokenize=True, return_dict=True,
                                             return_tensors="pt",
                                             processor_kwargs={"padding": True, "padding_side": "left"})

    image_token = getattr(model.config, "image_token_id", None)
    # A sampled image placeholder would have no image features behind it.
    extra = {"suppress_tokens": [image_token]} if image_token is not None else {}
    rows = [conversation(text, image) for text, image in prompts for _ in range(k)]
    return _generate_rows(model, tokenizer, rows, encode, k=k, temperature=temperature, top_p=top_p,
                          max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress,
                          desc=desc, **extra)


def evaluate_model(
    model: str | os.PathLike | tuple[Any, Any],
    instances: Sequence[Instance],
    *,
    k: int = 8,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
    prompt_style: str = "compact",
    cap: bool = False,
    keep_completions: bool = False,
    progress: bool = True,
    desc: str = "evaluating",
    chat: bool = False,
    system_prompt: str | None = None,
    render: str | None = None,
    include_text: bool = False,
) -> EvalResult:
    """Sample k answers per instance from ``model`` (a folder / hub id, or ``(model,
    tokenizer)``) and score them. The same ``seed`` gives the same samples. ``chat``: prompts
    rendered as a conversation by the tokenizer's chat template (:func:`render_prompts`).

    ``render`` (``grid`` or ``drawing``): image prompts (``task.vision_prompt``) for a
    vision-language model (``(model, processor)``), scored with the same metrics and summarised
    with the vision protocol's categories."""
    if not instances:
        raise DmpoError("nothing to evaluate: the instance set is empty")
    settings = {"k": k, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
                "seed": seed, "prompt_style": prompt_style, "cap": cap, "chat": chat,
                "system_prompt": system_prompt, "model": None if isinstance(model, tuple) else os.fspath(model)}
    if render is not None:
        lm, processor = load_for_sampling(model)
        vision = [get_task(inst.task).vision_prompt(inst, render, include_text=include_text, style=prompt_style)
                  for inst in instances]
        completions = sample_vision_completions(
            lm, processor, [(v.text, v.image) for v in vision], k=k, temperature=temperature, top_p=top_p,
            max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress, desc=desc,
            system_prompt=system_prompt)
        return evaluate_completions(instances, completions, cap=cap, keep_completions=keep_completions,
                                    settings={**settings, "modality": "vision", "render": render,
                                              "include_text": include_text}, protocol="vision")
    lm, tokenizer = load_for_sampling(model, chat=chat)
    prompts = render_prompts(tokenizer, [get_task(inst.task).prompt(inst, style=prompt_style) for inst in instances],
                             chat=chat, system_prompt=system_prompt)
    completions = sample_completions(
        lm, tokenizer, prompts, k=k, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress, desc=desc,
        add_special_tokens=not chat,
    )
    return evaluate_completions(instances, completions, cap=cap, keep_completions=keep_completions,
                                settings=settings)


def load_for_sampling(model: str | os.PathLike | tuple[Any, Any], *, chat: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder / hub id (moved to the GPU when there is one), or as
    given; with ``chat``, a tokenizer without a chat template is an error (the built-in
    character tokenizer gets its own)."""
    from dmpo.models import load_model_and_tokenizer, require_chat_template

    if isinstance(model, tuple):
        lm, tokenizer = model
    else:
        lm, tokenizer = load_model_and_tokenizer(model)
        lm.to(_default_device())
    if chat:
        require_chat_template(tokenizer, "the model" if isinstance(model, tuple) else model)
    return lm, tokenizer


def render_prompts(tokenizer: Any, prompts: Sequence[str], *, chat: bool = False,
                   system_prompt: str | None = None) -> list[str]:
    """The prompts as given, or with ``chat`` each rendered as a one-turn conversation (an
    optional system message, the prompt as the user's) by the tokenizer's chat template, with
    the generation prompt. Rendered prompts hold their special tokens: tokenize them with
    ``add_special_tokens=False``."""
    if not chat:
        return list(prompts)
    from dmpo.sources import chat_messages

    return [tokenizer.apply_chat_template(chat_messages(p, system_prompt), tokenize=False,
                                          add_generation_prompt=True) for p in prompts]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
