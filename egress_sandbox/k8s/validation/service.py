"""Service: the type, the cluster IP and its allocation, ExternalName, ports."""

from __future__ import annotations

import ipaddress
from typing import Any

from egress_sandbox.k8s import defaults
from egress_sandbox.k8s.fielderrors import (
    FieldErrors,
    dns1123_label,
    dns1123_subdomain,
    port_name,
    port_num,
)
from egress_sandbox.k8s.store import Obj, Store

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def validate_service(store: Store, new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = new.setdefault("spec", {})
    old_spec = (old or {}).get("spec", {})
    if (
        spec.get("type") == "ExternalName"
        and old_spec.get("type", "ClusterIP") != "ExternalName"
        and spec.get("clusterIP") == old_spec.get("clusterIP")
    ):
        # Changing to ExternalName drops the allocated fields the client did not touch.
        for k in (
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ):
            spec.pop(k, None)
    rt = store.types.get("", "v1", "services")
    assert rt is not None
    taken = {s.get("spec", {}).get("clusterIP", "") for s in store.list(rt)[0]}
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in _SERVICE_TYPES:
        errs.not_supported("spec.type", svc_type, _SERVICE_TYPES)
        return
    defaults.default_service(new, old, store.ids, taken)
    ports = spec.get("ports") or []
    if svc_type == "ExternalName":
        ext = spec.get("externalName", "")
        if not ext:
            errs.required("spec.externalName")
        else:
            for msg in dns1123_subdomain(ext.rstrip(".")):
                errs.invalid("spec.externalName", ext, msg)
        if spec.get("clusterIP") or spec.get("clusterIPs"):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
    else:
        ip = spec.get("clusterIP", "")
        if ip not in ("", "None"):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                errs.invalid(
                    "spec.clusterIPs[0]",
                    ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
        if (
            old
            and old_spec.get("clusterIP")
            and old_spec.get("type") != "ExternalName"
            and (spec.get("clusterIP") != old_spec.get("clusterIP"))
        ):
            errs.invalid("spec.clusterIPs[0]", spec.get("clusterIPs"), "may not change once set")
        if not ports and ip != "None":
            errs.required("spec.ports")
    names: set[str] = set()
    for i, p in enumerate(ports):
        _service_port(p, i, len(ports), names, errs)


def _service_port(p: Any, i: int, count: int, names: set[str], errs: FieldErrors) -> None:
    f = f"spec.ports[{i}]"
    if not isinstance(p, dict):
        return
    name = p.get("name", "")
    if count > 1 and not name:
        errs.required(f"{f}.name")
    elif name:
        for msg in dns1123_label(name):
            errs.invalid(f"{f}.name", name, msg)
        if name in names:
            errs.duplicate(f"{f}.name", name)
        names.add(name)
    for msg in port_num(p.get("port", 0)):
        errs.invalid(f"{f}.port", p.get("port", 0), msg)
    proto = p.get("protocol", "TCP")
    if proto not in ("TCP", "UDP", "SCTP"):
        errs.not_supported(f"{f}.protocol", proto, ["SCTP", "TCP", "UDP"])
    tp = p.get("targetPort")
    if isinstance(tp, int):
        for msg in port_num(tp):
            errs.invalid(f"{f}.targetPort", tp, msg)
    elif isinstance(tp, str):
        for msg in port_name(tp):
            errs.invalid(f"{f}.targetPort", tp, msg)
