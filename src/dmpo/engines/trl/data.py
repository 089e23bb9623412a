"""Prompts as a ``datasets.Dataset`` for TRL's trainers: NP-Bench's (:func:`build_npbench_dataset`)
and any task sources' (:func:`build_source_dataset`).

NP-Bench columns: ``prompt``, ``instance`` (the instance as JSON; TRL hands it to reward
functions as a keyword argument), ``task`` (its name). Source columns: ``prompt``, ``item`` (the
item as JSON), ``source`` (the source's name). Instance ``seed + i`` of each task is the same on
every machine, so a dataset is fully described by its arguments.

``prompt`` is text, or with ``chat=True`` a conversation (an optional system message and the
prompt as the user's), which TRL renders with the tokenizer's chat template.

Vision (:func:`build_npbench_vision_dataset`): TRL's multimodal layout — ``prompt`` a conversation
(the question text as the user's message), ``image`` the instance's picture
(``task.vision_prompt``), plus ``instance`` and ``task``; TRL puts the image block before the
user's text and the processor renders both.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.sources import chat_messages


def build_npbench_dataset(
    tasks: str | Sequence[str],
    *,
    difficulty: str = "tiny",
    count: int = 64,
    seed: int = 0,
    prompt_style: str = "compact",
    chat: bool = False,
    system_prompt: str | None = None,
) -> Any:
    """``count`` instances of each task in ``tasks`` (seeds ``seed … seed+count−1``), interleaved
    task by task, as a Dataset with columns ``prompt``, ``instance`` and ``task``."""
    from datasets import Dataset

    names = [tasks] if isinstance(tasks, str) else list(tasks)
    if not names:
        raise DmpoError(f"no tasks given; valid tasks: {npbench.list_tasks()}")
    if count <= 0:
        raise DmpoError(f"count must be a positive number of instances per task, got {count}")
    task_objects = [npbench.get_task(name) for name in names]
    rows: dict[str, list[Any]] = {"prompt": [], "instance": [], "task": []}
    for i in range(count):
        for task in task_objects:
            instance = task.generate(seed + i, difficulty)
            text = task.prompt(instance, style=prompt_style)
            rows["prompt"].append(chat_messages(text, system_prompt) if chat else text)
            rows["instance"].append(instance.to_json())
            rows["task"].append(task.name)
    return Dataset.from_dict(rows)


def build_npbench_vision_dataset(
    tasks: str | Sequence[str],
    *,
    difficulty: str = "tiny",
    count: int = 64,
    seed: int = 0,
    render: str = "grid",
    prompt_style: str = "compact",
    include_text: bool = False,
    system_prompt: str | None = None,
) -> Any:
    """``count`` instances of each task (seeds ``seed …``), interleaved, as a Dataset with columns
    ``prompt`` (a conversation), ``image`` (``task.vision_prompt(instance, render)``'s RGB picture),
    ``instance`` and ``task``: TRL's vision-language layout."""
    from datasets import Dataset

    names = [tasks] if isinstance(tasks, str) else list(tasks)
    if not names:
        raise DmpoError(f"no tasks given; valid tasks: {npbench.list_tasks()}")
    if count <= 0:
        raise DmpoError(f"count must be a positive number of instances per task, got {count}")
    task_objects = [npbench.get_task(name) for name in names]
    rows: dict[str, list[Any]] = {"prompt": [], "image": [], "instance": [], "task": []}
    for i in range(count):
        for task in task_objects:
            instance = task.generate(seed + i, difficulty)
            vision = task.vision_prompt(instance, render, include_text=include_text, style=prompt_style)
            rows["prompt"].append(chat_messages(vision.text, system_prompt))
            rows["image"].append(vision.image)
            rows["instance"].append(instance.to_json())
            rows["task"].append(task.name)
    return Dataset.from_dict(rows)


def build_source_dataset(
    sources: Sequence[Any],
    *,
    count: int = 64,
    seed: int = 0,
    prompt_style: str = "compact",
    chat: bool = False,
    system_prompt: str | None = None,
) -> Any:
    """Items of task sources (``dmpo.sources.TaskSource``) as a Dataset with columns ``prompt``,
    ``item`` and ``source``, interleaved source by source: ``count`` items with seeds ``seed …``
    of a generated source, every item of a file source."""
    from datasets import Dataset

    if not sources:
        raise DmpoError("no task sources given")
    if count <= 0:
        raise DmpoError(f"count must be a positive number of items per source, got {count}")
    per_source = [[(source, item) for item in source.items(start=seed, count=count)] for source in sources]
    rows: dict[str, list[Any]] = {"prompt": [], "item": [], "source": []}
    for group in zip_longest(*per_source):
        for entry in group:
            if entry is None:
                continue
            source, item = entry
            text = source.prompt(item, style=prompt_style)
            rows["prompt"].append(chat_messages(text, system_prompt) if chat else text)
            rows["item"].append(item.to_json())
            rows["source"].append(source.name)
    if not rows["item"]:
        raise DmpoError(f"the sources {[s.name for s in sources]} hold no items")
    return Dataset.from_dict(rows)
