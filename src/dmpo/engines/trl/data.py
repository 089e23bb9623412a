"""NP-Bench prompts as a ``datasets.Dataset`` for TRL's trainers.

Columns: ``prompt`` (text), ``instance`` (the instance as JSON; TRL hands it to reward functions
as a keyword argument), ``task`` (its name). Instance ``seed + i`` of each task is the same on
every machine, so a dataset is fully described by its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError


def build_npbench_dataset(
    tasks: str | Sequence[str],
    *,
    difficulty: str = "tiny",
    count: int = 64,
    seed: int = 0,
    prompt_style: str = "compact",
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
    rows: dict[str, list[str]] = {"prompt": [], "instance": [], "task": []}
    for i in range(count):
        for task in task_objects:
            instance = task.generate(seed + i, difficulty)
            rows["prompt"].append(task.prompt(instance, style=prompt_style))
            rows["instance"].append(instance.to_json())
            rows["task"].append(task.name)
    return Dataset.from_dict(rows)
