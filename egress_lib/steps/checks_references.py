"""Preflight rows for what the policies name in the cluster: mirror Services, TLS Secrets.

Each reference is one row of 00's check table; a missing one fails the step, so that no
later step writes an Ingress whose mirror or certificate points at nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from egress_lib import references
from egress_lib.steps.preflight import AGAIN, Check

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.references import Finding


def _fix(f: Finding) -> str:
    r = f.reference
    if f.unchecked:
        return f"grant get on {r.kind.lower()}s in namespace {r.namespace}, then {AGAIN}"
    if r.kind == "Service":
        port = f" with port {r.port}" if r.port is not None else ""
        return f"create Service {r.ref}{port}, or change {r.parameter}; then {AGAIN}"
    return (
        f"create it (`kubectl -n {r.namespace} create secret tls {r.name} --cert=FILE "
        f"--key=FILE`), or change {r.parameter}; then {AGAIN}"
    )


def check_row(f: Finding) -> Check:
    """One finding as a check row; an unreadable reference is a warning, not a failure."""
    r = f.reference
    return Check(
        f"{r.parameter} ({r.kind} {r.ref})",
        f.ok,
        f.detail if f.ok else f"{f.detail}: {r.purpose}",
        level="warning" if f.unchecked else "error",
        fix="" if f.ok else _fix(f),
    )


def checks(session: Session) -> list[Check]:
    """One row per Service or Secret the policies name (none without such policies)."""
    return [check_row(f) for f in references.check_all(session)]
