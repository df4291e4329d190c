"""Admission for built-in kinds and custom resources: defaulting, then validation.

``install_admission(store)`` adds one hook to ``Store.admission``; it runs for every write,
from HTTP and from in-process controllers alike. Messages follow kube-apiserver word for word.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from typing import Any

from egress_sandbox.k8s import defaults
from egress_sandbox.k8s.errors import BadRequest, Invalid
from egress_sandbox.k8s.fielderrors import (
    FieldErrors,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    port_name,
    port_num,
    wildcard_subdomain,
)
from egress_sandbox.k8s.store import Obj, Store
from egress_sandbox.k8s.structural import prune_unknown, validate
from egress_sandbox.k8s.types import ResourceType

_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')"
)
_NAME_RULES = {"Service": dns1035_label, "Namespace": dns1123_label}


def install_admission(store: Store) -> None:
    """Register defaulting + validation on ``store`` (idempotent)."""
    if any(getattr(h, "_sandbox_validation", False) for h in store.admission):
        return

    def hook(op: str, rt: ResourceType, new: Obj, old: Obj | None) -> None:
        admit(store, op, rt, new, old)

    hook._sandbox_validation = True  # type: ignore[attr-defined]
    store.admission.append(hook)


def admit(store: Store, op: str, rt: ResourceType, new: Obj, old: Obj | None) -> None:
    errs = FieldErrors()
    meta = new.get("metadata", {})
    name = meta.get("name", "")
    if rt.schema is None and (rt.group, rt.kind) == _LEASE:
        _lease_decode(new)
        if op == "UPDATE":
            _require_resource_version(rt, meta)
    if op == "CREATE":
        for msg in _NAME_RULES.get(rt.kind, dns1123_subdomain)(name):
            errs.invalid("metadata.name", name, msg)
    _validate_labels(meta, errs)
    if rt.schema is not None:
        # Custom resource: prune to the schema, then validate against it.
        prune_unknown(new, rt.schema, crd=True)
        validate(new, rt.schema, "", errs)
    else:
        _builtin(store, rt, new, old, errs)
    errs.raise_if_any(rt.kind, rt.group, name)


def _validate_labels(meta: Obj, errs: FieldErrors) -> None:
    for k, v in (meta.get("labels") or {}).items():
        if not isinstance(v, str):
            continue
        if len(v) > 63:
            errs.invalid("metadata.labels", v, "must be no more than 63 characters")
        if not re.fullmatch(_LABEL_VALUE, v):
            errs.invalid("metadata.labels", v, _LABEL_VALUE_MSG)
        key_name = k.rsplit("/", 1)[-1]
        if (
            not key_name
            or len(key_name) > 63
            or not re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", key_name)
        ):
            errs.invalid(
                "metadata.labels",
                k,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                "or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            )


def _builtin(store: Store, rt: ResourceType, new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    kind = (
        rt.kind
        if rt.group
        in ("", "apps", "networking.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io")
        else ""
    )
    if kind == "Namespace":
        defaults.default_namespace(new)
    elif kind == "Service":
        _service(store, new, old, errs)
    elif kind == "Pod":
        defaults.default_pod(new)
        _pod_spec(new.get("spec", {}), "spec", errs)
    elif kind == "Deployment":
        defaults.default_deployment(new)
        _deployment(new, errs)
    elif kind == "Ingress":
        _ingress(new, errs)
    elif kind == "IngressClass":
        defaults.default_ingress_class(new)
        _ingress_class(new, errs)
    elif kind == "CustomResourceDefinition":
        _crd(new, errs)
    elif kind == "Lease":
        _lease(new, old, errs)


# ---- Service ----------------------------------------------------------------------------------

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _service(store: Store, new: Obj, old: Obj | None, errs: FieldErrors) -> None:
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


# ---- Pod / Deployment -------------------------------------------------------------------------


def _pod_spec(spec: Obj, f: str, errs: FieldErrors) -> None:
    containers = spec.get("containers") or []
    if not containers:
        errs.required(f"{f}.containers")
    seen: set[str] = set()
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        name = c.get("name", "")
        if not name:
            errs.required(f"{f}.containers[{i}].name")
        else:
            for msg in dns1123_label(name):
                errs.invalid(f"{f}.containers[{i}].name", name, msg)
            if name in seen:
                errs.duplicate(f"{f}.containers[{i}].name", name)
            seen.add(name)
        if not c.get("image"):
            errs.required(f"{f}.containers[{i}].image")
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.not_supported(f"{f}.restartPolicy", policy, ["Always", "Never", "OnFailure"])


def _deployment(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    selector = spec.get("selector")
    if not selector:
        errs.required("spec.selector")
    labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
    wanted = (selector or {}).get("matchLabels") or {}
    if selector and any(labels.get(k) != v for k, v in wanted.items()):
        errs.invalid(
            "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
        )
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        errs.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    _pod_spec(spec.get("template", {}).get("spec", {}), "spec.template.spec", errs)


# ---- Ingress / IngressClass -------------------------------------------------------------------

_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


def _ingress(new: Obj, errs: FieldErrors) -> None:
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


def _ingress_class(new: Obj, errs: FieldErrors) -> None:
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


# ---- CustomResourceDefinition -----------------------------------------------------------------


def _crd(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    if not group:
        errs.required("spec.group")
    if not plural:
        errs.required("spec.names.plural")
    if not names.get("kind"):
        errs.required("spec.names.kind")
    name = new.get("metadata", {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        errs.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    scope = spec.get("scope", "")
    if scope not in ("Cluster", "Namespaced"):
        errs.not_supported("spec.scope", scope, ["Cluster", "Namespaced"])
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        errs.invalid(
            "spec.versions", versions, "must have exactly one version marked as storage version"
        )
    for i, v in enumerate(versions):
        if not (v.get("schema") or {}).get("openAPIV3Schema"):
            errs.required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")


# ---- Lease ------------------------------------------------------------------------------------

_LEASE = ("coordination.k8s.io", "Lease")
# metav1.RFC3339Micro, the layout MicroTime's UnmarshalJSON parses with time.Parse.
_MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_INT32 = (-(2**31), 2**31 - 1)
# LeaseSpec's fields and the Go type the JSON decoder reads each into.
_LEASE_FIELDS = {
    "holderIdentity": "string",
    "leaseDurationSeconds": "int32",
    "acquireTime": "MicroTime",
    "renewTime": "MicroTime",
    "leaseTransitions": "int32",
    "strategy": "string",
    "preferredHolder": "string",
}


def _require_resource_version(rt: ResourceType, meta: Obj) -> None:
    """The lease strategy refuses unconditional updates (AllowUnconditionalUpdate false)."""
    if meta.get("resourceVersion"):
        return
    cause = {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 0: must be specified for an update",
        "field": "metadata.resourceVersion",
    }
    # The registry names the resource where the kind would be (qualifiedKind of the store).
    raise Invalid.of(rt.plural, rt.group, meta.get("name", ""), [cause])


def _lease_decode(new: Obj) -> None:
    """What decoding the body into a coordination/v1 Lease refuses, as the 400 it is.

    Type mismatches are reported as encoding/json words them (the first one wins, decoding
    goes on); a time MicroTime's UnmarshalJSON cannot parse stops decoding at once. Valid
    times are stored as MicroTime marshals them: UTC, exactly six fractional digits.
    """
    spec = new.get("spec")
    first: str | None = None
    if spec is not None and not isinstance(spec, dict):
        first = _type_error(spec, "Lease", "spec", "v1.LeaseSpec")
    spec_fields: dict[str, Any] = spec if isinstance(spec, dict) else {}
    for key, value in spec_fields.items():
        go_type = _LEASE_FIELDS.get(key)
        if go_type is None or value is None:
            continue
        where = ("LeaseSpec", f"spec.{key}")
        if go_type == "MicroTime":
            if not isinstance(value, str):
                _lease_bad_request(_type_error(value, *where, "string"))
            stored, problem = _micro_time(value)
            if problem:
                _lease_bad_request(problem)
            spec_fields[key] = stored
        elif go_type == "string" and not isinstance(value, str):
            first = first or _type_error(value, *where, "string")
        elif go_type == "int32" and not (type(value) is int and _INT32[0] <= value <= _INT32[1]):
            first = first or _type_error(value, *where, "int32")
    if first:
        _lease_bad_request(first)


def _lease_bad_request(message: str) -> None:
    raise BadRequest(f'Lease in version "v1" cannot be handled as a Lease: {message}')


def _type_error(value: Any, struct: str, field: str, go_type: str) -> str:
    """encoding/json's UnmarshalTypeError text for ``value`` read into ``go_type``."""
    if isinstance(value, bool):
        what = "bool"
    elif isinstance(value, (int, float)):
        # A number that does not fit the integer type is quoted with its literal.
        what = f"number {value}" if go_type == "int32" else "number"
    elif isinstance(value, str):
        what = "string"
    elif isinstance(value, list):
        what = "array"
    else:
        what = "object"
    return f"json: cannot unmarshal {what} into Go struct field {struct}.{field} of type {go_type}"


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _micro_time(value: str) -> tuple[str, str]:
    """(the value as stored, "") or ("", Go's time.ParseError text) for RFC3339Micro."""

    def cannot(rest: str, elem: str) -> tuple[str, str]:
        return "", (
            f"parsing time {_go_quote(value)} as {_go_quote(_MICRO_LAYOUT)}: "
            f"cannot parse {_go_quote(rest)} as {_go_quote(elem)}"
        )

    def out_of_range(what: str) -> tuple[str, str]:
        return "", f"parsing time {_go_quote(value)}: {what} out of range"

    def num(s: str, fixed: bool) -> tuple[int, str] | None:
        # time.getnum: one or two digits; exactly two when fixed.
        if not s[:1].isdigit() or not s[:1].isascii():
            return None
        if not (s[1:2].isdigit() and s[1:2].isascii()):
            return None if fixed else (int(s[0]), s[1:])
        return int(s[:2]), s[2:]

    rest = value
    if len(rest) < 4 or not rest[0].isdigit() or not (rest[:4].isascii() and rest[:4].isdigit()):
        return cannot(rest, "2006")
    year, rest = int(rest[:4]), rest[4:]
    fields: list[int] = [year]
    steps: tuple[tuple[str, str, bool, str], ...] = (
        ("-", "01", True, "month"),
        ("-", "02", True, ""),
        ("T", "15", False, "hour"),
    )
    steps += ((":", "04", True, "minute"), (":", "05", True, "second"))
    for sep, elem, fixed, rng in steps:
        if not rest.startswith(sep):
            return cannot(rest, sep)
        rest = rest[len(sep) :]
        got = num(rest, fixed)
        if got is None:
            return cannot(rest, elem)
        n, rest = got
        limit = {"month": (1, 12), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}
        if rng and not limit[rng][0] <= n <= limit[rng][1]:
            return out_of_range(rng)
        fields.append(n)
    frac = rest[:7]
    if len(frac) < 7 or frac[0] not in ".," or not (frac[1:].isascii() and frac[1:].isdigit()):
        return cannot(rest, ".000000")
    micros, rest = int(frac[1:]), rest[7:]
    offset = 0
    if rest.startswith("Z"):
        rest = rest[1:]
    else:
        tz = rest[:6]
        hh, mm = num(tz[1:3], True), num(tz[4:6], True)
        if len(tz) < 6 or tz[3] != ":" or tz[0] not in "+-" or hh is None or mm is None:
            return cannot(rest, "Z07:00")
        if hh[0] > 24:
            return out_of_range("time zone offset hour")
        if mm[0] > 60:
            return out_of_range("time zone offset minute")
        offset = (hh[0] * 60 + mm[0]) * (-1 if tz[0] == "-" else 1)
        rest = rest[6:]
    if rest:
        return "", f"parsing time {_go_quote(value)}: extra text: {_go_quote(rest)}"
    year, month, day, hour, minute, second = fields
    try:
        when = dt.datetime(year, month, day, hour, minute, second, micros)
    except ValueError:
        return out_of_range("day")
    try:
        utc = when - dt.timedelta(minutes=offset)
    except OverflowError:
        return "", f"parsing time {_go_quote(value)}: year out of range"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{micros:06d}Z", ""


def _lease(new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return
    old_spec = (old or {}).get("spec") or {}
    # CoordinatedLeaderElection is off (alpha in 1.32): its fields are dropped unless the
    # stored lease already has them.
    for key in ("preferredHolder", "strategy"):
        if old_spec.get(key) is None:
            spec.pop(key, None)
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
