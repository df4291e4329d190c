"""Step 03's cloud calls: CreateSnatEntry (retried while the table is busy) and the wait.

Split from :mod:`egress_lib.steps.snat`, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from egress_lib import inventory
from egress_lib.cloud import call_with_id
from egress_lib.errors import CloudApiError, StepFailed
from egress_lib.resources import SnatEntry
from egress_lib.waiting import poll

if TYPE_CHECKING:
    from egress_lib.clients import Session

# CreateSnatEntry's "the SNAT table is busy: wait and try again" answers: "you cannot repeatedly
# call CreateSnatEntry ... within the specified period" (OperationConflict) and a NAT gateway
# still being changed (IncorrectStatus.NATGW); aliyun/terraform-provider-alicloud retries its
# creates on these. IncorretSnatEntryStatus is documented for modify/delete only.
CREATE_BUSY_CODES = ("OperationConflict", "IncorrectStatus.NATGW")
# How long a created entry may be missing from the table before the step says it does not exist.
ABSENT_GRACE_SECONDS = 10.0


def client_token(session: Session, vswitch_id: str) -> str:
    """Unique per run and vSwitch: a retry inside one run is a no-op, a new run creates anew.

    A token reused after teardown would make CreateSnatEntry answer with the deleted entry's
    ID (the VPC API replays the first result of a token), so the run ID is part of it.
    """
    p = session.params
    seed = f"egress-runbook:{session.run_id}:{p.cluster_id}:{vswitch_id}:{p.snat.entry_name}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def create_entry(
    session: Session, request: dict[str, str], busy: list[str] | None = None
) -> tuple[str, dict[str, str]]:
    """CreateSnatEntry with this run's ClientToken; returns the SnatEntryId and RequestId.

    While the table answers :data:`CREATE_BUSY_CODES` the call is repeated, backing off, until
    ``timeouts.snat_seconds`` (then :class:`WaitTimeout`); ``busy`` collects those answers.
    Repeating is safe: the ClientToken is the same, so a create the cloud did carry out is
    answered with its entry, never made twice.
    """
    from alibabacloud_vpc20160428 import models as m

    req = m.CreateSnatEntryRequest(
        region_id=request["RegionId"],
        snat_table_id=request["SnatTableId"],
        source_vswitch_id=request["SourceVSwitchId"],
        snat_ip=request["SnatIp"],
        snat_entry_name=request["SnatEntryName"],
        client_token=client_token(session, request["SourceVSwitchId"]),
    )
    answers: list[str] = [] if busy is None else busy

    def attempt() -> tuple[str, dict[str, str]] | None:
        try:
            body, request_id = call_with_id(
                "vpc", "CreateSnatEntry", session.vpc.create_snat_entry, req
            )
        except CloudApiError as err:
            if err.code not in CREATE_BUSY_CODES:
                raise
            answers.append(f"{err.code} (RequestId {err.request_id})")
            return None
        return str(body.snat_entry_id), request_id

    created = poll(
        attempt,
        lambda r: r is not None,
        timeout=session.params.timeouts.snat_seconds,
        what=f"CreateSnatEntry for {request['SourceVSwitchId']}",
        reason="the SNAT table to accept the new entry",
        describe=lambda r: "accepted" if r else f"busy: {answers[-1]}, {len(answers)} tries",
    )
    assert created is not None
    return created


def wait_available(session: Session, table_id: str, entry_id: str) -> SnatEntry:
    """Poll DescribeSnatTableEntries (no watch in the VPC API) until Available.

    An entry the table never shows (a replayed ClientToken returns a deleted entry's ID) is
    an error within :data:`ABSENT_GRACE_SECONDS`, not a wait to the deadline.
    """
    first_absent: list[float] = []

    def fetch() -> SnatEntry | None:
        rows = inventory.snat_table(session, table_id, snat_entry_id=entry_id)
        return rows[0] if rows else None

    def done(e: SnatEntry | None) -> bool:
        if e is not None:
            return e.status == "Available"
        first_absent.append(time.monotonic())
        if first_absent[-1] - first_absent[0] >= ABSENT_GRACE_SECONDS:
            raise StepFailed(
                f"CreateSnatEntry returned {entry_id}, but SNAT table {table_id} has not shown "
                f"it for {ABSENT_GRACE_SECONDS:g} s: the entry does not exist. Nothing else was "
                "changed; re-run the step (a new run sends a new ClientToken)."
            )
        return False

    found = poll(
        fetch,
        done,
        timeout=session.params.timeouts.snat_seconds,
        what=f"SNAT entry {entry_id}",
        reason="the SNAT entry to become Available",
        describe=lambda e: e.status if e else "absent",
    )
    assert found is not None
    return found
