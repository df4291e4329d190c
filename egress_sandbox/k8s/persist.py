"""Saving the Store's objects and resourceVersion counter, and loading them into a fresh Store.

Tables are saved by ``(group, plural)``, so loading needs no registered types: the CRD
controller registers the custom types from the loaded CRDs when the API server is built.
``restore`` must run on a fresh Store, before anything else writes to it (bootstrap included),
so that the counter only ever moves forward, as etcd's revision does across restarts.
"""

from __future__ import annotations

import copy
from typing import Any

from egress_sandbox.k8s.store import Store


def snapshot(store: Store) -> dict[str, Any]:
    with store.lock:
        tables = [
            {"group": group, "plural": plural, "objects": copy.deepcopy(list(objs.values()))}
            for (group, plural), objs in store._objects.items()
            if objs
        ]
        return {"resourceVersion": store._rv, "tables": tables}


def restore(store: Store, data: dict[str, Any]) -> int:
    """Load a snapshot; returns the number of objects loaded."""
    n = 0
    with store.lock:
        for table in data.get("tables", []):
            objs = store._objects.setdefault((table["group"], table["plural"]), {})
            for obj in table["objects"]:
                meta = obj["metadata"]
                objs[(meta.get("namespace") or "", meta["name"])] = obj
                n += 1
        # No object may carry a version the counter has not passed yet.
        newest = max(
            (
                int(o["metadata"].get("resourceVersion") or 0)
                for t in data.get("tables", [])
                for o in t["objects"]
            ),
            default=0,
        )
        store._rv = max(store._rv, int(data.get("resourceVersion", 1)), newest)
    return n
