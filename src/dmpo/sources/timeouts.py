"""Time limits for judging untrusted completions: one helper for every scorer and reward.

``call_with_timeout(fn, timeout_s, ...)`` uses ``SIGALRM`` in the main thread (it interrupts
Python code, not a long C call such as a huge integer power: scorers screen those out before
they reach sympy, see ``dmpo.sources.extract.too_costly``); elsewhere the call runs in a daemon
thread that is abandoned on time-out.

Calls nest: an inner limit never outlives an outer one (it is cut to the time the outer has
left), and the outer alarm is re-armed with its remaining time when the inner call returns, so
a reward guard around a scorer that sets its own limit keeps its own deadline.

Libraries with their own ``signal.alarm`` (math-verify) must be called with their time-out
off inside this helper: two users of one process-wide alarm would cancel each other, and
theirs refuses to run off the main thread.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any


class RewardTimeout(Exception):
    """A reward or scoring computation ran past its time limit."""


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

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)  # 0.0: no alarm is pending
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(timeout_s, outer_left) if outer_left > 0 else timeout_s)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if outer_left > 0:  # re-arm the enclosing limit with what it has left (fires at once if spent)
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 1e-4))


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
