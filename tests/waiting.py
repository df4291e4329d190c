"""Polling with a deadline, shared by the sandbox tests (``from waiting import wait_for``).

A module, not a package (tests/ has none): the rootdir conftest puts tests/ on ``sys.path``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.02


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_SECONDS)
