"""Teardown: delete what the runbook created, in reverse order, and nothing else.

What the runbook created is what carries its ownership labels for this cluster (Kubernetes)
or is written in its ledger (SNAT entries). Objects with the runbook's names that someone
else made are listed as kept. The add-on is left installed (other gateways may use it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from egress_lib import kube, ledger, manifests, ownership, pod_probe
from egress_lib.errors import KubernetesApiError, PlanStale, PreconditionFailed
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps import snat
from egress_lib.steps._common import carry_out, plan_or_refuse

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "99-teardown"
# Deletion order: consumers before what they use, the reverse of setup.
ORDER: tuple[tuple[str, bool], ...] = (
    ("Pod", True),
    ("Ingress", True),
    ("Service", True),
    ("SnatEntry", False),
    ("MseIngressConfig", False),
    ("IngressClass", False),
    ("ConfigMap", True),
)


def _owned(session: Session, kind: str, namespaced: bool) -> list[dict[str, Any]]:
    try:
        return kube.list_owned(session, kind, session.params.namespace if namespaced else None)
    except KubernetesApiError as e:
        if e.status == 404:  # the MseIngressConfig API is not installed: nothing of ours
            return []
        raise


def _named(session: Session) -> list[tuple[str, str, str | None]]:
    p = session.params
    out: list[tuple[str, str, str | None]] = [
        ("Ingress", o["metadata"]["name"], p.namespace) for o in manifests.ingresses(p)
    ]
    # The endpoints' Services too (load_balancing), not only one per destination.
    out += [
        ("Service", o["metadata"]["name"], p.namespace) for o in manifests.external_name_services(p)
    ]
    out.append(("MseIngressConfig", p.gateway.config_name, None))
    out.append(("IngressClass", p.gateway.ingress_class, None))
    return out


def plan(session: Session) -> Plan:
    """Deletes for everything the runbook owns here, in order; what it does not own is kept."""
    changes: list[Change] = []
    warnings: list[str] = []
    deleting: set[str] = set()
    ledger_name = ledger.configmap_name(session.params.cluster_name)
    for kind, namespaced in ORDER:
        if kind == "SnatEntry":
            try:
                changes += snat.entries_to_delete(session)
            except PreconditionFailed as e:
                warnings.append(f"SNAT entries not checked: {e}")
            continue
        for obj in _owned(session, kind, namespaced):
            if kind == "ConfigMap" and obj["metadata"]["name"] != ledger_name:
                continue
            why = {
                "MseIngressConfig": "the controller then deletes the MSE gateway and its CLB",
                "ConfigMap": "the runbook's record of the SNAT entries it created",
            }.get(kind, "created by egress-runbook")
            if kind == "Pod" and ownership.RUN_LABEL in (obj["metadata"].get("labels") or {}):
                why = pod_probe.leftover_reason(obj)
            change = kube.plan_delete(session, obj, why)
            deleting.add(change.ref)
            changes.append(change)
    for kind, name, ns in _named(session):
        ref = f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"
        if ref in deleting:
            continue
        try:
            present = kube.get(session, kind, name, ns) is not None
        except KubernetesApiError as e:
            if e.status != 404:
                raise
            present = False
        if present:
            changes.append(
                Change("unchanged", kind, name, "kept: egress-runbook did not create it", ns)
            )
    return Plan(STEP, changes, warnings)


_make_plan = plan  # apply's argument is also called "plan"


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out the deletes in order, waiting for the gateway and SNAT entries to go."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)
    p = session.params

    def run(planned: Plan) -> StepResult:
        applied: list[Change] = []
        for change in planned.changes:
            if change.action != "delete":
                applied.append(change)
                continue
            if change.kind == "SnatEntry":
                applied.append(snat.delete_entry(session, change))
                continue
            try:
                done = kube.apply_change(session, change)
            except kube.StaleObject as e:
                written = [c.ref for c in applied if c.action == "delete"]
                raise PlanStale(STEP, [str(e)], written=written) from e
            # The MseIngressConfig's finalizer removes the MSE gateway and its CLB: wait, so
            # that a following setup does not meet a gateway that is still going away.
            if change.kind in ("MseIngressConfig", "Pod"):
                timeout = p.timeouts.gateway_seconds if change.kind == "MseIngressConfig" else 120
                kube.wait_for(
                    session,
                    change.kind,
                    change.name,
                    change.namespace,
                    lambda o: o is None,
                    timeout=timeout,
                    reason=f"{change.kind}/{change.name} to be deleted",
                )
            applied.append(done)
        return StepResult(STEP, applied, [], {}, list(planned.warnings))

    return carry_out(session, plan, _make_plan if given else None, run)
