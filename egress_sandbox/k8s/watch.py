"""Watch streams: one JSON event per chunk, flushed as it happens (HTTP/1.1 chunked)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from werkzeug.wrappers import Request

from egress_sandbox.k8s import bodies
from egress_sandbox.k8s.errors import Gone
from egress_sandbox.k8s.handlers import Target
from egress_sandbox.k8s.selectors import labels_match, parse_field_selector, parse_label_selector
from egress_sandbox.k8s.store import Obj, Store, WatchEvent

Render = Callable[[Obj], Obj]
MAX_WATCH_SECONDS = 1800.0


def stream(
    store: Store,
    t: Target,
    request: Request,
    render: Render,
    stopping: threading.Event,
    bookmark_interval: float,
) -> Iterator[bytes]:
    """Prepare a watch (errors raise now, before any byte is sent) and return its event stream."""
    labels = parse_label_selector(request.args.get("labelSelector"))
    fields = parse_field_selector(request.args.get("fieldSelector"), t.rt.kind)
    rv = request.args.get("resourceVersion")
    timeout = float(bodies.query_int(request, "timeoutSeconds") or MAX_WATCH_SECONDS)
    bookmarks = request.args.get("allowWatchBookmarks") in ("true", "1")

    def match_obj(o: Obj) -> bool:
        ns = o.get("metadata", {}).get("namespace")
        if t.rt.namespaced and t.namespace and ns != t.namespace:
            return False
        return labels_match(labels, o) and fields(o)

    def match(ev: WatchEvent) -> bool:
        if ev.rtype.key != t.rt.key:
            return False
        return match_obj(ev.object) or (ev.old is not None and match_obj(ev.old))

    def convert(ev: WatchEvent) -> tuple[str, Obj]:
        # As the watch cache does: an object that starts matching the selectors is ADDED, one
        # that stops matching is DELETED (its previous state at the event's resourceVersion).
        if ev.type != "MODIFIED" or ev.old is None:
            return ev.type, ev.object
        now, before = match_obj(ev.object), match_obj(ev.old)
        if now and not before:
            return "ADDED", ev.object
        if before and not now:
            gone = copy.deepcopy(ev.old)
            gone.setdefault("metadata", {})["resourceVersion"] = str(ev.rv)
            return "DELETED", gone
        return "MODIFIED", ev.object

    initial: list[Obj] = []
    error: Obj | None = None
    with store.lock:
        try:
            watcher = store.watch(rv, match)
            watcher.resource = t.rt.plural  # lets `fault drop-watches --resource` find it
        except Gone as exc:
            error = exc.status()
            watcher = None
        if watcher is not None and rv in (None, "", "0"):
            # No version: the current state as ADDED events first, then the changes.
            initial, _ = store.list(t.rt, t.namespace, match_obj)

    def line(type_: str, obj: Obj) -> bytes:
        return (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()

    def events() -> Iterator[bytes]:
        if watcher is None:
            assert error is not None
            yield line("ERROR", error)
            return
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        last_rv = rv or store.resource_version
        try:
            for o in initial:
                last_rv = o["metadata"].get("resourceVersion", last_rv)
                yield line("ADDED", render(_typed(t, o)))
            while not stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    return
                wait = min(deadline - now, 0.5)
                ev = watcher.next(wait)
                if ev is None:
                    if watcher.closed:
                        return
                    if bookmarks and time.monotonic() - last_bookmark >= bookmark_interval:
                        last_bookmark = time.monotonic()
                        yield line("BOOKMARK", _bookmark(t, store.resource_version))
                    continue
                last_rv = str(ev.rv)
                type_, obj = convert(ev)
                yield line(type_, render(_typed(t, obj)))
        finally:
            watcher.close()
            _ = last_rv

    return events()


def _typed(t: Target, o: Obj) -> Obj:
    o = copy.deepcopy(o)
    o["apiVersion"], o["kind"] = t.rt.group_version, t.rt.kind
    return o


def _bookmark(t: Target, rv: str) -> dict[str, Any]:
    return {
        "kind": t.rt.kind,
        "apiVersion": t.rt.group_version,
        "metadata": {"resourceVersion": rv},
    }
