"""Teardown: delete what the runbook created, in reverse order, and nothing else.

Names come from the parameters; the IngressClass is deleted only while it still points at
our MseIngressConfig. The add-on is left installed (other gateways may use it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from egress_lib import kube, manifests
from egress_lib.errors import PreconditionFailed
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps import snat
from egress_lib.steps._common import require_approval
from egress_lib.steps.verify import pod_name

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "07-teardown"


def _targets(session: Session) -> list[tuple[str, str, str | None]]:
    # (kind, name, namespace) in deletion order: consumers before what they use.
    p = session.params
    out: list[tuple[str, str, str | None]] = [
        ("Pod", pod_name(d), p.namespace) for d in p.destinations
    ]
    out += [("Ingress", o["metadata"]["name"], p.namespace) for o in manifests.ingresses(p)]
    out += [("Service", d.name, p.namespace) for d in p.destinations]
    out.append(("IngressClass", p.gateway.ingress_class, None))
    out.append(("MseIngressConfig", p.gateway.config_name, None))
    return out


def _ours(session: Session, kind: str, obj: dict[str, Any]) -> str | None:
    """None if the object is ours to delete, else why not."""
    p = session.params
    if kind == "IngressClass":
        params = (obj.get("spec") or {}).get("parameters") or {}
        if params.get("kind") != "MseIngressConfig" or params.get("name") != p.gateway.config_name:
            return (
                f"bound to {params.get('kind')} {params.get('name')}, not {p.gateway.config_name}"
            )
    if kind == "Service" and (obj.get("spec") or {}).get("type") != "ExternalName":
        return "not an ExternalName Service"
    return None


def plan(session: Session) -> Plan:
    """Deletes for every runbook object that still exists, then our SNAT entries."""
    changes: list[Change] = []
    warnings: list[str] = []
    for kind, name, ns in _targets(session):
        obj = kube.get(session, kind, name, ns)
        if obj is None:
            changes.append(Change("unchanged", kind, name, "already absent"))
            continue
        why_not = _ours(session, kind, obj)
        if why_not:
            changes.append(Change("unchanged", kind, name, f"kept: {why_not}"))
            warnings.append(f"{kind} {name} is kept: {why_not}")
        else:
            detail = "the controller then deletes the gateway" if kind == "MseIngressConfig" else ""
            changes.append(Change("delete", kind, name, detail))
    try:
        _, entries = snat.entries_to_delete(session)
    except PreconditionFailed as e:
        warnings.append(f"SNAT entries not checked: {e}")
        entries = []
    changes += [
        Change("delete", "SnatEntry", str(e.get("SourceVSwitchId")), str(e.get("SnatEntryId")))
        for e in entries
    ]
    return Plan(STEP, changes, warnings)


_make_plan = plan  # apply's argument is also called "plan"


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Delete in order, waiting for the MseIngressConfig and SNAT entries to disappear."""
    plan = plan if plan is not None else _make_plan(session)
    require_approval(session, plan)
    p = session.params
    applied: list[Change] = []
    for change in plan.changes:
        if change.action != "delete" or change.kind == "SnatEntry":
            continue
        ns = p.namespace if change.kind in ("Pod", "Ingress", "Service") else None
        # Waiting on the MseIngressConfig matters: its finalizer removes the MSE gateway
        # and CLB, which must be gone before the SNAT entry is removed from under it.
        wait = change.kind in ("MseIngressConfig", "Pod")
        timeout = p.timeouts.gateway_seconds if change.kind == "MseIngressConfig" else 120
        issued = kube.delete(session, change.kind, change.name, ns, wait=wait, timeout=timeout)
        applied.append(
            Change("delete" if issued else "unchanged", change.kind, change.name, change.detail)
        )
    if any(c.kind == "SnatEntry" and c.action == "delete" for c in plan.changes):
        applied += snat.delete_entries(session)
    return StepResult(STEP, applied, [], {}, list(plan.warnings))
