"""Moving a resource to its next state: at once, after a delay (Scheduler), or when told.

``Transitions.<kind>`` picks the mode per kind of resource. In ``manual`` mode the steps queue up
per resource ID until ``advance(resource_id)`` runs the oldest one; the control API calls it.
Steps take the cloud lock themselves, so ``schedule`` may be called with or without it held
(it is an RLock); a step that calls hooks must be scheduled after the caller released the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.topology import Transition


class Lifecycle:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._manual: dict[str, list[tuple[str, Callable[[], None]]]] = {}
        self._lock = threading.Lock()

    def schedule(
        self, transition: Transition, resource_id: str, step: Callable[[], None], reason: str
    ) -> None:
        if transition.mode == "immediate":
            step()
        elif transition.mode == "timed":
            self._scheduler.call_later(transition.seconds, step, reason)
        else:
            with self._lock:
                self._manual.setdefault(resource_id, []).append((reason, step))

    def advance(self, resource_id: str) -> bool:
        """Run the oldest manual step of ``resource_id``; False when none is waiting."""
        with self._lock:
            queue = self._manual.get(resource_id)
            if not queue:
                return False
            _, step = queue.pop(0)
            if not queue:
                del self._manual[resource_id]
        step()
        return True

    def waiting(self) -> dict[str, list[str]]:
        """Manual steps not yet advanced: resource ID -> reasons, oldest first."""
        with self._lock:
            return {rid: [r for r, _ in steps] for rid, steps in self._manual.items()}
