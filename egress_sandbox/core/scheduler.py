"""One background thread that runs delayed work: phase changes, SNAT lifecycles, task completion.

A single ordered queue keeps transitions deterministic for a given set of delays, and lets
``stop()`` cancel everything pending at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    reason: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)


class Scheduler:
    """Runs callables after a delay on one worker thread."""

    def __init__(self) -> None:
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[[], None], reason: str = "") -> _Job:
        job = _Job(time.monotonic() + max(0.0, delay), next(self._seq), fn, reason)
        with self._cv:
            heapq.heappush(self._heap, job)
            self._cv.notify()
        return job

    def cancel(self, job: _Job) -> None:
        job.cancelled = True

    def pending(self) -> list[str]:
        with self._cv:
            return [j.reason for j in sorted(self._heap) if not j.cancelled]

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._cv.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (
                    not self._heap or self._heap[0].due > time.monotonic()
                ):
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cv.wait(timeout)
                if self._stopped:
                    return
                job = heapq.heappop(self._heap)
            if job.cancelled:
                continue
            try:
                job.fn()
            except Exception:  # a failing transition must not kill the scheduler
                log.exception("scheduled job failed: %s", job.reason)
