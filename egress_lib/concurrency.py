"""Independent API requests side by side, a bounded number at a time.

A plan's dry runs and an apply's creates of N objects are independent requests; sent one after
another, each waits a full round trip. They run here on a small pool instead, in the caller's
context (so the caller's context variables, such as kube's dry-run switch, hold in every
thread), and their results come back in the order given.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# At most this many requests in flight from one step: enough to hide round trips, few enough
# to stay well inside the API server's per-client limits (client-go's default QPS is 5, burst 10).
LIMIT = 8


def ordered_map(fn: Callable[[T], R], items: Sequence[T], limit: int = LIMIT) -> list[R]:
    """``[fn(x) for x in items]``, ``limit`` at a time; every call finishes before an error.

    When calls fail, the first failure in ``items`` order is raised, after the others have
    finished (so no request is left in flight behind the error).
    """
    if len(items) <= 1 or limit <= 1:
        return [fn(x) for x in items]
    ctx = contextvars.copy_context()

    def call(x: T) -> R:
        return ctx.copy().run(fn, x)

    with ThreadPoolExecutor(min(limit, len(items)), thread_name_prefix="egress-api") as pool:
        futures = [pool.submit(call, x) for x in items]
    # The pool's exit waited for every call.
    for f in futures:
        exc = f.exception()
        if exc is not None:
            raise exc
    return [f.result() for f in futures]
