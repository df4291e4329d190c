"""Step 02: the MseIngressConfig (an internal-CLB-only MSE gateway) and its IngressClass."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory, kube, manifests, mse_api, remedies
from egress_lib.errors import EgressError, KubeEvent, StepFailed, WaitTimeout
from egress_lib.kube_events import events_for
from egress_lib.mse_api import GatewaySlb, MseGateway
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_or_refuse
from egress_lib.tables import Table

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "02-create-gateway"
CLB_COLUMNS = ["GatewayUniqueId", "SlbId", "Address", "Type", "Mode", "Status"]


def objects(session: Session) -> list[dict[str, Any]]:
    """The manifests this step applies, in order."""
    p = session.params
    config = manifests.mse_ingress_config(p)
    _clear_dropped_lists(config, kube.get(session, "MseIngressConfig", p.gateway.config_name))
    return [config, manifests.ingress_class(p)]


IP_LISTS = ("whitelist", "blacklist")


def _clear_dropped_lists(config: dict[str, Any], live: dict[str, Any] | None) -> None:
    """Write an empty list for a gateway-wide IP list the live config has and ours lacks.

    An update lays the desired keys over the live object and ignores keys only the live one
    has, so a list dropped from the parameters would stay in force; an empty list (no
    restriction) says it is gone. Without one live, the manifest stays the seed's.
    """
    # That MSE reads an empty whitelist as "any source" (as the sandbox does) is
    # [UNCONFIRMED]: the MseIngressConfig documentation only shows non-empty lists.
    live_lists = (((live or {}).get("spec") or {}).get("global") or {}).get("ipAccessControl")
    if not isinstance(live_lists, dict):
        return
    dropped = [k for k in IP_LISTS if live_lists.get(k)]
    spec = config["spec"]
    ours = spec.get("global", {}).get("ipAccessControl", {})
    missing = [k for k in dropped if k not in ours]
    if missing:
        spec.setdefault("global", {}).setdefault("ipAccessControl", {})
        for k in missing:
            spec["global"]["ipAccessControl"][k] = []


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


def mse_gateway(session: Session) -> MseGateway | None:
    """The gateway MSE reports for ``gateway.name`` in the cluster's VPC (None: not yet).

    Several gateways of that name in the VPC is an error: the runbook cannot tell which one
    the MseIngressConfig made.
    """
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    found = mse_api.list_gateways(session, name=p.gateway.name, vpc_id=vpc_id)
    if len(found) > 1:
        ids = ", ".join(g.unique_id for g in found)
        raise StepFailed(
            f"MSE reports {len(found)} gateways named {p.gateway.name!r} in {vpc_id}: {ids}",
            remedy="Give gateway.name a name no other gateway in the VPC has, or delete the "
            "stale gateway in the MSE console; then re-run this step.",
        )
    return found[0] if found else None


def mse_slbs(session: Session) -> tuple[MseGateway | None, list[GatewaySlb]]:
    """The gateway and the load balancers MSE reports in front of it."""
    gw = mse_gateway(session)
    return gw, (mse_api.gateway_slbs(session, gw.unique_id) if gw else [])


def private_address(gw: MseGateway, slbs: list[GatewaySlb]) -> str:
    """The private SLB's address: what the Ingress status must carry.

    Raises StepFailed naming every Internet-facing SLB: an egress gateway reachable from the
    internet is an open proxy. No private SLB is a failure too.
    """
    public = [s for s in slbs if s.public]
    if public:
        names = ", ".join(f"{s.slb_id} ({s.address})" for s in public)
        raise StepFailed(
            f"MSE gateway {gw.unique_id} ({gw.name}) has Internet-facing SLB(s) {names}: "
            "the egress gateway must be internal only",
            remedy=(
                f"In the MSE console, open gateway {gw.name} and unbind {names} from it; "
                "keep privateSLBSpec as the MseIngressConfig's only SLB spec. Then re-run "
                "this step. Until then, anyone on the internet can send traffic through the "
                "gateway."
            ),
        )
    private = [s for s in slbs if s.type == mse_api.PRIVATE_NET and s.address]
    if not private:
        raise StepFailed(
            f"MSE gateway {gw.unique_id} ({gw.name}) has no private SLB",
            remedy="Set gateway.private_slb_spec and re-run this step; if MSE still reports "
            "none, bind an internal SLB to the gateway in the MSE console.",
        )
    return private[0].address


def clb_table(session: Session) -> Table:
    """The gateway's load balancers as MSE reports them, to read."""
    return _slb_table(session, *mse_slbs(session))


def _slb_table(session: Session, gw: MseGateway | None, slbs: list[GatewaySlb]) -> Table:
    rows = [
        [gw.unique_id if gw else "", s.slb_id, s.address, s.type, s.mode, s.status] for s in slbs
    ]
    empty = (
        f"MSE reports no gateway named {session.params.gateway.name!r} yet: it appears once "
        "the MseIngressConfig is Running"
        if gw is None
        else f"MSE reports no load balancer for {gw.unique_id}"
    )
    return Table(CLB_COLUMNS, rows, empty=empty)


def clb_frame(session: Session) -> pd.DataFrame:
    """The gateway's load balancers as a DataFrame."""
    return clb_table(session).to_frame()


def expected_address(session: Session) -> str:
    """The private SLB address MSE reports; StepFailed on a public SLB or no gateway."""
    return _checked(session, *mse_slbs(session))


def _checked(session: Session, gw: MseGateway | None, slbs: list[GatewaySlb]) -> str:
    if gw is None:
        p = session.params
        raise StepFailed(
            f"MseIngressConfig {p.gateway.config_name} is Listening, but MSE ListGateway "
            f"reports no gateway named {p.gateway.name!r} in the cluster's VPC",
            remedy="Check spec.name of the MseIngressConfig against gateway.name, and the "
            "gateway in the MSE console; then re-run this step.",
        )
    return private_address(gw, slbs)


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``, wait for Listening, and check the gateway's SLBs with MSE."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        applied = apply_kube_changes(session, planned, ("MseIngressConfig", "IngressClass"))
        listening = wait_listening(session)
        read = [kube.strip_server_fields(listening)]
        read.append(kube.read_back(session, manifests.ingress_class(session.params)))
        gw, slbs = mse_slbs(session)
        _checked(session, gw, slbs)  # fails on a public SLB before step 03 opens egress
        tables = {"clb": _slb_table(session, gw, slbs).to_frame()}
        return StepResult(STEP, applied, read, tables, list(planned.warnings))

    return carry_out(session, plan, _make_plan if given else None, run)
