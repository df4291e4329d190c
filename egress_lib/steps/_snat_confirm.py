"""Step 03 and teardown after a run was stopped inside its CreateSnatEntry.

The ledger (:mod:`egress_lib.ledger`) then holds a pending row: the request and ClientToken
that run sent, and no entry ID. An entry for that vSwitch with that name and EIP may be the
one the call made, or anyone's: only the API can say, and it does when asked again with the
same ClientToken (:func:`~egress_lib.steps._snat_calls.confirm_entry`). The plan shows that
call (a ``create`` whose detail starts "confirm"); apply sends it and records the entry as
ours when the answer names it, else drops the pending row and uses the entry as it is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from egress_lib import inventory, ledger
from egress_lib.manifests import to_yaml
from egress_lib.plan import Change
from egress_lib.resources import SnatEntry
from egress_lib.steps._snat_calls import confirm_entry, wait_available

if TYPE_CHECKING:
    from egress_lib.clients import Session

# The payload key that makes a planned CreateSnatEntry a confirm: the entry it expects.
CONFIRMS = "Confirms"
TOKEN = "ClientToken"
REQUEST_KEYS = ("RegionId", "SnatTableId", "SourceVSwitchId", "SnatIp", "SnatEntryName")


def may_be_from(row: ledger.CreatedSnatEntry, entry: SnatEntry) -> bool:
    """Whether ``entry`` has what ``row``'s create asked for (else that call did not make it)."""
    return (
        row.pending
        and bool(row.client_token)
        and entry.table_id == row.table_id
        and entry.source_vswitch_id == row.vswitch_id
        and entry.name == row.entry_name
        and entry.snat_ip == row.snat_ip
    )


def request_of(session: Session, row: ledger.CreatedSnatEntry) -> dict[str, str]:
    """The CreateSnatEntry fields ``row``'s run sent (the ClientToken aside)."""
    return {
        "RegionId": str(session.params.region_id),
        "SnatTableId": row.table_id,
        "SourceVSwitchId": row.vswitch_id,
        "SnatIp": row.snat_ip,
        "SnatEntryName": row.entry_name,
    }


def _stopped(row: ledger.CreatedSnatEntry) -> str:
    return (
        f"run {row.run_id} sent CreateSnatEntry for {row.vswitch_id} at {row.created} and was "
        "stopped before it recorded the answer"
    )


def confirm_change(session: Session, entry: SnatEntry, row: ledger.CreatedSnatEntry) -> Change:
    """Step 03's plan line: resend ``row``'s create to learn whether ``entry`` is ours."""
    request = request_of(session, row)
    sent = {**request, TOKEN: row.client_token}
    return Change(
        "create",
        "SnatEntry",
        row.vswitch_id,
        f"confirm {entry.id} ({entry.name or 'no name'}, {entry.status}, {entry.snat_ip}): "
        f"{_stopped(row)}; apply sends that call again with its ClientToken, which the VPC "
        "API answers with the entry the first call made, creating nothing. If the answer is "
        f"{entry.id} it is recorded as ours (teardown deletes it); if not, it is used as it "
        "is and teardown leaves it",
        body=f"vpc:CreateSnatEntry (again, same ClientToken: creates nothing)\n{to_yaml(sent)}",
        payload={**sent, CONFIRMS: entry.id},
        precondition={"entry for the vSwitch": entry.id},
    )


def is_confirm(change: Change) -> bool:
    return isinstance(change.payload, dict) and CONFIRMS in change.payload


def _row(session: Session, payload: dict[str, Any]) -> ledger.CreatedSnatEntry | None:
    token = str(payload[TOKEN])
    return next((r for r in ledger.pending_entries(session) if r.client_token == token), None)


def _ask(session: Session, payload: dict[str, Any]) -> tuple[bool, str, dict[str, str], str]:
    """(ours, the entry the token answers with or "", the call's ids, why) for a confirm."""
    expected = str(payload[CONFIRMS])
    request = {k: str(payload[k]) for k in REQUEST_KEYS}
    token = str(payload[TOKEN])
    row = _row(session, payload)
    answered, request_id = confirm_entry(session, request, token)
    present = bool(answered) and bool(
        inventory.snat_table(session, request["SnatTableId"], snat_entry_id=str(answered))
    )
    if answered and present and row is not None:
        # The token's entry is ours, whichever entry the plan expected (with one entry per
        # vSwitch, it can be another only if the expected one went away meanwhile).
        ledger.record(session, ledger.completed(row, answered))
        return True, answered, request_id, f"the ClientToken answers with {answered}"
    ledger.forget_pending(session, token)
    if answered is None:
        why = f"the ClientToken made nothing ({request_id.get('answer', 'refused')})"
    else:
        why = f"the ClientToken made {answered}, which is gone"
    return False, answered or "", request_id, f"{expected} is not ours: {why}"


def apply_confirm(session: Session, change: Change, our_ip: str) -> Change:
    """Step 03: confirm, record when ours, then wait for the entry as a first run would."""
    payload: dict[str, Any] = change.payload
    ours, entry_id, request_id, why = _ask(session, payload)
    table_id = str(payload["SnatTableId"])
    waited = entry_id if ours else str(payload[CONFIRMS])
    found = inventory.snat_table(session, table_id, snat_entry_id=waited)
    status = found[0].status if found else "absent"
    if found and (ours or our_ip in found[0].snat_ips):
        # An entry that gives the vSwitch our EIP is waited for, ours or not: "unchanged"
        # means Available (a Pending one gives no egress yet).
        status = wait_available(session, table_id, waited).status
    used = "recorded as ours" if ours else "used as it is; teardown leaves it"
    return replace(
        change,
        detail=f"{why}: {used} ({waited} {status})",
        payload=None,
        result={
            "snat_entry_id": waited,
            "snat_table_id": table_id,
            "ours": ours,
            "request_ids": [request_id],
        },
    )


def teardown_change(session: Session, entry: SnatEntry, row: ledger.CreatedSnatEntry) -> Change:
    """Teardown's line for an entry a stopped run may have made: confirm, then delete if ours."""
    sent = {**request_of(session, row), TOKEN: row.client_token}
    return Change(
        "delete",
        "SnatEntry",
        row.vswitch_id,
        f"{entry.id} ({entry.name or 'no name'}, {entry.snat_ip}) if it is ours: "
        f"{_stopped(row)}; apply first sends that call again with its ClientToken (the VPC "
        "API answers with the entry it made, creating nothing), and deletes the entry only "
        "if the answer names it",
        body=(
            f"vpc:CreateSnatEntry (again, same ClientToken: creates nothing)\n{to_yaml(sent)}"
            f"vpc:DeleteSnatEntry\n{to_yaml({'SnatEntryId': entry.id})}"
        ),
        payload={
            "SnatEntryId": entry.id,
            "SnatTableId": entry.table_id,
            **{f"confirm.{k}": v for k, v in sent.items()},
        },
    )


def teardown_confirm(session: Session, change: Change) -> Change | None:
    """Before teardown deletes such an entry: None when it is ours (now recorded), else the
    change as applied, kept."""
    payload: dict[str, Any] = change.payload
    sent = {k.removeprefix("confirm."): v for k, v in payload.items() if k.startswith("confirm.")}
    if not sent:
        return None
    entry_id = str(payload["SnatEntryId"])
    ours, answered, request_id, why = _ask(session, {**sent, CONFIRMS: entry_id})
    if ours and answered == entry_id:
        return None
    return replace(
        change,
        detail=f"kept: {why}"
        + (f"; {answered}, the entry it made, is recorded as ours: teardown again" if ours else ""),
        payload=None,
        result={"snat_entry_id": entry_id, "ours": False, "request_ids": [request_id]},
    )
