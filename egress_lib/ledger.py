"""The runbook's record, kept in the cluster, of the cloud resources it created.

SNAT entries carry no labels or tags, and an entry's name proves nothing (anyone can give an
entry the name the runbook uses), so every SNAT entry the runbook creates is written down here
as soon as ``CreateSnatEntry`` returns, and teardown deletes only what is written here. The
record is a ConfigMap beside the runbook's other objects, so any operator's machine finds it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
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
    """An SNAT entry the runbook created: where it is, and which run made it."""

    id: str
    table_id: str
    vswitch_id: str
    nat_gateway_id: str
    snat_ip: str
    run_id: str
    created: str


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
    """The SNAT entries this runbook created for the cluster (empty when none)."""
    return _read(session)[0]


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


def record(session: Session, entry: CreatedSnatEntry) -> None:
    """Add ``entry`` (the lock keeps two runs from writing at once)."""
    entries = [e for e in snat_entries(session) if e.id != entry.id]
    _write(session, [*entries, entry])


def forget(session: Session, entry_id: str) -> None:
    """Remove the entry ``entry_id`` from the record."""
    entries = snat_entries(session)
    if any(e.id == entry_id for e in entries):
        _write(session, [e for e in entries if e.id != entry_id])


def created_entry(
    session: Session, entry_id: str, table_id: str, vswitch_id: str, nat_id: str, ip: str
) -> CreatedSnatEntry:
    """A record of an entry created just now by this session's run."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return CreatedSnatEntry(entry_id, table_id, vswitch_id, nat_id, ip, session.run_id, now)
