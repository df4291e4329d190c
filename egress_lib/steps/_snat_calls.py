"""Step 03's cloud calls: CreateSnatEntry (retried, re-reading the table first) and the wait.

Split from :mod:`egress_lib.steps.snat`, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import TYPE_CHECKING, Any

from egress_lib import inventory, retry
from egress_lib.cloud import call_with_id, retried
from egress_lib.errors import CloudApiError, StepFailed, WaitTimeout
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


def _request(request: dict[str, str], token: str) -> Any:
    from alibabacloud_vpc20160428 import models as m

    return m.CreateSnatEntryRequest(
        region_id=request["RegionId"],
        snat_table_id=request["SnatTableId"],
        source_vswitch_id=request["SourceVSwitchId"],
        snat_ip=request["SnatIp"],
        snat_entry_name=request["SnatEntryName"],
        client_token=token,
    )


def create_entry(
    session: Session,
    request: dict[str, str],
    busy: list[str] | None = None,
    token: str | None = None,
) -> tuple[str, dict[str, str]]:
    """CreateSnatEntry with ``token`` (default: this run's ClientToken); the ID and RequestId.

    Retried under the session's policy (:mod:`egress_lib.retry`: throttling, 5xx, transport
    failures, and :data:`CREATE_BUSY_CODES`, which ``busy`` collects). Every attempt sends the
    same ClientToken, so a create the cloud did carry out is answered with its entry, never
    made twice; and before each retry the table is read again: an entry of this name for the
    vSwitch with the planned EIP is the one an earlier attempt made, and is used. A busy
    table is waited for at most ``timeouts.snat_seconds`` (then :class:`WaitTimeout`).
    """
    vswitch = request["SourceVSwitchId"]
    req = _request(request, token or client_token(session, vswitch))
    answers: list[str] = [] if busy is None else busy
    last_request_id: list[str] = []

    def attempt(n: int) -> tuple[str, dict[str, str]]:
        if n > 1:
            made = made_by_earlier_attempt(session, request)
            if made is not None:
                return made.id, {
                    "product": "vpc",
                    "action": "CreateSnatEntry",
                    "request_id": last_request_id[-1] if last_request_id else "",
                    "found": f"{made.id} in the SNAT table after attempt {n - 1}",
                }
        try:
            body, request_id = call_with_id(
                "vpc", "CreateSnatEntry", session.vpc.create_snat_entry, req, once=True
            )
        except CloudApiError as err:
            if err.request_id:
                last_request_id.append(err.request_id)
            if err.code in CREATE_BUSY_CODES:
                answers.append(f"{err.code} (RequestId {err.request_id})")
            raise
        return str(body.snat_entry_id), request_id

    # A busy table is also waited for no longer than the entry itself may take.
    api_deadline = session.retry_policy.deadline_seconds
    snat_deadline = float(session.params.timeouts.snat_seconds)
    policy = session.retry_policy.with_deadline(min(api_deadline, snat_deadline))
    try:
        return retry.run(
            policy,
            "vpc:CreateSnatEntry",
            attempt,
            lambda e: retry.cloud_verdict(e, "CreateSnatEntry"),
        )
    except CloudApiError as err:
        info = retry.exhausted_of(err)
        if info is None or info.attempts < 2:
            raise
        if err.code in CREATE_BUSY_CODES:
            raise WaitTimeout(
                f"CreateSnatEntry for {vswitch}",
                info.deadline,
                f"busy: {answers[-1] if answers else err.code}, {len(answers)} tries",
                "the SNAT table to accept the new entry",
            ) from err
        if snat_deadline < api_deadline:
            info = dataclasses.replace(info, deadline_name="timeouts.snat_seconds")
        raise retried(err, info) from err.__cause__


# A token the VPC API never answered makes it try the create; with an entry for the vSwitch in
# the table that is refused, and nothing is made (aliyun-openapi.md, CreateSnatEntry errors).
NOTHING_MADE_CODES = ("Forbidden.SourceVSwitchId.Duplicated", "OperationUnsupported.CidrConflict")


def confirm_entry(
    session: Session, request: dict[str, str], token: str
) -> tuple[str | None, dict[str, str]]:
    """Repeat a stopped run's CreateSnatEntry, same fields and ClientToken: the entry it made.

    After a 200 "any subsequent retries return the result from the original successful
    request" (ClientToken, https://www.alibabacloud.com/help/en/doc-detail/36569), so the
    answer is the ID of the entry that run's call made, and nothing changes. A token that got
    no 200 makes the API try the create; an entry for the vSwitch refuses it
    (:data:`NOTHING_MADE_CODES`) and the ID is None: that run made nothing that is still in
    the way. Retried like any call: each attempt asks the same question.
    """
    try:
        body, request_id = call_with_id(
            "vpc", "CreateSnatEntry", session.vpc.create_snat_entry, _request(request, token)
        )
    except CloudApiError as err:
        if err.code not in NOTHING_MADE_CODES:
            raise
        return None, {
            "product": "vpc",
            "action": "CreateSnatEntry",
            "request_id": err.request_id or "",
            "answer": str(err.code),
        }
    return str(body.snat_entry_id), request_id


def made_by_earlier_attempt(session: Session, request: dict[str, str]) -> SnatEntry | None:
    """The entry an earlier attempt of this create made: same vSwitch, name and EIP."""
    for entry in inventory.snat_table(session, request["SnatTableId"]):
        if (
            entry.source_vswitch_id == request["SourceVSwitchId"]
            and entry.name == request["SnatEntryName"]
            and entry.snat_ip == request["SnatIp"]
        ):
            return entry
    return None


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
        # An entry is Available within seconds; poll often enough to move on within half a
        # second of it (one DescribeSnatTableEntries per poll, far below the API's rate limit).
        max_delay=0.5,
    )
    assert found is not None
    return found
