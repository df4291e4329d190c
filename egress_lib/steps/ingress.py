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
from egress_lib.tables import Table

if TYPE_CHECKING:
    from egress_lib.clients import Session

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
    return Plan(STEP, changes, list(p.notes))


_make_plan = plan  # apply's argument is also called "plan"


def _address(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    lb = ((obj or {}).get("status") or {}).get("loadBalancer") or {}
    entries = lb.get("ingress") or []
    first = entries[0] if entries else None
    return first if first and (first.get("ip") or first.get("hostname")) else None


def wait_for_clb_address(session: Session) -> list[ClbAddress]:
    """Watch each Ingress until its status has an ip or hostname (deadline per Ingress)."""
    p = session.params
    out: list[ClbAddress] = []
    for name in p.ingress_groups():
        obj = kube.wait_for(
            session,
            "Ingress",
            name,
            p.namespace,
            lambda o: _address(o) is not None,
            timeout=p.timeouts.ingress_status_seconds,
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
    out: dict[str, ClbAddress | None] = {}
    for name in p.ingress_groups():
        obj = kube.get(session, "Ingress", name, p.namespace)
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
    for a in addresses:
        found = inventory.clbs(session, address=a.ip) if a.ip else []
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
        read = [kube.read_back(session, o) for o in objs]
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
