"""Step 04: one ExternalName Service per destination."""

from __future__ import annotations

from typing import TYPE_CHECKING

from egress_lib import manifests
from egress_lib.plan import Plan, StepResult
from egress_lib.steps._common import apply_objects, plan_objects, require_approval

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "04-external-services"


def plan(session: Session) -> Plan:
    """Create/update the ExternalName Services."""
    return Plan(STEP, plan_objects(session, manifests.external_name_services(session.params)))


_make_plan = plan  # apply's argument is also called "plan"


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Apply the Services; objects are returned as read back from the server."""
    plan = plan if plan is not None else _make_plan(session)
    require_approval(session, plan)
    changes, read = apply_objects(session, manifests.external_name_services(session.params))
    return StepResult(STEP, changes, read, {}, list(plan.warnings))
