"""Step 05: the Ingresses routing each destination host/path through the gateway.

The gateway writes the CLB address into each Ingress's status once it picks the Ingress up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory, kube, manifests
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_objects, plan_or_refuse
from egress_lib.steps._gateway_state import FAILED, GatewayWatch, message, phase
from egress_lib.tables import Table

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.resources import Clb

STEP = "05-ingress-routes"


@dataclass(frozen=True)
class ClbAddress:
    """Where clients reach the gateway for one Ingress."""

    ingress: str
    ip: str | None
    port: int = 80
    hostname: str | None = None

    @property
    def address(self) -> str:
        """The IP, or the hostname when the status carries only a name."""
        return self.ip or self.hostname or ""


def plan(session: Session) -> Plan:
    """Create/update the Ingresses, delete ours no destination names, wait for addresses."""
    p = session.params
    objs = manifests.ingresses(p)
    changes = plan_objects(session, "Ingress", objs)
    changes += [
        Change("wait", "Ingress", o["metadata"]["name"], "status.loadBalancer address", p.namespace)
        for o in objs
    ]
    return Plan(STEP, changes, failed_gateway_warnings(session, STEP), list(p.notes))


def failed_gateway_warnings(session: Session, step: str) -> list[str]:
    """A warning when the gateway the IngressClass names is Failed: apply stops at once."""
    watch = GatewayWatch(session, step, "")
    obj = watch.current()
    if obj is None or phase(obj) != FAILED:
        return []
    klass = session.params.gateway.ingress_class
    text = (
        f"MseIngressConfig {watch.name}, the gateway of IngressClass {klass}, is Failed "
        f"({message(obj)}): {step} stops at once until 02-create-gateway, approved, has "
        "recreated it"
    )
    return [text]


_make_plan = plan  # apply's argument is also called "plan"


def _address(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    lb = ((obj or {}).get("status") or {}).get("loadBalancer") or {}
    entries = lb.get("ingress") or []
    first = entries[0] if entries else None
    return first if first and (first.get("ip") or first.get("hostname")) else None


def wait_for_clb_address(session: Session, step: str = STEP) -> list[ClbAddress]:
    """Watch each Ingress until its status has an ip or hostname (deadline per Ingress).

    Only a Listening gateway publishes addresses, so the gateway the IngressClass names is
    waited for first, and a Failed one stops the wait at once (:class:`StepFailed` naming
    it, its Events, and ``step`` to re-run once 02 has recreated it).
    """
    p = session.params
    timeout = p.timeouts.ingress_status_seconds
    gateway = GatewayWatch(session, step, "the Ingress addresses cannot be published")
    gateway.wait_listening(timeout)
    # One LIST finds the addresses already published; only the others are watched.
    listed = {o["metadata"]["name"]: o for o in kube.list_all(session, "Ingress", p.namespace)}
    out: list[ClbAddress] = []
    for name in p.ingress_groups():
        if _address(listed.get(name)) is not None:
            out.append(_clb_address(name, listed[name]))
            continue

        def published(obj: dict[str, Any] | None) -> bool:
            if _address(obj) is not None:
                return True
            gateway.check()  # an Ingress without an address: is its gateway Failed meanwhile?
            return False

        obj = kube.wait_for(
            session,
            "Ingress",
            name,
            p.namespace,
            published,
            timeout=timeout,
            reason=f"the gateway to publish an address for Ingress {name}",
        )
        out.append(_clb_address(name, obj))
    return out


def _clb_address(name: str, obj: dict[str, Any] | None) -> ClbAddress:
    entry = _address(obj) or {}
    ports = entry.get("ports") or []
    port = int(ports[0].get("port") or 80) if ports else 80
    return ClbAddress(name, entry.get("ip"), port, entry.get("hostname"))


def current_addresses(session: Session) -> dict[str, ClbAddress | None]:
    """Each Ingress's address as its status has it now (None: not published yet); no wait."""
    p = session.params
    listed = {o["metadata"]["name"]: o for o in kube.list_all(session, "Ingress", p.namespace)}
    out: dict[str, ClbAddress | None] = {}
    for name in p.ingress_groups():
        obj = listed.get(name)
        out[name] = _clb_address(name, obj) if _address(obj) else None
    return out


ADDRESS_COLUMNS = ["Ingress", "Address", "Port", "LoadBalancerId", "AddressType", "Matches CLB"]


def address_table(session: Session, addresses: list[ClbAddress]) -> Table:
    """Each Ingress address cross-checked against SLB DescribeLoadBalancers, to read.

    "Matches CLB": the address is the gateway's private SLB address as MSE reports it.
    """
    from egress_lib.steps.gateway import expected_address

    expected = expected_address(session) if addresses else ""
    rows = []
    by_ip: dict[str, list[Clb]] = {}  # Ingresses of one gateway share its address
    for a in addresses:
        if a.ip and a.ip not in by_ip:
            by_ip[a.ip] = inventory.clbs(session, address=a.ip)
        found = by_ip.get(a.ip, []) if a.ip else []
        clb = found[0] if found else None
        rows.append(
            [
                a.ingress,
                a.address,
                a.port,
                clb.id if clb else None,
                clb.address_type if clb else None,
                clb is not None and clb.address == a.ip and a.address == expected,
            ]
        )
    return Table(ADDRESS_COLUMNS, rows, empty="no Ingress address yet")


def address_frame(session: Session, addresses: list[ClbAddress]) -> pd.DataFrame:
    """:func:`address_table` as a DataFrame."""
    return address_table(session, addresses).to_frame()


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``, wait for the addresses and check them against the CLB."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        applied = apply_kube_changes(session, planned, ("Ingress",))
        objs = manifests.ingresses(session.params)
        addresses = wait_for_clb_address(session)
        read = kube.read_back_all(session, objs)
        frame = address_frame(session, addresses)
        warnings = list(planned.warnings)
        for a, ok in zip(addresses, frame["Matches CLB"], strict=True):
            if not ok:
                warnings.append(
                    f"Ingress {a.ingress} address {a.address} is not the private SLB address "
                    "MSE reports for the gateway"
                )
        return StepResult(STEP, applied, read, {"addresses": frame}, warnings)

    return carry_out(session, plan, _make_plan if given else None, run)
