"""NP-Bench's verifiable reward as a verl custom reward function.

verl's reward managers call ``compute_score(data_source=..., solution_str=..., ground_truth=...,
extra_info=...)`` once per completion (``reward.custom_reward_function.path`` = this file,
``name=compute_score``), with ``ground_truth`` the row's ``reward_model.ground_truth``: here the
NP-Bench instance as JSON (``dmpo bench generate --format verl``).

Reward: ``0.1·well_formed + QR·valid`` (``Task.evaluate``). Failure policy, as the TRL reward's:
a judgement that raises or runs past ``TIMEOUT_S`` costs that completion its reward (it gets
``FAILURE_REWARD``, 0.0, the reward of an answer that is not even well formed), never the run;
a ground truth that is not an NP-Bench instance is a data error and raises ``DmpoError``. The
returned dict carries ``score`` (the reward) and, for verl's logs, ``valid``, ``well_formed``,
``quality_ratio`` and ``failed`` (each 0/1 or a float).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.sources.timeouts import call_with_timeout

__all__ = ["DATA_SOURCE", "FAILURE_REWARD", "TIMEOUT_S", "compute_score"]

DATA_SOURCE = "npbench"
FAILURE_REWARD = 0.0
TIMEOUT_S = 5.0


@functools.lru_cache(maxsize=4096)
def _instance(ground_truth: str) -> npbench.Instance:
    try:
        data = json.loads(ground_truth)
    except (TypeError, json.JSONDecodeError) as exc:
        raise DmpoError(f"reward_model.ground_truth must hold NP-Bench instance JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DmpoError("reward_model.ground_truth must hold an NP-Bench instance (a JSON object)")
    return npbench.Instance.from_dict(data)


def _failed() -> dict[str, Any]:
    return {"score": FAILURE_REWARD, "valid": 0.0, "well_formed": 0.0, "quality_ratio": 0.0,
            "failed": 1.0}


def compute_score(
    data_source: str | None = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The NP-Bench reward of one completion (module docstring)."""
    if not isinstance(ground_truth, str):
        raise DmpoError(f"ground_truth must be NP-Bench instance JSON, got {type(ground_truth).__name__}")
    inst = _instance(ground_truth)
    text = solution_str if isinstance(solution_str, str) else str(solution_str)
    try:
        verdict = call_with_timeout(npbench.get_task(inst.task).evaluate, TIMEOUT_S, inst, text)
        reward = float(verdict.reward)
    except DmpoError:
        raise
    except Exception:
        return _failed()
    if not math.isfinite(reward):
        return _failed()
    return {
        "score": reward,
        "valid": float(verdict.valid),
        "well_formed": float(verdict.well_formed),
        "quality_ratio": float(verdict.quality_ratio) if verdict.valid else 0.0,
        "failed": 0.0,
    }
