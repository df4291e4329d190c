"""Server-side printing: the ``meta.k8s.io/v1 Table`` kubectl asks for with ``as=Table``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from egress_sandbox.k8s.types import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def human_age(ts: str | None, now: dt.datetime | None = None) -> str:
    """duration.HumanDuration, as kubectl prints ages (``5m``, ``3h12m``, ``2d``)."""
    if not ts:
        return "<unknown>"
    t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    s = int(((now or dt.datetime.now(dt.timezone.utc)) - t).total_seconds())
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 else f"{d // 365}y"


def _meta(o: Obj, k: str) -> Any:
    return o.get("metadata", {}).get(k)


def _name(o: Obj) -> Any:
    return _meta(o, "name")


def _age(o: Obj) -> str:
    return human_age(_meta(o, "creationTimestamp"))


def _svc_ports(o: Obj) -> str:
    ports = o.get("spec", {}).get("ports") or []
    out = []
    for p in ports:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _svc_external(o: Obj) -> str:
    spec = o.get("spec", {})
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", ""))
    ing = o.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ing]
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _pod_ready(o: Obj) -> str:
    cs = o.get("status", {}).get("containerStatuses") or []
    total = len(o.get("spec", {}).get("containers") or [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{total}"


def _pod_status(o: Obj) -> str:
    if _meta(o, "deletionTimestamp"):
        return "Terminating"
    st = o.get("status", {})
    for c in st.get("containerStatuses") or []:
        state = c.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key, {}).get("reason"):
                return str(state[key]["reason"])
    return str(st.get("reason") or st.get("phase") or "Pending")


def _node_status(o: Obj) -> str:
    for c in o.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return "Ready" if c.get("status") == "True" else "NotReady"
    return "Unknown"


def _ing_ports(o: Obj) -> str:
    return "80, 443" if o.get("spec", {}).get("tls") else "80"


def _ing_address(o: Obj) -> str:
    ing = o.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return ",".join(str(i.get("ip") or i.get("hostname")) for i in ing)


def _involved(o: Obj) -> str:
    io = o.get("involvedObject", {})
    return f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}"


_COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        (
            "Restarts",
            "string",
            0,
            lambda o: str(
                sum(
                    c.get("restartCount", 0)
                    for c in o.get("status", {}).get("containerStatuses") or []
                )
            ),
        ),
        ("Age", "string", 0, _age),
        ("IP", "string", 1, lambda o: o.get("status", {}).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda o: o.get("spec", {}).get("nodeName") or "<none>"),
    ],
    "Service": [
        ("Type", "string", 0, lambda o: o.get("spec", {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: o.get("spec", {}).get("clusterIP") or "<none>"),
        ("External-IP", "string", 0, _svc_external),
        ("Port(s)", "string", 0, _svc_ports),
        ("Age", "string", 0, _age),
        (
            "Selector",
            "string",
            1,
            lambda o: (
                ",".join(f"{k}={v}" for k, v in (o.get("spec", {}).get("selector") or {}).items())
                or "<none>"
            ),
        ),
    ],
    "Deployment": [
        (
            "Ready",
            "string",
            0,
            lambda o: (
                f"{o.get('status', {}).get('readyReplicas', 0)}"
                f"/{o.get('spec', {}).get('replicas', 0)}"
            ),
        ),
        ("Up-to-date", "integer", 0, lambda o: o.get("status", {}).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: o.get("status", {}).get("availableReplicas", 0)),
        ("Age", "string", 0, _age),
    ],
    "Namespace": [
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "")),
        ("Age", "string", 0, _age),
    ],
    "Node": [
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda _o: "<none>"),
        ("Age", "string", 0, _age),
        (
            "Version",
            "string",
            0,
            lambda o: o.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""),
        ),
    ],
    "Ingress": [
        ("Class", "string", 0, lambda o: o.get("spec", {}).get("ingressClassName") or "<none>"),
        (
            "Hosts",
            "string",
            0,
            lambda o: (
                ",".join(r.get("host", "*") or "*" for r in o.get("spec", {}).get("rules") or [])
                or "*"
            ),
        ),
        ("Address", "string", 0, _ing_address),
        ("Ports", "string", 0, _ing_ports),
        ("Age", "string", 0, _age),
    ],
    "IngressClass": [
        ("Controller", "string", 0, lambda o: o.get("spec", {}).get("controller", "")),
        ("Parameters", "string", 0, lambda o: _params(o.get("spec", {}).get("parameters"))),
        ("Age", "string", 0, _age),
    ],
    "ConfigMap": [
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        ("Age", "string", 0, _age),
    ],
    "Secret": [
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        ("Age", "string", 0, _age),
    ],
    "CustomResourceDefinition": [
        ("Created At", "date", 0, lambda o: _meta(o, "creationTimestamp"))
    ],
    "ServiceAccount": [
        ("Secrets", "string", 0, lambda o: str(len(o.get("secrets") or []))),
        ("Age", "string", 0, _age),
    ],
    # printLease: an unset holderIdentity prints as an empty cell.
    "Lease": [
        ("Holder", "string", 0, lambda o: (o.get("spec") or {}).get("holderIdentity") or ""),
        ("Age", "string", 0, _age),
    ],
}


def _params(p: Any) -> str:
    if not isinstance(p, dict):
        return "<none>"
    return f"{p.get('apiGroup', '')}/{p.get('kind', '')}/{p.get('name', '')}".lstrip("/")


def _event_columns() -> list[Column]:
    return [
        (
            "Last Seen",
            "string",
            0,
            lambda o: human_age(
                o.get("lastTimestamp") or o.get("eventTime") or _meta(o, "creationTimestamp")
            ),
        ),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, _involved),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ]


def _jsonpath(o: Obj, path: str) -> Any:
    cur: Any = o
    for part in path.strip().lstrip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _bind_path(cell: Callable[[Obj, str], Any], path: str) -> Callable[[Obj], Any]:
    """A column cell that reads ``path`` with ``cell``."""
    return lambda o: cell(o, path)


def _columns(rt: ResourceType, printer_columns: list[Obj] | None) -> list[Column]:
    if rt.kind == "Event" and rt.group == "":
        return _event_columns()
    if printer_columns:
        # The CRD's columns replace the default Age column (apiextensions adds it only when a
        # version declares none), and `date` cells are rendered as ages on the server.
        cols: list[Column] = []
        for c in printer_columns:
            path, type_ = str(c.get("jsonPath", "")), str(c.get("type", "string"))
            cell = _date_cell if type_ == "date" else _jsonpath
            cols.append(
                (
                    str(c.get("name", "")),
                    type_,
                    int(c.get("priority", 0)),
                    _bind_path(cell, path),
                )
            )
        return cols
    if rt.schema is not None:
        return [("Age", "date", 0, _age)]
    if rt.kind in _COLUMNS:
        return _COLUMNS[rt.kind]
    # Built-ins without printers get the default table convertor's RFC 3339 "Created At".
    return [("Created At", "date", 0, lambda o: _meta(o, "creationTimestamp"))]


def _date_cell(o: Obj, path: str) -> Any:
    value = _jsonpath(o, path)
    if not isinstance(value, str) or not value:
        return value
    try:
        return human_age(value)
    except ValueError:
        return value


def to_table(
    rt: ResourceType,
    objs: list[Obj],
    list_meta: Obj,
    include: str = "Metadata",
    printer_columns: list[Obj] | None = None,
) -> Obj:
    cols = [("Name", "string", 0, _name), *_columns(rt, printer_columns)]
    if rt.kind == "Event" and rt.group == "":
        cols = cols[1:]
    rows = []
    for o in objs:
        row: Obj = {"cells": [fn(o) for _n, _t, _p, fn in cols]}
        if include == "Object":
            row["object"] = o
        elif include == "Metadata":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" else "",
                "description": n,
                "priority": p,
            }
            for n, t, p, _fn in cols
        ],
        "rows": rows,
    }
