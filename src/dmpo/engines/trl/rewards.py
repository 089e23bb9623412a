"""Reward functions for TRL: NP-Bench's verifiable reward, and a guard for any reward function.

TRL calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns,
trainer_state=..., log_extra=..., log_metric=...)`` with one entry per completion, the dataset's
columns included (``instance`` carries the NP-Bench instance as JSON).

Failure policy. A reward that raises or runs past its time limit costs *that completion* its
reward: it gets ``failure_reward`` (0.0 by default, the reward of an answer that is not even well
formed), never ``None``, so every completion keeps a finite raw reward (DMPO's target is a softmax
over raw rewards and has no use for a missing one). A reward that is NaN, ±inf or not a number
is a failure too. Failures are counted on the function
(``.failures``, ``.calls``) and logged every step through TRL's ``log_metric`` as a fraction.
A :class:`~dmpo.errors.DmpoError` is not a failure of the completion but of the data or the
configuration (a malformed instance, a missing column): it propagates and stops the run.

Time limits use ``SIGALRM`` in the main thread (it interrupts Python code, not a long C call);
elsewhere the call runs in a daemon thread that is abandoned on time-out
(:func:`dmpo.sources.timeouts.call_with_timeout`, re-exported here; limits nest).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError
from dmpo.sources.timeouts import RewardTimeout, call_with_timeout

__all__ = ["FAILURE_REWARD", "RewardTimeout", "call_with_timeout", "make_npbench_reward",
           "make_source_reward", "npbench_reward", "safe_reward"]

FAILURE_REWARD = 0.0


def _completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or the content of the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return str(completion)


def _noop_log(*args: Any, **kwargs: Any) -> None:
    return None


def safe_reward(
    func: Callable[..., list[float | None]],
    *,
    timeout_s: float | None = 60.0,
    failure_reward: float = FAILURE_REWARD,
    name: str | None = None,
) -> Callable[..., list[float | None]]:
    """Guard a TRL reward function so that a failure costs a completion its reward, never the run.

    The batch is scored in one call under ``timeout_s``; if that call raises, times out, or
    returns the wrong number of rewards, every completion is scored alone (each under
    ``timeout_s``) and only those that fail get ``failure_reward``. The returned function keeps
    ``func``'s name (TRL names its reward metrics after it), counts ``.failures`` and ``.calls``
    (completions), and logs ``reward_failures/<name>`` (the failed fraction of the batch).
    """
    label = name or getattr(func, "__name__", type(func).__name__)

    @functools.wraps(func)
    def guarded(*, completions: list[Any], log_metric: Callable | None = None, **kwargs: Any) -> list[float | None]:
        n = len(completions)
        try:
            rewards = list(call_with_timeout(func, timeout_s, completions=completions, log_metric=log_metric, **kwargs))
            if len(rewards) != n:
                raise ValueError(f"{label} returned {len(rewards)} rewards for {n} completions")
            failed = 0
        except DmpoError:
            raise
        except Exception:
            rewards, failed = [], 0
            for i in range(n):
                item = {k: v[i : i + 1] if isinstance(v, list) and len(v) == n else v for k, v in kwargs.items()}
                item["log_extra"] = _noop_log
                try:
                    (reward,) = call_with_timeout(
                        func, timeout_s, completions=completions[i : i + 1], log_metric=_noop_log, **item
                    )
                except DmpoError:
                    raise
                except Exception:
                    reward, failed = failure_reward, failed + 1
                rewards.append(reward)
        # A non-finite or non-numeric score is a failure of that completion too: it must never
        # reach the advantages or DMPO's target (None stays None: TRL's "not scored here").
        for i, reward in enumerate(rewards):
            if reward is not None and not _is_finite_number(reward):
                rewards[i], failed = failure_reward, failed + 1
        guarded.calls += n
        guarded.failures += failed
        if log_metric is not None:
            log_metric(f"reward_failures/{label}", failed / max(n, 1))
        return rewards

    guarded.__name__ = label
    guarded.calls = 0
    guarded.failures = 0
    guarded.dmpo_guarded = True  # the trainer does not wrap it again
    return guarded


def _is_finite_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def make_npbench_reward(
    *, timeout_s: float | None = 5.0, failure_reward: float = FAILURE_REWARD
) -> Callable[..., list[float]]:
    """Build the NP-Bench reward function (``npbench_reward`` is one with the defaults).

    Reward of a completion: ``0.1·well_formed + QR·valid`` (``Task.evaluate``). Each completion is
    judged under its own ``timeout_s``; a judgement that raises or times out gives
    ``failure_reward`` and is counted. Logged every call through TRL's ``log_metric``:
    ``npbench/valid_frac``, ``npbench/well_formed_frac``, ``npbench/quality_ratio`` (mean QR),
    ``npbench/distinct_valid_answers`` (mean over groups of the number of distinct canonical valid
    answers) and ``npbench/failed_frac``. A group is a run of consecutive completions of the same
    instance, which is how TRL orders them when it scores (a prompt's G completions are
    adjacent; the group trainers keep each group on one process).
    """

    def npbench_reward(
        completions: list[Any], instance: list[str], log_metric: Callable | None = None, **kwargs: Any
    ) -> list[float]:
        if len(instance) != len(completions):
            raise DmpoError(f"{len(completions)} completions but {len(instance)} instances")
        parsed: dict[str, npbench.Instance] = {}
        rewards: list[float] = []
        valid: list[bool] = []
        well_formed: list[bool] = []
        qr: list[float] = []
        answers: list[Any] = []
        failed = 0
        for completion, key in zip(completions, instance):
            inst = parsed.get(key)
            if inst is None:
                inst = parsed[key] = _parse_instance(key)
            try:
                verdict = call_with_timeout(
                    npbench.get_task(inst.task).evaluate, timeout_s, inst, _completion_text(completion)
                )
            except DmpoError:
                raise
            except Exception:
                failed += 1
                rewards.append(failure_reward)
                valid.append(False)
                well_formed.append(False)
                qr.append(0.0)
                answers.append(None)
                continue
            rewards.append(float(verdict.reward))
            valid.append(verdict.valid)
            well_formed.append(verdict.well_formed)
            qr.append(verdict.quality_ratio if verdict.valid else 0.0)
            answers.append(verdict.answer if verdict.valid else None)
        npbench_reward.calls += len(completions)
        npbench_reward.failures += failed
        if log_metric is not None and completions:
            n = len(completions)
            log_metric("npbench/valid_frac", sum(valid) / n)
            log_metric("npbench/well_formed_frac", sum(well_formed) / n)
            log_metric("npbench/quality_ratio", sum(qr) / n)
            log_metric("npbench/distinct_valid_answers", mean_distinct_per_group(instance, answers))
            log_metric("npbench/failed_frac", failed / n)
        return rewards

    npbench_reward.calls = 0
    npbench_reward.failures = 0
    npbench_reward.dmpo_guarded = True  # guards each completion itself
    return npbench_reward


def make_source_reward(
    sources: Any, *, timeout_s: float | None = 5.0, failure_reward: float = FAILURE_REWARD
) -> Callable[..., list[float]]:
    """Build the reward of task sources (``dmpo.sources.TaskSource``: NP-Bench, math, reasoning-gym)
    for a dataset of :func:`~dmpo.engines.trl.data.build_source_dataset` (columns ``item`` and
    ``source``). ``sources``: the sources, or a mapping of their names to them.

    Reward of a completion: the source's verdict's ``reward`` (math: 0.1·well_formed + correct;
    reasoning-gym: 0.1·well_formed + its score; NP-Bench: 0.1·well_formed + QR·valid). The same
    failure policy as :func:`make_npbench_reward`: each completion is judged under its own
    ``timeout_s``; a judgement that raises or times out, or a reward that is NaN, ±inf or not a
    number, gives ``failure_reward`` and is counted; a DmpoError (a bad item) stops the run.
    Logged every call: ``source/correct_frac``, ``source/well_formed_frac``,
    ``source/distinct_correct_answers`` (mean over groups of the distinct canonical correct
    answers), ``source/failed_frac``, and ``source/correct_frac/<name>`` per source when there are
    several.
    """
    by_name = dict(sources) if isinstance(sources, dict) else {s.name: s for s in sources}
    if not by_name:
        raise DmpoError("make_source_reward needs at least one task source")

    def source_reward(
        completions: list[Any], item: list[str], source: list[str], log_metric: Callable | None = None,
        **kwargs: Any,
    ) -> list[float]:
        if not len(item) == len(source) == len(completions):
            raise DmpoError(f"{len(completions)} completions but {len(item)} items and {len(source)} sources")
        parsed: dict[tuple[str, str], Any] = {}
        rewards: list[float] = []
        correct: list[bool] = []
        well_formed: list[bool] = []
        answers: list[Any] = []
        failed = 0
        for completion, key, name in zip(completions, item, source):
            judge = by_name.get(name)
            if judge is None:
                raise DmpoError(f"the dataset names source {name!r}, which this reward does not have "
                                f"(it has {sorted(by_name)})")
            obj = parsed.get((name, key))
            if obj is None:
                obj = parsed[(name, key)] = judge.item_from_json(key)
            try:
                verdict = call_with_timeout(judge.score, timeout_s, obj, _completion_text(completion))
                reward = float(verdict.reward)
                if not math.isfinite(reward):
                    raise ValueError(f"non-finite reward {reward}")
            except DmpoError:
                raise
            except Exception:
                failed += 1
                rewards.append(failure_reward)
                correct.append(False)
                well_formed.append(False)
                answers.append(None)
                continue
            rewards.append(reward)
            correct.append(bool(verdict.correct))
            well_formed.append(bool(verdict.well_formed))
            answers.append(verdict.answer if verdict.correct else None)
        source_reward.calls += len(completions)
        source_reward.failures += failed
        if log_metric is not None and completions:
            n = len(completions)
            log_metric("source/correct_frac", sum(correct) / n)
            log_metric("source/well_formed_frac", sum(well_formed) / n)
            log_metric("source/distinct_correct_answers", mean_distinct_per_group(item, answers))
            log_metric("source/failed_frac", failed / n)
            if len(by_name) > 1:
                for name in sorted(set(source)):
                    mine = [c for c, s in zip(correct, source) if s == name]
                    log_metric(f"source/correct_frac/{name}", sum(mine) / len(mine))
        return rewards

    source_reward.calls = 0
    source_reward.failures = 0
    source_reward.dmpo_guarded = True  # guards each completion itself
    return source_reward


def _parse_instance(text: str) -> npbench.Instance:
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise DmpoError(f"the instance column must hold instance JSON: {exc}") from None
    return npbench.Instance.from_dict(data)


def mean_distinct_per_group(group_keys: list[Any], answers: list[Any]) -> float:
    """Mean over runs of equal consecutive ``group_keys`` of the number of distinct non-None answers."""
    counts: list[int] = []
    start = 0
    for end in range(1, len(group_keys) + 1):
        if end == len(group_keys) or group_keys[end] != group_keys[start]:
            counts.append(len({a for a in answers[start:end] if a is not None}))
            start = end
    return sum(counts) / len(counts) if counts else 0.0


npbench_reward = make_npbench_reward()
