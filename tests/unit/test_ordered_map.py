"""ordered_map: results in order, every call finished before an error, the caller's context."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from egress_lib.concurrency import ordered_map

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_results_come_back_in_the_order_given() -> None:
    def slow_first(i: int) -> int:
        time.sleep(0.05 if i == 0 else 0)
        return i * i

    assert ordered_map(slow_first, list(range(20))) == [i * i for i in range(20)]


def test_at_most_limit_calls_run_at_once() -> None:
    lock = threading.Lock()
    now, peak = 0, 0

    def call(_: int) -> None:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.02)
        with lock:
            now -= 1

    ordered_map(call, list(range(30)), limit=4)
    assert 1 < peak <= 4


def test_the_first_failure_in_order_is_raised_after_every_call_finished() -> None:
    finished: list[int] = []

    def call(i: int) -> int:
        if i in (3, 7):
            raise ValueError(f"item {i}")
        time.sleep(0.01)
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="item 3"):
        ordered_map(call, list(range(10)))
    assert sorted(finished) == [0, 1, 2, 4, 5, 6, 8, 9]


def test_each_call_sees_the_callers_context_variables() -> None:
    token = VAR.set("from the caller")
    try:
        assert set(ordered_map(lambda _: VAR.get(), list(range(5)))) == {"from the caller"}
    finally:
        VAR.reset(token)
