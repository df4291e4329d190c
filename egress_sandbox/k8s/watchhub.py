"""The store's change feed: a bounded history of committed events and the open watchers.

``Store`` owns one ``WatchHub`` and calls ``publish`` under its lock after every change;
``watch`` replays the history after a resourceVersion, as etcd's watch does from a revision.
The HTTP side of a watch (chunked JSON, bookmarks, selectors) lives in ``watch.py``.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from egress_sandbox.k8s.errors import BadRequest, Gone
from egress_sandbox.k8s.types import ResourceType

Obj = dict[str, Any]
WATCH_HISTORY = 2000


@dataclass
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    rtype: ResourceType
    object: Obj
    rv: int
    # The state before a MODIFIED change: watches with selectors need it to see an object
    # enter (ADDED) or leave (DELETED) the selection.
    old: Obj | None = None


class Watcher:
    """A queue of events for one watch request; iterate to receive, ``close()`` to stop."""

    def __init__(self, hub: WatchHub, match: Callable[[WatchEvent], bool]) -> None:
        self._hub = hub
        self.match = match
        self.queue: queue.Queue[WatchEvent | None] = queue.Queue()
        self.closed = False
        self.resource: str | None = None  # the plural an HTTP watch serves (None: in-process)

    def push(self, ev: WatchEvent) -> None:
        if not self.closed and self.match(ev):
            self.queue.put(ev)

    def close(self) -> None:
        self.closed = True
        self.queue.put(None)
        self._hub.drop(self)

    def next(self, timeout: float | None) -> WatchEvent | None:
        """The next event, or None on timeout or close."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class WatchHub:
    """History and fan-out of watch events; shares the store's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._history: deque[WatchEvent] = deque(maxlen=WATCH_HISTORY)
        self._watchers: list[Watcher] = []

    def publish(self, ev: WatchEvent) -> None:
        self._history.append(ev)
        for w in list(self._watchers):
            w.push(ev)

    def watch(
        self, since_rv: str | None, current_rv: int, match: Callable[[WatchEvent], bool]
    ) -> Watcher:
        """Events after ``since_rv`` (or from now). Too old a version is 410 Gone."""
        with self._lock:
            w = Watcher(self, match)
            if since_rv not in (None, "", "0"):
                if not since_rv.isdigit():
                    # kube-apiserver parses resourceVersion as uint64 and answers 400 otherwise.
                    raise BadRequest(f"invalid resource version: {since_rv!r}")
                start = int(since_rv)
                oldest = self._history[0].rv if self._history else current_rv
                if start < oldest - 1 and start < current_rv:
                    raise Gone(f"too old resource version: {start} ({oldest - 1})")
                for ev in self._history:
                    if ev.rv > start:
                        w.push(ev)
            self._watchers.append(w)
            return w

    def drop(self, w: Watcher) -> None:
        with self._lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def close(self, which: Callable[[Watcher], bool] | None = None) -> int:
        """Close the watchers ``which`` selects (all by default); returns how many."""
        with self._lock:
            chosen = [w for w in self._watchers if which is None or which(w)]
            for w in chosen:
                w.close()
            return len(chosen)
