"""Step 02: the MseIngressConfig (an internal-CLB-only MSE gateway) and its IngressClass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory, kube, manifests
from egress_lib.errors import StepFailed
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.resources import Clb
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_or_refuse

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "02-create-gateway"
OWNER_TAG = "ingress.k8s.alibaba/MseIngressConfig"
CLB_COLUMNS = ["LoadBalancerId", "Name", "Address", "AddressType", "Spec", "VSwitchId", "Status"]


def objects(session: Session) -> list[dict[str, Any]]:
    """The manifests this step applies, in order."""
    p = session.params
    return [manifests.mse_ingress_config(p), manifests.ingress_class(p)]


def plan(session: Session) -> Plan:
    """Create/update the MseIngressConfig and IngressClass, then wait for Listening."""
    p = session.params
    changes = [kube.plan_object(session, o) for o in objects(session)]
    changes.append(Change("wait", "MseIngressConfig", p.gateway.config_name, "phase Listening"))
    return Plan(STEP, changes)


_make_plan = plan  # apply's argument is also called "plan"


def wait_listening(session: Session) -> dict[str, Any]:
    """Watch the MseIngressConfig until ``status.phase`` is Listening; Failed is an error."""
    p = session.params

    def ready(obj: dict[str, Any] | None) -> bool:
        status = (obj or {}).get("status") or {}
        if status.get("phase") == "Failed":
            raise StepFailed(
                f"MseIngressConfig {p.gateway.config_name} is Failed: "
                f"{status.get('message') or status.get('Message') or 'no message'}"
            )
        return status.get("phase") == "Listening"

    return kube.wait_for(
        session,
        "MseIngressConfig",
        p.gateway.config_name,
        None,
        ready,
        timeout=p.timeouts.gateway_seconds,
        reason="the MSE gateway to be created and listening (usually 3-5 minutes)",
    )


def clbs(session: Session) -> list[Clb]:
    """Intranet CLBs in the gateway's first vSwitch (owned by our MseIngressConfig if tagged)."""
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    found = inventory.clbs(
        session, vpc_id=vpc_id, v_switch_id=p.gateway.vswitches[0], address_type="intranet"
    )
    return [c for c in found if c.tag(OWNER_TAG) in (None, p.gateway.config_name)]


def clb_frame(session: Session) -> pd.DataFrame:
    """The gateway's internal CLB(s) as a DataFrame."""
    rows = [
        [c.id, c.name, c.address, c.address_type, c.spec, c.vswitch_id, c.status]
        for c in clbs(session)
    ]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=CLB_COLUMNS)
    return frame


def public_clb_warnings(session: Session) -> list[str]:
    """A warning per internet-facing CLB tagged with our MseIngressConfig."""
    p = session.params
    return [
        f"internet-facing CLB {c.id} ({c.address}) belongs to "
        f"{p.gateway.config_name}: the egress gateway should be internal only"
        for c in inventory.clbs(session, address_type="internet")
        if c.tag(OWNER_TAG) == p.gateway.config_name
    ]


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``, wait for Listening, and show the gateway's CLB."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        applied = apply_kube_changes(session, planned, ("MseIngressConfig", "IngressClass"))
        listening = wait_listening(session)
        read = [kube.strip_server_fields(listening)]
        read.append(kube.read_back(session, manifests.ingress_class(session.params)))
        warnings = list(planned.warnings) + public_clb_warnings(session)
        return StepResult(STEP, applied, read, {"clb": clb_frame(session)}, warnings)

    return carry_out(session, plan, _make_plan if given else None, run)
