"""Polling with a deadline, for cloud APIs that offer no watch (CS tasks, SNAT entries)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from egress_lib.errors import WaitTimeout
from egress_lib.progress import waiting_bar

T = TypeVar("T")


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    reason: str,
    describe: Callable[[T], str] = repr,
    first_delay: float = 0.2,
    max_delay: float = 10.0,
) -> T:
    """Call ``fetch`` until ``done(result)``, backing off 0.2 s -> 10 s, up to ``timeout``.

    Raises :class:`WaitTimeout` naming ``what``, the deadline and the last result.
    """

    deadline = time.monotonic() + timeout
    delay = first_delay
    with waiting_bar(reason, what=what, timeout=timeout) as bar:
        while True:
            value = fetch()
            if done(value):
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(what, timeout, describe(value), reason)
            bar.set_postfix_str(describe(value), refresh=True)
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.6, max_delay)
