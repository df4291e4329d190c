"""Step 02: the MseIngressConfig (an internal-CLB-only MSE gateway) and its IngressClass."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory, kube, manifests, mse_api, ownership, remedies
from egress_lib.errors import EgressError, PlanStale, StepFailed, WaitTimeout
from egress_lib.mse_api import GatewaySlb, MseGateway
from egress_lib.plan import CHANGING, Change, Plan, StepResult
from egress_lib.steps import _gateway_state as gw_state
from egress_lib.steps._common import carry_out, plan_or_refuse
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
    """Create/update the MseIngressConfig and IngressClass, then wait for Listening.

    A Failed config the runbook owns is planned as a delete and a create (the controller
    never retries it); one being deleted as a wait for it to go, then a create.
    """
    p = session.params
    name = p.gateway.config_name
    live = kube.get(session, "MseIngressConfig", name)
    warnings: list[str] = []
    notes: list[str] = []
    recreate = _recreate(session, live)
    if recreate is not None:
        changes, say = recreate
        notes += say
    else:
        changes = [kube.plan_object(session, objects(session)[0])]
        if live is not None and gw_state.phase(live) == gw_state.FAILED:
            warnings.append(
                f"MseIngressConfig {name} is Failed ({gw_state.message(live)}) and egress-runbook "
                "did not create it, so it is not recreated: apply will fail until it is fixed"
            )
    changes.append(kube.plan_object(session, manifests.ingress_class(p)))
    shown = gw_state.phase(live) or "no phase yet"
    if changes[0].action == "unchanged" and shown not in (gw_state.LISTENING, gw_state.FAILED):
        # Not converged yet (a first run stopped while waiting): apply waits as a first run.
        notes.append(f"no change; waiting for MseIngressConfig {name} ({shown}) to be Listening")
    changes.append(Change("wait", "MseIngressConfig", name, "phase Listening"))
    return Plan(STEP, changes, warnings, notes)


def _recreate(
    session: Session, live: dict[str, Any] | None
) -> tuple[list[Change], list[str]] | None:
    """The delete (or wait) and create for a Failed or terminating config of ours; else None."""
    p = session.params
    name = p.gateway.config_name
    if live is None or ownership.owner(live, p) != "ours":
        return None
    terminating = bool((live.get("metadata") or {}).get("deletionTimestamp"))
    failed = gw_state.phase(live) == gw_state.FAILED
    if not (terminating or failed):
        return None
    desired = manifests.mse_ingress_config(p)
    # The same payload a first run's create has, so a plan made after the delete matches.
    create = Change(
        "create",
        "MseIngressConfig",
        name,
        "recreate: a new MseIngressConfig once the old one is gone (not validated by a dry run "
        "while the old one exists)",
        body=kube.to_yaml_text(desired),
        payload=copy.deepcopy(desired),
    )
    evts = gw_state.events(session, name, gw_state.uid(live))
    shown = [f"{e.type} {e.reason} (x{e.count}): {e.message}" for e in evts]
    listed = "; Events: " + " | ".join(shown) if shown else "; no Events recorded"
    if terminating:
        wait = Change(
            "wait",
            "MseIngressConfig",
            name,
            "being deleted: wait until its finalizer has removed the MSE gateway",
            payload=UNTIL_GONE,
        )
        return [wait, create], [f"MseIngressConfig {name} is being deleted{listed}"]
    why = (
        f"Failed: {gw_state.message(live)}; the controller never retries a Failed "
        "MseIngressConfig, so it is deleted (with its MSE gateway and CLB) and created again"
    )
    delete = kube.plan_delete(session, live, why)
    return [delete, create], [f"MseIngressConfig {name} is Failed{listed}"]


_make_plan = plan  # apply's argument is also called "plan"
# The payload of a wait for the old config to disappear (apply waits before the create).
UNTIL_GONE = {"until": "deleted"}


def wait_listening(session: Session) -> dict[str, Any]:
    """Watch the MseIngressConfig until ``status.phase`` is Listening; Failed is an error.

    Either error carries the config's Events and says how to recover.
    """
    p = session.params
    name = p.gateway.config_name

    def ready(obj: dict[str, Any] | None) -> bool:
        if gw_state.phase(obj) == gw_state.FAILED:
            assert obj is not None
            ours = ownership.owner(obj, p) == "ours"
            raise StepFailed(
                f"MseIngressConfig {name} is Failed: {gw_state.message(obj)}",
                remedy=remedies.mse_recreate(name) if ours else remedies.mse_failed_not_ours(name),
                events=gw_state.failure_events(session, name, gw_state.uid(obj)),
            )
        return gw_state.phase(obj) == gw_state.LISTENING

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
        e.events = tuple(gw_state.events(session, name, _uid(session, name)))
        raise


# Kept for callers of the old names.
EVENT_GRACE_SECONDS = gw_state.EVENT_GRACE_SECONDS
failure_events = gw_state.failure_events


def _uid(session: Session, name: str) -> str | None:
    # The config's uid keeps out the Events of an earlier config of the same name.
    try:
        obj = kube.get(session, "MseIngressConfig", name)
    except EgressError:
        return None
    return gw_state.uid(obj)


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
        applied = _apply_changes(session, planned)
        listening = wait_listening(session)
        read = [kube.strip_server_fields(listening)]
        read.append(kube.read_back(session, manifests.ingress_class(session.params)))
        gw, slbs = mse_slbs(session)
        _checked(session, gw, slbs)  # fails on a public SLB before step 03 opens egress
        tables = {"clb": _slb_table(session, gw, slbs).to_frame()}
        return StepResult(STEP, applied, read, tables, list(planned.warnings))

    return carry_out(session, plan, _make_plan if given else None, run)


def _apply_changes(session: Session, planned: Plan) -> list[Change]:
    """The plan's changes in order; a deleted (or terminating) config is waited for first.

    The create of a recreate must not reach the server while the old config still exists
    (its finalizer removes the MSE gateway first): it would be refused as AlreadyExists.
    """
    p = session.params
    applied: list[Change] = []
    for change in planned.changes:
        gone_first = change.kind == "MseIngressConfig" and (
            change.action == "delete" or change.payload == UNTIL_GONE
        )
        if change.action in CHANGING:
            try:
                applied.append(kube.apply_change(session, change))
            except kube.StaleObject as e:
                written = [c.ref for c in applied if c.action in CHANGING]
                raise PlanStale(planned.step, [str(e)], written=written) from e
        elif change.action in ("unchanged", "adopt"):
            applied.append(change)
        if gone_first:
            kube.wait_for(
                session,
                change.kind,
                change.name,
                None,
                lambda o: o is None,
                timeout=p.timeouts.gateway_seconds,
                reason=f"the old MseIngressConfig {change.name} and its MSE gateway to be deleted",
            )
            if change.action == "wait":
                applied.append(replace(change, detail="deleted"))
    return applied
