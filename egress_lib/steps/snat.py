"""Step 03: an SNAT entry on the VPC's Internet NAT gateway for each gateway vSwitch.

Only the gateway's vSwitches get SNAT, so only the MSE gateway (not every pod) can reach
the internet.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import inventory
from egress_lib.cloud import call
from egress_lib.errors import CloudApiError, PreconditionFailed
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps._common import require_approval, rows_frame
from egress_lib.waiting import poll

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "03-configure-snat"
# Column -> DescribeSnatTableEntries key.
SNAT_FIELDS = {
    "SnatEntryId": "SnatEntryId",
    "Name": "SnatEntryName",
    "SourceVSwitchId": "SourceVSwitchId",
    "SourceCIDR": "SourceCIDR",
    "SnatIp": "SnatIp",
    "Status": "Status",
}
SNAT_COLUMNS = list(SNAT_FIELDS)
# Codes meaning "the table is busy with another change": wait and try again.
BUSY_CODES = ("IncorretSnatEntryStatus", "IncorrectStatus.NATGW", "OperationConflict")


@dataclass(frozen=True)
class NatChoice:
    """The NAT gateway, its SNAT table and the EIP the entries use."""

    vpc_id: str
    nat_gateway_id: str
    snat_table_id: str
    snat_ip: str
    eips: tuple[str, ...]


def discover(session: Session) -> NatChoice:
    """Find the NAT gateway and EIP; zero/several gateways or a foreign snat_ip fail."""
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    nats = [
        n
        for n in inventory.nat_gateways(session, vpc_id)
        if (n.get("NetworkType") or "internet") == "internet"
    ]
    if p.snat.nat_gateway_id:
        chosen = [n for n in nats if n.get("NatGatewayId") == p.snat.nat_gateway_id]
        if not chosen:
            raise PreconditionFailed(
                f"snat.nat_gateway_id {p.snat.nat_gateway_id} is not an Internet NAT gateway of "
                f"the cluster's VPC {vpc_id} (found: {_ids(nats) or 'none'})"
            )
        nats = chosen
    if len(nats) != 1:
        raise PreconditionFailed(
            f"the cluster's VPC {vpc_id} has no Internet NAT gateway; create one first"
            if not nats
            else f"the cluster's VPC {vpc_id} has several Internet NAT gateways ({_ids(nats)}): "
            "set snat.nat_gateway_id"
        )
    nat = nats[0]
    tables = (nat.get("SnatTableIds") or {}).get("SnatTableId") or []
    if not tables:
        raise PreconditionFailed(f"NAT gateway {nat.get('NatGatewayId')} has no SNAT table")
    eips = tuple(str(e.get("IpAddress")) for e in inventory.eips_of(session, nat["NatGatewayId"]))
    if not eips:
        raise PreconditionFailed(
            f"NAT gateway {nat['NatGatewayId']} has no EIP bound: bind one before adding SNAT"
        )
    snat_ip = p.snat.snat_ip or eips[0]
    if snat_ip not in eips:
        raise PreconditionFailed(
            f"snat.snat_ip {snat_ip} is not an EIP of NAT gateway {nat['NatGatewayId']} "
            f"(its EIPs: {', '.join(eips)})"
        )
    return NatChoice(vpc_id, str(nat["NatGatewayId"]), str(tables[0]), snat_ip, eips)


def _ids(nats: list[dict[str, Any]]) -> str:
    return ", ".join(str(n.get("NatGatewayId")) for n in nats)


def client_token(session: Session, vswitch_id: str) -> str:
    """Same cluster + vSwitch + entry name -> same token, so a retried create is a no-op."""
    p = session.params
    seed = f"egress-runbook:{p.cluster_id}:{vswitch_id}:{p.snat.entry_name}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _covers(cidr: str, vswitch_cidr: str) -> bool:
    try:
        return ipaddress.ip_network(vswitch_cidr).subnet_of(ipaddress.ip_network(cidr))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


def _plan_with(session: Session) -> tuple[Plan, NatChoice]:
    p = session.params
    nat = discover(session)
    entries = inventory.snat_entries(session, nat.snat_table_id)
    cidrs = {
        str(v.get("VSwitchId")): str(v.get("CidrBlock"))
        for v in inventory.vswitches(session, nat.vpc_id)
    }
    changes: list[Change] = []
    warnings: list[str] = []
    for vsw in p.gateway.vswitches:
        same = [e for e in entries if e.get("SourceVSwitchId") == vsw]
        covering = [
            e
            for e in entries
            if e.get("SourceCIDR") and vsw in cidrs and _covers(str(e["SourceCIDR"]), cidrs[vsw])
        ]
        if same:
            e = same[0]
            changes.append(
                Change(
                    "unchanged",
                    "SnatEntry",
                    vsw,
                    f"{e.get('SnatEntryId')} ({e.get('SnatEntryName')}) uses {e.get('SnatIp')}",
                )
            )
            if nat.snat_ip not in str(e.get("SnatIp")).split(","):
                warnings.append(
                    f"{vsw} already has SNAT entry {e.get('SnatEntryId')} with SnatIp "
                    f"{e.get('SnatIp')}, not {nat.snat_ip}; it is left as it is"
                )
        elif covering:
            e = covering[0]
            changes.append(
                Change(
                    "unchanged",
                    "SnatEntry",
                    vsw,
                    f"covered by {e.get('SnatEntryId')} for {e.get('SourceCIDR')}",
                )
            )
        else:
            changes.append(
                Change(
                    "create",
                    "SnatEntry",
                    vsw,
                    f"{p.snat.entry_name}: {vsw} -> {nat.snat_ip} on {nat.nat_gateway_id}",
                )
            )
    return Plan(STEP, changes, warnings), nat


def plan(session: Session) -> Plan:
    """Which gateway vSwitches need an SNAT entry."""
    return _plan_with(session)[0]


_make_plan = plan  # apply's argument is also called "plan"


def create_entry(session: Session, nat: NatChoice, vswitch_id: str) -> str:
    """CreateSnatEntry with a deterministic ClientToken; returns the SnatEntryId."""
    from alibabacloud_vpc20160428 import models as m

    p = session.params
    req = m.CreateSnatEntryRequest(
        region_id=p.region_id,
        snat_table_id=nat.snat_table_id,
        source_vswitch_id=vswitch_id,
        snat_ip=nat.snat_ip,
        snat_entry_name=p.snat.entry_name,
        client_token=client_token(session, vswitch_id),
    )
    body = call("vpc", "CreateSnatEntry", session.vpc.create_snat_entry, req)
    return str(body.snat_entry_id)


def wait_available(session: Session, table_id: str, entry_id: str) -> dict[str, Any]:
    """Poll DescribeSnatTableEntries (no watch in the VPC API) until Available."""

    def fetch() -> dict[str, Any]:
        rows = inventory.snat_entries(session, table_id, snat_entry_id=entry_id)
        return rows[0] if rows else {}

    return poll(
        fetch,
        lambda e: e.get("Status") == "Available",
        timeout=session.params.timeouts.snat_seconds,
        what=f"SNAT entry {entry_id}",
        reason="the SNAT entry to become Available",
        describe=lambda e: str(e.get("Status") or "absent"),
    )


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Create the missing entries and wait until each is Available."""
    fresh, nat = _plan_with(session)
    plan = plan if plan is not None else fresh
    require_approval(session, plan)
    applied: list[Change] = []
    for change in fresh.changes:
        if change.action != "create":
            applied.append(change)
            continue
        entry_id = create_entry(session, nat, change.name)
        entry = wait_available(session, nat.snat_table_id, entry_id)
        applied.append(
            Change("create", "SnatEntry", change.name, f"{entry_id} {entry.get('Status')}")
        )
    return StepResult(STEP, applied, [], {"snat": snat_frame(session)}, list(fresh.warnings))


def snat_frame(session: Session) -> pd.DataFrame:
    """The NAT gateway's whole SNAT table as a DataFrame."""
    nat = discover(session)
    return rows_frame(inventory.snat_entries(session, nat.snat_table_id), SNAT_FIELDS)


def entries_to_delete(session: Session) -> tuple[NatChoice, list[dict[str, Any]]]:
    """Our entries only: named ``snat.entry_name`` and sourced from a gateway vSwitch."""
    p = session.params
    nat = discover(session)
    rows = [
        e
        for e in inventory.snat_entries(session, nat.snat_table_id)
        if e.get("SnatEntryName") == p.snat.entry_name
        and e.get("SourceVSwitchId") in p.gateway.vswitches
    ]
    return nat, rows


def delete_entries(session: Session) -> list[Change]:
    """Delete our entries (retrying while the table is busy) and wait until they are gone."""
    from alibabacloud_vpc20160428 import models as m

    p = session.params
    nat, rows = entries_to_delete(session)
    done: list[Change] = []
    for e in rows:
        entry_id = str(e["SnatEntryId"])
        req = m.DeleteSnatEntryRequest(
            region_id=p.region_id, snat_table_id=nat.snat_table_id, snat_entry_id=entry_id
        )

        def attempt(req: Any = req) -> bool:
            try:
                call("vpc", "DeleteSnatEntry", session.vpc.delete_snat_entry, req)
            except CloudApiError as err:
                if err.code in BUSY_CODES:
                    return False
                if not inventory.is_not_found(err):
                    raise
            return True

        poll(
            attempt,
            bool,
            timeout=p.timeouts.snat_seconds,
            what=f"DeleteSnatEntry {entry_id}",
            reason="the SNAT table to accept the delete",
            describe=lambda ok: "accepted" if ok else "table busy",
        )

        def remaining(eid: str = entry_id) -> list[dict[str, Any]]:
            try:
                return inventory.snat_entries(session, nat.snat_table_id, snat_entry_id=eid)
            except CloudApiError as err:
                if inventory.is_not_found(err):
                    return []
                raise

        poll(
            remaining,
            lambda found: not found,
            timeout=p.timeouts.snat_seconds,
            what=f"SNAT entry {entry_id}",
            reason="the SNAT entry to be deleted",
            describe=lambda found: str(found[0].get("Status")) if found else "gone",
        )
        done.append(Change("delete", "SnatEntry", str(e.get("SourceVSwitchId")), entry_id))
    return done
