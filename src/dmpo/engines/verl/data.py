"""NP-Bench instances in verl's RL dataset layout (parquet, one row per instance).

Columns, as verl's ``RLHFDataset`` and reward managers read them:

    data_source   "npbench" (the reward function's key)
    prompt        chat format: [{"role": "user", "content": <the task's prompt>}]
    ability       the task's category (e.g. "graph", "packing"), or the task name
    reward_model  {"style": "rule", "ground_truth": <the instance as JSON>}
    extra_info    {"split", "index", "id", "task", "difficulty"}

``ground_truth`` carries the whole instance (with its exact optimum), so
:func:`dmpo.engines.verl.reward.compute_score` needs nothing else to judge a completion.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dmpo import npbench
from dmpo.engines.verl.reward import DATA_SOURCE
from dmpo.errors import DmpoError

__all__ = ["save_verl_parquet", "verl_rows"]


def verl_rows(
    instances: Iterable[npbench.Instance], *, prompt_style: str = "nl", split: str = "train"
) -> list[dict[str, Any]]:
    """One verl row per instance (module docstring)."""
    rows = []
    for index, inst in enumerate(instances):
        task = npbench.get_task(inst.task)
        rows.append({
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": task.prompt(inst, style=prompt_style)}],
            "ability": npbench.category_of(inst.task) or inst.task,
            "reward_model": {"style": "rule", "ground_truth": inst.to_json()},
            "extra_info": {"split": split, "index": index, "id": inst.id, "task": inst.task,
                           "difficulty": inst.difficulty},
        })
    return rows


def save_verl_parquet(
    instances: Iterable[npbench.Instance], path: str | Path, *, prompt_style: str = "nl",
    split: str = "train",
) -> Path:
    """Write :func:`verl_rows` to a parquet file at ``path`` (needs pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DmpoError("writing verl parquet needs `pip install pyarrow` (or dmpo[verl])") from None
    rows = verl_rows(instances, prompt_style=prompt_style, split=split)
    if not rows:
        raise DmpoError("no instances to write")
    pq.write_table(pa.Table.from_pylist(rows), str(path))
    return Path(path)
