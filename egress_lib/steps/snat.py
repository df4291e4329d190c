"""Step 03: an SNAT entry on the VPC's Internet NAT gateway for each gateway vSwitch.

Only the gateway's vSwitches get SNAT, so only the MSE gateway (not every pod) can reach
the internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from egress_lib import inventory, ledger
from egress_lib.cloud import call_with_id
from egress_lib.errors import CloudApiError, PreconditionFailed
from egress_lib.manifests import to_yaml
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.resources import NatGateway, SnatEntry
from egress_lib.steps import _snat_confirm, _snat_eip
from egress_lib.steps._common import carry_out, plan_or_refuse, rows_table

# The cloud calls live there (module size); tests reach them as steps.snat.create_entry etc.
from egress_lib.steps._snat_calls import client_token, create_entry, wait_available
from egress_lib.tables import Table
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
# Codes meaning "the table is busy with another change": wait and try again (DeleteSnatEntry).
BUSY_CODES = ("IncorretSnatEntryStatus", "IncorrectStatus.NATGW", "OperationConflict")


@dataclass(frozen=True)
class NatChoice:
    """The NAT gateway, its SNAT table and the EIP the entries use."""

    vpc_id: str
    nat_gateway_id: str
    snat_table_id: str
    snat_ip: str
    eips: tuple[str, ...]
    # Why snat_ip (snat.snat_ip, or the UsingStatus it was chosen by), for the plan.
    snat_ip_reason: str = ""


def discover(session: Session) -> NatChoice:
    """Find the NAT gateway and EIP; zero/several gateways or a foreign snat_ip fail."""
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    nats = [n for n in inventory.nat_gateway_records(session, vpc_id) if n.is_internet]
    if p.snat.nat_gateway_id:
        chosen = [n for n in nats if n.id == p.snat.nat_gateway_id]
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
    if not nat.snat_table_ids:
        raise PreconditionFailed(f"NAT gateway {nat.id} has no SNAT table")
    # DescribeEipAddresses says what is bound; the gateway's IpLists says what uses each EIP.
    eips = tuple(e.ip_address for e in inventory.eip_records(session, nat.id))
    statuses = {ip.ip_address: ip.using_status for ip in nat.ip_list}
    choice = _snat_eip.choose(
        nat.id, list(eips), statuses, str(p.snat.snat_ip) if p.snat.snat_ip else None
    )
    return NatChoice(vpc_id, nat.id, nat.snat_table_ids[0], choice.ip, eips, choice.reason)


def _ids(nats: list[NatGateway]) -> str:
    return ", ".join(n.id for n in nats)


def _covers(cidr: str, vswitch_cidr: str) -> bool:
    try:
        return ipaddress.ip_network(vswitch_cidr).subnet_of(ipaddress.ip_network(cidr))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


def create_request(session: Session, nat: NatChoice, vswitch_id: str) -> dict[str, str]:
    """The CreateSnatEntry fields the plan shows and apply sends (the ClientToken aside)."""
    p = session.params
    return {
        "RegionId": str(p.region_id),
        "SnatTableId": nat.snat_table_id,
        "SourceVSwitchId": vswitch_id,
        "SnatIp": nat.snat_ip,
        "SnatEntryName": p.snat.entry_name,
    }


def _existing(
    session: Session, nat: NatChoice, vsw: str, entry: SnatEntry, how: str, ours: set[str]
) -> tuple[Change, list[str]]:
    """The plan's line for a vSwitch that already has an entry (``how``: own or covering)."""
    p = session.params
    text = f"{entry.id} ({entry.name or 'no name'}, {how}) uses {entry.snat_ip}"
    if entry.id in ours:
        warnings = []
        if nat.snat_ip not in entry.snat_ips:
            warnings.append(
                f"{vsw}: our SNAT entry {entry.id} uses {entry.snat_ip}, not {nat.snat_ip}; "
                "it is left as it is"
            )
        return Change("unchanged", "SnatEntry", vsw, f"ours: {text}"), warnings
    if nat.snat_ip in entry.snat_ips:
        return (
            Change(
                "adopt",
                "SnatEntry",
                vsw,
                f"{text}: already gives {vsw} the EIP; used as it is, and teardown leaves it",
            ),
            [],
        )
    if p.adopts("SnatEntry", entry.id):
        return (
            Change("adopt", "SnatEntry", vsw, f"{text}: adopted (adopt: SnatEntry/{entry.id})"),
            [f"{vsw} leaves through {entry.snat_ip}, not snat_ip {nat.snat_ip} (adopted entry)"],
        )
    return (
        Change(
            "conflict",
            "SnatEntry",
            vsw,
            f"{text}, not {nat.snat_ip}, and egress-runbook did not create it; fix that "
            f"entry or list SnatEntry/{entry.id} under adopt:",
        ),
        [],
    )


def _plan_with(session: Session) -> tuple[Plan, NatChoice]:
    p = session.params
    nat = discover(session)
    entries = inventory.snat_table(session, nat.snat_table_id)
    recorded = ledger.snat_entries(session)
    ours = {r.id for r in recorded}
    # Creates a stopped run sent without recording the answer, by vSwitch.
    pending = {
        r.vswitch_id: r for r in ledger.pending_entries(session) if r.table_id == nat.snat_table_id
    }
    cidrs = {v.id: v.cidr_block for v in inventory.vswitch_records(session, nat.vpc_id)}
    changes: list[Change] = []
    warnings: list[str] = []
    for vsw in p.gateway.vswitches:
        row = pending.get(vsw)
        same = sorted(
            (e for e in entries if e.source_vswitch_id == vsw), key=lambda e: e.id not in ours
        )
        covering = [
            e
            for e in entries
            if e.source_cidr and vsw in cidrs and _covers(e.source_cidr, cidrs[vsw])
        ]
        if same or covering:
            entry, how = (same[0], "for the vSwitch") if same else (covering[0], "")
            how = how or f"covers it with {entry.source_cidr}"
            if row is not None and entry.id not in ours and _snat_confirm.may_be_from(row, entry):
                changes.append(_snat_confirm.confirm_change(session, entry, row))
                continue
            if entry.status == "Pending" and (entry.id in ours or nat.snat_ip in entry.snat_ips):
                # Being created (a run stopped while waiting, or someone else): a second
                # CreateSnatEntry would be Forbidden.SourceVSwitchId.Duplicated at best; wait.
                # Not "unchanged": an entry that is not Available yet gives no egress.
                changes.append(_pending(nat, vsw, entry, how, ours))
                continue
            change, more = _existing(session, nat, vsw, entry, how, ours)
            changes.append(change)
            warnings += more
            continue
        changes.append(_create(session, nat, vsw, row))
    present = {e.id: e for e in entries}
    for r in recorded:
        if r.id not in present:
            warnings.append(f"SNAT entry {r.id} recorded as ours is no longer in the table")
        elif r.vswitch_id not in p.gateway.vswitches:
            changes.append(
                Change(
                    "delete",
                    "SnatEntry",
                    r.vswitch_id,
                    f"{r.id}: ours, but {r.vswitch_id} is no gateway vSwitch any more",
                    body=f"vpc:DeleteSnatEntry\n{to_yaml({'SnatEntryId': r.id})}",
                    payload={"SnatEntryId": r.id, "SnatTableId": r.table_id},
                )
            )
    notes = [
        f"no change; waiting for SnatEntry {c.payload['SnatEntryId']} (Pending) of {c.name} to be "
        "Available: apply waits for it as a first run would"
        for c in changes
        if c.action == "wait"
    ]
    return Plan(STEP, changes, warnings, notes), nat


def _create(
    session: Session, nat: NatChoice, vsw: str, row: ledger.CreatedSnatEntry | None
) -> Change:
    """The plan's create; with the ClientToken of a stopped run that sent the same request.

    That run's call may still land (or have landed and been answered to no one): the same
    token makes the two one create, where a new token would meet the entry it made.
    """
    p = session.params
    request = create_request(session, nat, vsw)
    detail = (
        f"{p.snat.entry_name}: {vsw} -> {nat.snat_ip} on {nat.nat_gateway_id} "
        f"(EIP {nat.snat_ip}: {nat.snat_ip_reason})"
    )
    payload: dict[str, str] = dict(request)
    if row is not None and _snat_confirm.request_of(session, row) == request:
        payload[_snat_confirm.TOKEN] = row.client_token
        detail += (
            f", with the ClientToken of run {row.run_id}, which sent this create and was "
            "stopped before it recorded the answer"
        )
    return Change(
        "create",
        "SnatEntry",
        vsw,
        detail,
        body=f"vpc:CreateSnatEntry\n{to_yaml(payload)}",
        payload=payload,
        precondition={"entries for the vSwitch": "none"},
    )


def _pending(nat: NatChoice, vsw: str, entry: SnatEntry, how: str, ours: set[str]) -> Change:
    whose = "ours" if entry.id in ours else "not created by egress-runbook; used as it is"
    return Change(
        "wait",
        "SnatEntry",
        vsw,
        f"no change; waiting for {entry.id} (Pending) to be Available: {entry.name or 'no name'}, "
        f"{how}, {whose}, with {entry.snat_ip}; nothing is created",
        payload={"SnatEntryId": entry.id, "SnatTableId": nat.snat_table_id},
    )


def plan(session: Session) -> Plan:
    """Which gateway vSwitches need an SNAT entry; which of ours are no longer needed."""
    return _plan_with(session)[0]


def _replan_for(planned: Plan) -> Callable[[Session], Plan]:
    """A fresh plan in which the entries ``planned`` waits for count as waited for.

    A Pending entry that became Available meanwhile is what the plan expected, not a changed
    world: without this, apply would call the plan stale for exactly the wait it announced.
    """
    waited = {c.ref for c in planned.changes if c.action == "wait"}

    def replan(session: Session) -> Plan:
        fresh = plan(session)
        changes = [
            replace(c, action="wait") if c.ref in waited and c.action in SETTLED else c
            for c in fresh.changes
        ]
        return replace(fresh, changes=changes)

    return replan


_make_plan = plan  # apply's argument is also called "plan"
# What a waited-for entry turns into once Available: ours, or another's used as it is.
SETTLED = ("unchanged", "adopt")


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``: create (and record) the missing entries, wait for each."""
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        nat = discover(session) if planned.has_changes else None
        applied: list[Change] = []
        for change in planned.changes:
            if change.action == "create" and _snat_confirm.is_confirm(change):
                assert nat is not None
                applied.append(_snat_confirm.apply_confirm(session, change, nat.snat_ip))
            elif change.action == "create":
                assert nat is not None
                busy: list[str] = []
                entry_id, request_id = _create_recorded(session, change, nat, busy)
                entry = wait_available(session, nat.snat_table_id, entry_id)
                retried = f" after {len(busy)} busy answer(s)" if busy else ""
                applied.append(
                    replace(
                        change,
                        detail=f"{entry_id} {entry.status}{retried}",
                        payload=None,
                        result={
                            "snat_entry_id": entry_id,
                            "snat_table_id": nat.snat_table_id,
                            "request_ids": [request_id],
                            "busy_answers": busy,
                        },
                    )
                )
            elif change.action == "wait":
                entry_id = str(change.payload["SnatEntryId"])
                entry = wait_available(session, str(change.payload["SnatTableId"]), entry_id)
                applied.append(replace(change, detail=f"{entry_id} {entry.status}", payload=None))
            elif change.action == "delete":
                applied.append(delete_entry(session, change))
            else:
                applied.append(change)
        return StepResult(STEP, applied, [], {"snat": snat_frame(session)}, list(planned.warnings))

    return carry_out(session, plan, _replan_for(plan) if given else None, run)


def _create_recorded(
    session: Session, change: Change, nat: NatChoice, busy: list[str]
) -> tuple[str, dict[str, str]]:
    """CreateSnatEntry, written down before it is sent and completed when it returns.

    A run killed between the call and its answer leaves the pending row: the next run
    learns from it that the entry for the vSwitch may be ours (and asks the API).
    """
    token = change.payload.get(_snat_confirm.TOKEN) or client_token(session, change.name)
    request = {k: str(change.payload[k]) for k in _snat_confirm.REQUEST_KEYS}
    stopped = next((r for r in ledger.pending_entries(session) if r.client_token == token), None)
    row = stopped or ledger.pending_entry(session, request, nat.nat_gateway_id, token)
    if stopped is None:
        ledger.record(session, row)
    entry_id, request_id = create_entry(session, request, busy, token)
    # Written down before the wait: a run killed while waiting still knows it.
    ledger.record(session, ledger.completed(row, entry_id))
    return entry_id, request_id


def snat_table(session: Session) -> Table:
    """The NAT gateway's whole SNAT table, to read."""
    nat = discover(session)
    rows = inventory.snat_entries(session, nat.snat_table_id)
    return rows_table(rows, SNAT_FIELDS, empty=f"{nat.snat_table_id} has no SNAT entries")


def snat_frame(session: Session) -> pd.DataFrame:
    """The NAT gateway's whole SNAT table as a DataFrame."""
    return snat_table(session).to_frame()


def entries_to_delete(session: Session) -> list[Change]:
    """Deletes for the entries the runbook created (its ledger) that the table still has."""
    nat = discover(session)
    present = {e.id: e for e in inventory.snat_table(session, nat.snat_table_id)}
    out = []
    ours = {r.id for r in ledger.snat_entries(session)}
    for row in ledger.pending_entries(session):
        # A stopped run's create: its entry is deleted only if the API says it made it.
        entry = next(
            (e for e in present.values() if e.id not in ours and _snat_confirm.may_be_from(row, e)),
            None,
        )
        if entry is not None:
            out.append(_snat_confirm.teardown_change(session, entry, row))
    for r in ledger.snat_entries(session):
        e = present.get(r.id)
        if e is None:
            continue
        out.append(
            Change(
                "delete",
                "SnatEntry",
                r.vswitch_id,
                f"{r.id} ({e.name}, {e.snat_ip}), created by run {r.run_id}",
                body=f"vpc:DeleteSnatEntry\n{to_yaml({'SnatEntryId': r.id})}",
                payload={"SnatEntryId": r.id, "SnatTableId": r.table_id},
            )
        )
    return out


def delete_entry(session: Session, change: Change) -> Change:
    """Delete one of our entries (retrying while the table is busy), wait until it is gone."""
    from alibabacloud_vpc20160428 import models as m

    kept = _snat_confirm.teardown_confirm(session, change)
    if kept is not None:
        return kept
    p = session.params
    entry_id = str(change.payload["SnatEntryId"])
    table_id = str(change.payload["SnatTableId"])
    req = m.DeleteSnatEntryRequest(
        region_id=p.region_id, snat_table_id=table_id, snat_entry_id=entry_id
    )
    request_ids: list[dict[str, str]] = []

    def attempt() -> bool:
        try:
            _, rid = call_with_id("vpc", "DeleteSnatEntry", session.vpc.delete_snat_entry, req)
            request_ids.append(rid)
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

    def remaining() -> list[SnatEntry]:
        try:
            return inventory.snat_table(session, table_id, snat_entry_id=entry_id)
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
        describe=lambda found: found[0].status if found else "gone",
    )
    ledger.forget(session, entry_id)
    return replace(
        change, payload=None, result={"snat_entry_id": entry_id, "request_ids": request_ids}
    )
