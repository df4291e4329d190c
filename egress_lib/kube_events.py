"""The core/v1 Events about one object, as ``kubectl describe`` lists them under "Events:"."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from egress_lib.errors import KubeEvent
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors

if TYPE_CHECKING:
    from egress_lib.clients import Session

# Where event recorders put the Events of cluster-scoped objects (a MseIngressConfig).
CLUSTER_EVENTS_NAMESPACE = "default"


def events_for(
    session: Session,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    uid: str | None = None,
    limit: int = 10,
) -> list[KubeEvent]:
    """The last ``limit`` Events about ``kind``/``name``, oldest first.

    ``namespace`` None means a cluster-scoped object. With ``uid``, Events of an earlier
    object of the same name are left out, as kubectl describe does.
    """
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if uid:
        selector += f",involvedObject.uid={uid}"
    with k8s_errors("list", "Event", None):
        resp = session.core.list_namespaced_event(
            namespace or CLUSTER_EVENTS_NAMESPACE,
            field_selector=selector,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    items: list[dict[str, Any]] = json.loads(resp.data).get("items") or []
    # Timestamps have whole seconds: the resourceVersion orders Events of the same second.
    items.sort(key=lambda i: (_when(i), _rv(i)))
    return [_event(i) for i in items[-limit:]]


def _when(item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return str(
        item.get("lastTimestamp")
        or item.get("eventTime")
        or item.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def _rv(item: dict[str, Any]) -> int:
    rv = str((item.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def _event(item: dict[str, Any]) -> KubeEvent:
    source = item.get("source") or {}
    return KubeEvent(
        type=str(item.get("type") or ""),
        reason=str(item.get("reason") or ""),
        message=" ".join(str(item.get("message") or "").split()),
        source=str(
            source.get("component")
            or item.get("reportingComponent")
            or item.get("reportingController")
            or ""
        ),
        count=int(item.get("count") or (item.get("series") or {}).get("count") or 1),
        last_seen=_when(item),
    )
