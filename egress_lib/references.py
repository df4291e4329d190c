"""What the policies name in the cluster, and whether it is there (reads only).

A mirror target must be an existing Service with the port; a client certificate or a TLS
offload certificate must be an existing Secret of type kubernetes.io/tls. The gateway
would otherwise accept the Ingress and fail quietly (no mirror, a failed handshake), so
``egress-runbook check`` and step 00 look first. Secrets are read as a ``Table`` (what
``kubectl get secret`` asks for): the server sends the name and type, never the keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from egress_lib import kube
from egress_lib.errors import KubernetesApiError, Problem
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Parameters

TLS_SECRET = "kubernetes.io/tls"
# meta.k8s.io/v1 Table with PartialObjectMetadata rows: no Secret data crosses the wire.
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


@dataclass(frozen=True)
class Reference:
    """One object a parameter names: ``parameter`` is its key path, ``value`` as given."""

    parameter: str
    value: str
    kind: Literal["Service", "Secret"]
    namespace: str
    name: str
    port: int | None = None  # the Service port the parameter names
    purpose: str = ""  # what it is for, e.g. "the mirror target"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Finding:
    """The outcome of one reference: ``ok``, or ``problem`` saying what is wrong.

    ``unchecked`` means it could not be read (e.g. no permission): neither ok nor a problem.
    """

    reference: Reference
    ok: bool
    detail: str
    problem: Problem | None = None
    unchecked: bool = False


def _service_ref(ref: str, namespace: str) -> tuple[str, str, int | None]:
    ns, _, rest = ref.rpartition("/")
    name, _, port = rest.partition(":")
    return ns or namespace, name, int(port) if port else None


def references(p: Parameters) -> list[Reference]:
    """Every in-cluster object the policies name, in parameter order (offline)."""
    out: list[Reference] = []
    for i, d in enumerate(p.destinations):
        key = f"destinations[{i}].policies"
        pol = d.policies
        if pol.mirror is not None:
            ns, name, port = _service_ref(pol.mirror.service, p.namespace)
            out.append(
                Reference(
                    f"{key}.mirror.service",
                    pol.mirror.service,
                    "Service",
                    ns,
                    name,
                    port,
                    f"the mirror target of {d.name}",
                )
            )
        cert = pol.upstream_tls.client_certificate if pol.upstream_tls else None
        if cert is not None:
            out.append(
                Reference(
                    f"{key}.upstream_tls.client_certificate",
                    cert,
                    "Secret",
                    p.namespace,
                    cert,
                    purpose=f"the client certificate the gateway presents to {d.host}",
                )
            )
        if pol.tls_offload is not None:
            out.append(
                Reference(
                    f"{key}.tls_offload.certificate",
                    pol.tls_offload.certificate,
                    "Secret",
                    p.namespace,
                    pol.tls_offload.certificate,
                    purpose=f"the certificate the gateway serves for {d.host}",
                )
            )
    return out


def _missing(r: Reference, what: str, expected: str) -> Finding:
    return Finding(r, False, what, Problem(r.parameter, r.value, expected, f"{r.value!r}: {what}"))


def check_service(session: Session, r: Reference) -> Finding:
    """The Service exists and, when the parameter names one, has the port."""
    expected = f"an existing Service in namespace {r.namespace}" + (
        f" with port {r.port}" if r.port is not None else ""
    )
    svc = kube.get(session, "Service", r.name, r.namespace)
    if svc is None:
        where = (
            ""
            if _namespace_exists(session, r.namespace)
            else (f" (namespace {r.namespace} does not exist)")
        )
        return _missing(r, f"Service {r.ref} not found{where}", expected)
    ports = [int(x.get("port") or 0) for x in (svc.get("spec") or {}).get("ports") or []]
    if r.port is not None and r.port not in ports:
        have = ", ".join(map(str, ports)) or "none"
        return _missing(r, f"Service {r.ref} has no port {r.port} (its ports: {have})", expected)
    if not ports:
        return _missing(r, f"Service {r.ref} has no ports", expected)
    return Finding(r, True, f"Service {r.ref} has port {r.port or ports[0]}")


def _namespace_exists(session: Session, namespace: str) -> bool:
    try:
        return kube.get(session, "Namespace", namespace) is not None
    except KubernetesApiError:
        return True  # cannot tell (no right to read Namespaces): say nothing about it


def secret_type(session: Session, namespace: str, name: str) -> str | None:
    """The Secret's type, or None when it does not exist; its data is never fetched."""
    try:
        with k8s_errors("get", "Secret", name):
            resp = session.core.read_namespaced_secret(
                name,
                namespace,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
                _headers={"Accept": TABLE_ACCEPT},
            )
    except KubernetesApiError as e:
        if e.status == 404:
            return None
        raise
    table: dict[str, Any] = json.loads(resp.data)
    columns = [str(c.get("name") or "").lower() for c in table.get("columnDefinitions") or []]
    rows = table.get("rows") or []
    if "type" not in columns or not rows:
        return "Opaque"  # a server without the column; kubectl shows Opaque by default too
    return str((rows[0].get("cells") or [])[columns.index("type")])


def check_secret(session: Session, r: Reference) -> Finding:
    """The Secret exists and is of type kubernetes.io/tls."""
    expected = f"an existing Secret of type {TLS_SECRET} in namespace {r.namespace}"
    found = secret_type(session, r.namespace, r.name)
    if found is None:
        return _missing(r, f"Secret {r.ref} not found", expected)
    if found != TLS_SECRET:
        return _missing(r, f"Secret {r.ref} is of type {found}", expected)
    return Finding(r, True, f"Secret {r.ref} is of type {TLS_SECRET}")


def check(session: Session, r: Reference) -> Finding:
    """One reference; a 403 (no right to read it) is ``unchecked``, other API errors raise."""
    try:
        return check_service(session, r) if r.kind == "Service" else check_secret(session, r)
    except KubernetesApiError as e:
        if e.status in (401, 403):
            return Finding(
                r,
                False,
                f"cannot read {r.kind} {r.ref} ({e.status} {e.reason}): not checked",
                unchecked=True,
            )
        raise


def check_all(session: Session) -> list[Finding]:
    """Every reference of ``session.params``, read from the cluster."""
    return [check(session, r) for r in references(session.params)]


def problems(findings: list[Finding]) -> list[Problem]:
    """The problems among ``findings``, in order."""
    return [f.problem for f in findings if f.problem is not None]
