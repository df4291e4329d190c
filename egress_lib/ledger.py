"""The runbook's record, kept in the cluster, of the cloud resources it created.

SNAT entries carry no labels or tags, and an entry's name proves nothing (anyone can give an
entry the name the runbook uses), so every SNAT entry the runbook creates is written down here,
and teardown deletes only what is written here. The record is a ConfigMap beside the runbook's
other objects, so any operator's machine finds it.

A row is written *before* ``CreateSnatEntry`` is sent, as a pending row (no entry ID yet, the
request's ClientToken and fields), and completed with the ID the call returns. A run killed
in between leaves the pending row: the next run repeats the call with that ClientToken, which
the VPC API answers with the entry the first call made, and so learns whether the entry for
the vSwitch is ours (step 03's plan shows this as a confirm).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from egress_lib import kube, ownership
from egress_lib.errors import KubernetesApiError
from egress_lib.kinds import kind_of

if TYPE_CHECKING:
    from egress_lib.clients import Session

KEY = "snat-entries"


def configmap_name(cluster_name: str) -> str:
    """``egress-runbook-<cluster_name>`` (at most 63 characters)."""
    return ("egress-runbook-" + cluster_name)[:63].rstrip("-")


@dataclass(frozen=True)
class CreatedSnatEntry:
    """An SNAT entry the runbook created (or is creating): where it is, and which run made it.

    ``id`` is empty while the row is pending: ``CreateSnatEntry`` was sent with
    ``client_token`` and the answer is not written down yet.
    """

    id: str
    table_id: str
    vswitch_id: str
    nat_gateway_id: str
    snat_ip: str
    run_id: str
    created: str
    # Rows written before these fields existed have neither; they are never pending.
    client_token: str = ""
    entry_name: str = ""

    @property
    def pending(self) -> bool:
        """True while the create's answer (the entry ID) is not recorded."""
        return not self.id


def _read(session: Session) -> tuple[list[CreatedSnatEntry], dict[str, Any] | None]:
    p = session.params
    obj = kube.get(session, "ConfigMap", configmap_name(p.cluster_name), p.namespace)
    if obj is None:
        return [], None
    try:
        rows: Any = json.loads(((obj.get("data") or {}).get(KEY)) or "[]")
        entries = [CreatedSnatEntry(**r) for r in rows]
    except (TypeError, ValueError) as e:
        raise KubernetesApiError(
            status=None,
            reason="BadLedger",
            message=f"data.{KEY} is not the list egress-runbook writes ({e}); fix or delete it",
            kind="ConfigMap",
            name=configmap_name(p.cluster_name),
            operation="read",
        ) from e
    return entries, obj


def snat_entries(session: Session) -> list[CreatedSnatEntry]:
    """The SNAT entries this runbook created for the cluster (empty when none); no pending rows."""
    return [e for e in _read(session)[0] if not e.pending]


def pending_entries(session: Session) -> list[CreatedSnatEntry]:
    """Creates that were sent and whose answer was never recorded (the run was stopped)."""
    return [e for e in _read(session)[0] if e.pending]


def _write(session: Session, entries: list[CreatedSnatEntry]) -> None:
    p = session.params
    name = configmap_name(p.cluster_name)
    for attempt in (1, 2):
        _, current = _read(session)
        data = {KEY: json.dumps([asdict(e) for e in entries], indent=1)}
        try:
            with kube.k8s_errors("write", "ConfigMap", name):
                if current is None:
                    body = {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {
                            "name": name,
                            "namespace": p.namespace,
                            "labels": ownership.labels(p),
                        },
                        "data": data,
                    }
                    kind_of("ConfigMap").create(session, body, False)
                else:
                    body = kube.strip_server_fields(current)
                    body["data"] = data
                    kind_of("ConfigMap").replace(session, body, False)
            return
        except KubernetesApiError as e:
            if e.status == 409 and attempt == 1:
                continue  # someone wrote in between: re-read and write again
            raise


def _same_source(a: CreatedSnatEntry, b: CreatedSnatEntry) -> bool:
    return a.table_id == b.table_id and a.vswitch_id == b.vswitch_id


def record(session: Session, entry: CreatedSnatEntry) -> None:
    """Add ``entry`` (the lock keeps two runs from writing at once).

    A pending row is the one pending row of its vSwitch; a completed row replaces the
    pending row of its vSwitch, whichever run wrote it.
    """
    rows = [
        e
        for e in _read(session)[0]
        if not (e.pending and _same_source(e, entry)) and (e.pending or e.id != entry.id)
    ]
    _write(session, [*rows, entry])


def forget(session: Session, entry_id: str) -> None:
    """Remove the entry ``entry_id`` from the record."""
    rows = _read(session)[0]
    if entry_id and any(e.id == entry_id for e in rows):
        _write(session, [e for e in rows if e.id != entry_id])


def forget_pending(session: Session, client_token: str) -> None:
    """Remove the pending row of ``client_token`` (the create it stands for made nothing)."""
    rows = _read(session)[0]
    if any(e.pending and e.client_token == client_token for e in rows):
        _write(session, [e for e in rows if not (e.pending and e.client_token == client_token)])


def pending_entry(
    session: Session, request: dict[str, str], nat_id: str, client_token: str
) -> CreatedSnatEntry:
    """The pending row of a ``CreateSnatEntry`` about to be sent by this session's run."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return CreatedSnatEntry(
        "",
        request["SnatTableId"],
        request["SourceVSwitchId"],
        nat_id,
        request["SnatIp"],
        session.run_id,
        now,
        client_token,
        request["SnatEntryName"],
    )


def completed(row: CreatedSnatEntry, entry_id: str) -> CreatedSnatEntry:
    """``row`` with the entry ID its create returned (or a confirm found)."""
    return replace(row, id=entry_id)


def created_entry(
    session: Session, entry_id: str, table_id: str, vswitch_id: str, nat_id: str, ip: str
) -> CreatedSnatEntry:
    """A record of an entry created just now by this session's run."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return CreatedSnatEntry(entry_id, table_id, vswitch_id, nat_id, ip, session.run_id, now)
