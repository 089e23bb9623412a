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
elsewhere the call runs in a daemon thread that is abandoned on time-out.
"""

from __future__ import annotations

import functools
import json
import math
import signal
import threading
from collections.abc import Callable
from typing import Any

from dmpo import npbench
from dmpo.errors import DmpoError

FAILURE_REWARD = 0.0


class RewardTimeout(Exception):
    """A reward computation ran past its time limit."""


def call_with_timeout(fn: Callable[..., Any], timeout_s: float | None, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, raising :class:`RewardTimeout` after ``timeout_s`` seconds (None: no limit)."""
    if timeout_s is None or timeout_s <= 0:
        return fn(*args, **kwargs)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(fn, timeout_s, args, kwargs)
    return _call_in_thread(fn, timeout_s, args, kwargs)


def _call_with_alarm(fn: Callable[..., Any], timeout_s: float, args: tuple, kwargs: dict) -> Any:
    def on_alarm(signum: int, frame: Any) -> None:
        raise RewardTimeout(f"reward computation exceeded {timeout_s:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _call_in_thread(fn: Callable[..., Any], timeout_s: float, args: tuple, kwargs: dict) -> Any:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise RewardTimeout(f"reward computation exceeded {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


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
