"""Ingress and IngressClass: rules, hosts, paths, backends, the controller and parameters."""

from __future__ import annotations

import ipaddress
import re

from egress_sandbox.k8s.fielderrors import (
    FieldErrors,
    dns1035_label,
    dns1123_subdomain,
    port_name,
    port_num,
    wildcard_subdomain,
)
from egress_sandbox.k8s.store import Obj

_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


def validate_ingress(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        errs.invalid("spec", rules or None, "either `defaultBackend` or `rules` must be specified")
    if spec.get("defaultBackend"):
        _backend(spec["defaultBackend"], "spec.defaultBackend", errs)
    cls = spec.get("ingressClassName")
    if cls:
        for msg in dns1123_subdomain(cls):
            errs.invalid("spec.ingressClassName", cls, msg)
    for i, rule in enumerate(rules):
        f = f"spec.rules[{i}]"
        host = rule.get("host", "")
        if host:
            _host(host, f"{f}.host", errs)
        http = rule.get("http")
        if http is None:
            continue
        paths = http.get("paths") or []
        if not paths:
            errs.required(f"{f}.http.paths")
        for j, p in enumerate(paths):
            pf = f"{f}.http.paths[{j}]"
            path_type = p.get("pathType")
            if not path_type:
                errs.required(f"{pf}.pathType", "pathType must be specified")
            elif path_type not in _PATH_TYPES:
                errs.not_supported(f"{pf}.pathType", path_type, _PATH_TYPES)
            path = p.get("path", "")
            if (path and not path.startswith("/")) or (
                path_type in ("Exact", "Prefix") and not path.startswith("/")
            ):
                errs.invalid(f"{pf}.path", path, "must be an absolute path")
            _backend(p.get("backend") or {}, f"{pf}.backend", errs)
    for i, tls in enumerate(spec.get("tls") or []):
        for j, h in enumerate(tls.get("hosts") or []):
            _host(h, f"spec.tls[{i}].hosts[{j}]", errs)


def _host(host: str, f: str, errs: FieldErrors) -> None:
    try:
        ipaddress.ip_address(host)
        errs.invalid(f, host, "must be a DNS name, not an IP address")
        return
    except ValueError:
        pass
    rule = wildcard_subdomain if "*" in host else dns1123_subdomain
    for msg in rule(host):
        errs.invalid(f, host, msg)


def _backend(b: Obj, f: str, errs: FieldErrors) -> None:
    svc, res = b.get("service"), b.get("resource")
    if svc and res:
        errs.invalid(f, "", "cannot set both resource and service backends")
    elif res:
        for k in ("kind", "name"):
            if not res.get(k):
                errs.required(f"{f}.resource.{k}")
    elif svc:
        name = svc.get("name", "")
        if not name:
            errs.required(f"{f}.service.name")
        else:
            for msg in dns1035_label(name):
                errs.invalid(f"{f}.service.name", name, msg)
        port = svc.get("port") or {}
        pname, pnum = port.get("name", ""), port.get("number", 0)
        if pname and pnum:
            errs.invalid(f, "", "cannot set both port name & port number")
        elif pname:
            for msg in port_name(pname):
                errs.invalid(f"{f}.service.port.name", pname, msg)
        elif pnum:
            for msg in port_num(pnum):
                errs.invalid(f"{f}.service.port.number", pnum, msg)
        else:
            errs.required(f, "port name or number is required")
    else:
        errs.invalid(f, "", "resource or service backend is required")


def validate_ingress_class(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    controller = spec.get("controller", "")
    if not controller:
        errs.required("spec.controller")
    elif len(controller) > 250:
        errs.too_long("spec.controller", 250)
    elif not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/\S+", controller):
        errs.invalid(
            "spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")'
        )
    params = spec.get("parameters")
    if isinstance(params, dict):
        f = "spec.parameters"
        for k in ("kind", "name"):
            if not params.get(k):
                errs.required(f"{f}.{k}")
        group = params.get("apiGroup")
        if group:
            for msg in dns1123_subdomain(group):
                errs.invalid(f"{f}.apiGroup", group, msg)
        scope = params.get("scope")
        if scope not in ("Cluster", "Namespace"):
            errs.not_supported(f"{f}.scope", scope, ["Cluster", "Namespace"])
        elif scope == "Namespace" and not params.get("namespace"):
            errs.required(f"{f}.namespace", "`parameters.scope` is set to 'Namespace'")
        elif scope == "Cluster" and params.get("namespace"):
            errs.forbidden(f"{f}.namespace", "`parameters.scope` is set to 'Cluster'")
