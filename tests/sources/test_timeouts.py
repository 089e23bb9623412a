"""call_with_timeout nests (an inner limit keeps the outer one alive) and works off the main thread."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dmpo.sources import RewardTimeout, call_with_timeout


def test_an_inner_limit_leaves_the_outer_limit_armed():
    def inner_then_hang():
        assert call_with_timeout(sum, 5.0, [1, 2]) == 3  # an inner call that returns at once
        time.sleep(5)  # the outer limit must still fire

    started = time.perf_counter()
    with pytest.raises(RewardTimeout):
        call_with_timeout(inner_then_hang, 0.2)
    assert time.perf_counter() - started < 2.0
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed


def test_an_inner_limit_is_cut_to_the_outer_one():
    started = time.perf_counter()
    with pytest.raises(RewardTimeout):
        call_with_timeout(call_with_timeout, 0.2, time.sleep, 30.0, 5)
    assert time.perf_counter() - started < 2.0


def test_the_reward_of_an_outer_timeout_is_not_swallowed():
    def swallow_inner():
        try:
            call_with_timeout(time.sleep, 30.0, 5)
        except RewardTimeout:
            time.sleep(5)  # the outer limit (re-armed) still fires here

    with pytest.raises(RewardTimeout):
        call_with_timeout(swallow_inner, 0.2)


def test_math_verify_is_usable_off_the_main_thread():
    pytest.importorskip("math_verify")
    from dmpo.sources import MathSource

    source = MathSource("math:synthetic")
    item = source.items(start=0, count=1)[0]
    with ThreadPoolExecutor(1) as pool:
        verdict = pool.submit(source.score, item, f"Answer: {item.answer}").result(timeout=60)
    assert verdict.correct
