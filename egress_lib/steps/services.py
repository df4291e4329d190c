"""Step 04: one ExternalName Service per destination and per load-balancing endpoint.

Ours that the parameters no longer name (a destination or an endpoint removed) go: they
carry the ownership labels, which is what the plan's deletes and teardown look for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from egress_lib import kube, manifests
from egress_lib.plan import Plan, StepResult
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_objects, plan_or_refuse

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "04-external-services"


def plan(session: Session) -> Plan:
    """Create/update the ExternalName Services; delete ours that no destination names."""
    # external_name_services includes the endpoints' Services, so they are planned, and
    # deleted once dropped, like the destinations' own.
    desired = manifests.external_name_services(session.params)
    return Plan(STEP, plan_objects(session, "Service", desired))


_make_plan = plan  # apply's argument is also called "plan"


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``; the Services are returned as read back from the server."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        applied = apply_kube_changes(session, planned, ("Service",))
        desired = manifests.external_name_services(session.params)
        read = kube.read_back_all(session, desired)
        return StepResult(STEP, applied, read, {}, list(planned.warnings))

    return carry_out(session, plan, _make_plan if given else None, run)
