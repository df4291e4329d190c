"""Step 02: the MseIngressConfig (an internal-CLB-only MSE gateway) and its IngressClass."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory, kube, manifests, remedies
from egress_lib.errors import EgressError, KubeEvent, StepFailed, WaitTimeout
from egress_lib.kube_events import events_for
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.resources import Clb
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_or_refuse
from egress_lib.tables import Table

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
    """Watch the MseIngressConfig until ``status.phase`` is Listening; Failed is an error.

    Either error carries the config's Events and says how to recover.
    """
    p = session.params
    name = p.gateway.config_name

    def ready(obj: dict[str, Any] | None) -> bool:
        status = (obj or {}).get("status") or {}
        if status.get("phase") == "Failed":
            uid = ((obj or {}).get("metadata") or {}).get("uid")
            raise StepFailed(
                f"MseIngressConfig {name} is Failed: "
                f"{status.get('message') or status.get('Message') or 'no message'}",
                remedy=remedies.mse_failed(name),
                events=failure_events(session, name, uid),
            )
        return status.get("phase") == "Listening"

    try:
        return kube.wait_for(
            session,
            "MseIngressConfig",
            name,
            None,
            ready,
            timeout=p.timeouts.gateway_seconds,
            reason="the MSE gateway to be created and listening (usually 3-5 minutes)",
        )
    except WaitTimeout as e:
        e.remedy = remedies.gateway_wait(name, p.timeouts.gateway_seconds)
        e.events = tuple(_events(session, name, _uid(session, name)))
        raise


# A controller may set the phase a moment before it records the Warning that says why.
EVENT_GRACE_SECONDS = 2.0


def failure_events(session: Session, name: str, uid: str | None) -> list[KubeEvent]:
    """The config's Events, waiting up to EVENT_GRACE_SECONDS for a Warning among them."""
    deadline = time.monotonic() + EVENT_GRACE_SECONDS
    while True:
        found = _events(session, name, uid)
        if any(e.type == "Warning" for e in found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def _uid(session: Session, name: str) -> str | None:
    # The config's uid keeps out the Events of an earlier config of the same name.
    try:
        obj = kube.get(session, "MseIngressConfig", name)
    except EgressError:
        return None
    return str(((obj or {}).get("metadata") or {}).get("uid") or "") or None


def _events(session: Session, name: str, uid: str | None) -> list[KubeEvent]:
    try:
        return events_for(session, "MseIngressConfig", name, uid=uid)
    except EgressError:
        return []  # best effort: no right to list Events must not hide the failure itself


def clbs(session: Session) -> list[Clb]:
    """Intranet CLBs in the gateway's first vSwitch (owned by our MseIngressConfig if tagged)."""
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    found = inventory.clbs(
        session, vpc_id=vpc_id, v_switch_id=p.gateway.vswitches[0], address_type="intranet"
    )
    return [c for c in found if c.tag(OWNER_TAG) in (None, p.gateway.config_name)]


def clb_table(session: Session) -> Table:
    """The gateway's internal CLB(s), to read."""
    rows = [
        [c.id, c.name, c.address, c.address_type, c.spec, c.vswitch_id, c.status]
        for c in clbs(session)
    ]
    vswitch = session.params.gateway.vswitches[0]
    empty = f"no internal CLB in {vswitch} yet: the gateway gets one when it is Listening"
    return Table(CLB_COLUMNS, rows, empty=empty)


def clb_frame(session: Session) -> pd.DataFrame:
    """The gateway's internal CLB(s) as a DataFrame."""
    return clb_table(session).to_frame()


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
