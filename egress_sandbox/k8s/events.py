"""core/v1 Events as controllers and the kubelet record them (``Store.record_event``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(
    involved: Obj, name_suffix: str, reason: str, message: str, type_: str, component: str
) -> Obj:
    """The Event object about ``involved`` (in its namespace, ``default`` for cluster objects)."""
    meta = involved.get("metadata", {})
    ts = now_rfc3339()
    return {
        "metadata": {
            "name": f"{meta.get('name', 'object')}.{name_suffix}",
            "namespace": meta.get("namespace") or "default",
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component},
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": component,
    }
