"""Step 07: the layer-7 egress policies: the objects that carry them, then a check of each.

The plan is that of the objects the policies live in (the MseIngressConfig's
spec.global.ipAccessControl, the ExternalName Services of every endpoint, the Ingresses'
annotations and spec.tls), built by the same functions as steps 02, 04 and 05, so after 05
it changes nothing and an edit of the parameters shows exactly what differs; plus one
temporary curl pod per probe. Apply carries out that plan, waits for the Ingresses'
addresses, then checks each policy from pods (:mod:`egress_lib.steps.policy_checks`).
Without a declared policy the plan is empty and nothing is checked.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from egress_lib import kernel, kube, manifests, notebook, pod_probe
from egress_lib.plan import CHANGING, Change, Plan, StepResult
from egress_lib.policy_annotations import GATEWAY_ROW, MANAGED_ANNOTATIONS, policy_rows
from egress_lib.steps import gateway
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_objects, plan_or_refuse
from egress_lib.steps.ingress import ClbAddress, current_addresses, wait_for_clb_address
from egress_lib.steps.policy_checks import build, ip_coverage
from egress_lib.steps.policy_outage import sandbox_outage
from egress_lib.steps.policy_probes import Context, pod_name, run_probes
from egress_lib.steps.policy_results import CheckRow, PolicyResult
from egress_lib.tables import Table

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Parameters

STEP = "07-egress-policies"
KINDS = ("MseIngressConfig", "Service", "Ingress")
NO_POLICY = (
    "no policy declared (destinations[].policies, gateway.ip_access_control): nothing to "
    "apply or check"
)
POLICY_COLUMNS = ["Destination", "Policy", "Parameter", "Annotation or field", "Value", "Scope"]


def policy_table(params: Parameters) -> Table:
    """Each declared policy as the gateway gets it: parameter, annotation or field, scope."""
    rows = [
        [r.destination, r.policy, r.parameter, r.target, r.value, r.scope]
        for r in policy_rows(params)
        if r.destination == GATEWAY_ROW or _declares(params, r.destination)
    ]
    return Table(POLICY_COLUMNS, rows, empty=NO_POLICY)


def _declares(params: Parameters, name: str) -> bool:
    # Rows of destinations without policies (their sni, backend_protocol) are steps 04/05's.
    return any(d.name == name and d.policies.declared() for d in params.destinations)


def context(session: Session, addresses: list[ClbAddress] | None = None) -> Context:
    """What the probes are built from; without addresses, the Ingresses' current ones."""
    p = session.params
    if addresses is None:
        found = current_addresses(session)
        by_ingress = {k: v for k, v in found.items() if v is not None}
    else:
        by_ingress = {a.ingress: a for a in addresses}
    # Unique to this check: the mirror's logs may hold earlier runs' copies.
    marker = f"{session.short_run_id}{secrets.token_hex(3)}"
    return Context(p, by_ingress, p.target == "sandbox", marker)


def _stray_annotations(session: Session, desired: list[dict[str, Any]]) -> list[str]:
    """Warnings for policy annotations an Ingress carries that the parameters do not.

    An update lays the desired object over the live one, so it cannot remove a key; such an
    annotation stays in force until removed by hand.
    """
    out = []
    for obj in desired:
        meta = obj["metadata"]
        live = kube.get(session, "Ingress", meta["name"], meta["namespace"])
        have = ((live or {}).get("metadata") or {}).get("annotations") or {}
        want = meta.get("annotations") or {}
        extra = [k for k in MANAGED_ANNOTATIONS if k in have and k not in want]
        if extra:
            keys = " ".join(f"{k}-" for k in extra)
            out.append(
                f"Ingress {meta['name']} carries {', '.join(extra)}, which the parameters do "
                f"not declare; an update does not remove it: kubectl annotate ingress "
                f"{meta['name']} -n {meta['namespace']} {keys}"
            )
    return out


def plan(session: Session) -> Plan:
    """The policies' objects (as 02, 04 and 05 plan them) and one test pod per probe."""
    p = session.params
    if not p.has_policies():
        return Plan(STEP, [], notes=[NO_POLICY])
    config = gateway.objects(session)[0]  # step 02's rules for updates included
    changes = [kube.plan_object(session, config)]
    if changes[0].action in CHANGING:
        changes.append(Change("wait", "MseIngressConfig", p.gateway.config_name, "phase Listening"))
    changes += plan_objects(session, "Service", manifests.external_name_services(p))
    ingresses = manifests.ingresses(p)
    changes += plan_objects(session, "Ingress", ingresses)
    changes += [
        Change("wait", "Ingress", o["metadata"]["name"], "status.loadBalancer address", p.namespace)
        for o in ingresses
    ]
    ctx = context(session)
    probes, _ = build(ctx)
    changes += [
        Change("test", "Pod", pod_name(session, pr), f"temporary: {pr.summary}", p.namespace)
        for pr in probes
    ]
    changes += pod_probe.leftovers(session)
    notes = []
    missing = sorted({d.ingress for d in p.destinations if d.ingress not in ctx.addresses})
    if missing:
        notes.append(
            f"Ingress {', '.join(missing)} has no address yet (steps 02 and 05 publish it): the "
            "probes use the address the Ingress status carries when this step runs"
        )
    return Plan(STEP, changes, _stray_annotations(session, ingresses), notes)


_make_plan = plan  # apply's argument is also called "plan"


def _order(params: Parameters, rows: list[CheckRow]) -> list[CheckRow]:
    # Gateway-wide rows first, then by destination as the parameters list them.
    rank = {d.name: i for i, d in enumerate(params.destinations)}
    return sorted(
        rows,
        key=lambda r: -1 if r.destination == GATEWAY_ROW else rank.get(r.destination, len(rank)),
    )


def check(session: Session, addresses: list[ClbAddress] | None = None) -> PolicyResult:
    """Run every probe and judge it; failures are rows, not exceptions."""
    p = session.params
    if not p.has_policies():
        return PolicyResult(ran=False, declared=False)
    ctx = context(session, addresses or wait_for_clb_address(session))
    probes, static = build(ctx)
    rows = run_probes(session, probes, sandbox_outage(session) if ctx.sandbox else None)
    rows += static
    rows += ip_coverage(ctx, rows)
    return PolicyResult(_order(p, rows))


def _carry(session: Session, plan: Plan | None) -> tuple[StepResult, PolicyResult]:
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)
    out: list[PolicyResult] = []

    def go(planned: Plan) -> StepResult:
        # Under the lock, so no other run is running its probes (pod_probe.leftovers).
        applied = pod_probe.remove_leftovers(session, planned)
        applied += apply_kube_changes(session, planned, KINDS)
        if any(c.kind == "MseIngressConfig" and c.action in CHANGING for c in applied):
            gateway.wait_listening(session)
        result = check(session, wait_for_clb_address(session))
        out.append(result)
        result.save()
        checks = [
            Change("check", "Policy", f"{r.destination}/{r.policy}", f"{r.outcome}: {r.check}")
            for r in result.rows
        ]
        tables = {"policies": result.to_frame()}
        return StepResult(STEP, applied + checks, [], tables, list(planned.warnings))

    step = carry_out(session, plan, _make_plan if given else None, go)
    out[0].step = step
    return step, out[0]


def _nothing(plan: Plan | None) -> PolicyResult:
    step = StepResult(STEP, [], [], {}, [], plan, summary=NO_POLICY)
    return PolicyResult(ran=False, declared=False, step=step)


def run(session: Session, plan: Plan | None = None) -> PolicyResult:
    """Apply the plan and run the checks; a failing check is a row, not an exception."""
    if not session.params.has_policies():
        return _nothing(plan)
    return _carry(session, plan)[1]


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Apply the plan and run the checks; raise :class:`StepFailed` if any check fails."""
    if not session.params.has_policies():
        step = _nothing(plan).step
        assert step is not None
        return step
    step, result = _carry(session, plan)
    result.raise_for_failures()
    return step


def run_in_notebook(session: Session, plan: Plan) -> Any:
    """The notebook's apply cell: run when approved, else Apply buttons, or "not run".

    The result is the check table; ``result.step`` is what apply did to the objects.
    """
    if not session.params.has_policies():
        return _nothing(plan)
    if notebook.approved(session, plan):
        return run(session, plan)
    n = plan.change_count
    if kernel.widgets_enabled():
        from egress_lib.apply_panel import ApplyPanel

        why = f"{n} change(s) and the checks not run yet: click the button to apply this plan."
        pending = StepResult(STEP, [], [], {}, [why], plan, applied=False)
        label = f"Apply {n} change(s) and check" if n else "Run the checks"
        return ApplyPanel(session, plan, run, PolicyResult(ran=False, step=pending), label=label)
    why = (
        f"{n} change(s) not applied and no check run: approve is false. Review the plan, "
        "set approve = True in the parameters cell and run the notebook again."
    )
    return PolicyResult(ran=False, step=StepResult(STEP, [], [], {}, [why], plan, applied=False))
