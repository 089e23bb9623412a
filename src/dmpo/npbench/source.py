"""NP-Bench as a task source (``dmpo.sources.base.TaskSource``, implemented structurally: this
package does not import ``dmpo.sources``): one task at one difficulty, items are instances.

    source = NPBenchSource("knapsack", difficulty="tiny")
    items = source.items(start=EVAL_SEED_START, count=16)
    verdict = source.score(items[0], "Answer: [0, 2]")    # npbench Verdict: reward, valid, correct, ...

``correct`` is an optimal answer (what pass@k counts), ``valid`` a feasible one.
"""

from __future__ import annotations

import json

from dmpo.errors import DmpoError
from dmpo.npbench.base import Instance, Verdict
from dmpo.npbench.registry import get_task


class NPBenchSource:
    kind = "npbench"
    generated = True

    def __init__(self, task: str, *, difficulty: str = "tiny") -> None:
        self.task = get_task(task)
        self.name = self.task.name
        self.difficulty = difficulty
        self.task.difficulty_params(difficulty)  # checks the difficulty

    @property
    def skipped(self) -> dict[str, str]:
        return {}

    def items(self, start: int = 0, count: int | None = None) -> list[Instance]:
        if count is None or count < 1:
            raise DmpoError(f"{self.name}: give a positive number of instances, got {count}")
        return [self.task.generate(seed, self.difficulty) for seed in range(start, start + count)]

    def item_for_id(self, item_id: str) -> Instance:
        prefix = f"{self.name}-{self.difficulty}-"
        seed = str(item_id)[len(prefix):] if str(item_id).startswith(prefix) else ""
        if not seed.isdigit():
            raise DmpoError(f"{self.name}: item ids look like '{prefix}<seed>', got {item_id!r}")
        return self.task.generate(int(seed), self.difficulty)

    def item_from_json(self, text: str) -> Instance:
        try:
            return Instance.from_dict(json.loads(text) if isinstance(text, str) else text)
        except json.JSONDecodeError as exc:
            raise DmpoError(f"the item column must hold instance JSON: {exc}") from None

    def prompt(self, item: Instance, style: str = "compact") -> str:
        return self.task.prompt(item, style=style)

    def score(self, item: Instance, completion: str) -> Verdict:
        return self.task.evaluate(item, completion)
