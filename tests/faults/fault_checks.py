"""What a converged world looks like, read from the sandbox itself (its state and audit log).

The sandbox is the witness: a cell passes only when these find nothing. No duplicate SNAT
entry (one per vSwitch in the table, and no two successful ``CreateSnatEntry`` calls for one
new entry in the audit log); no object without an owner (every SNAT entry of the gateway's
vSwitches is in the runbook's ledger, every object a run created carries the ownership
labels, no probe pod and no lock Lease is left); and each step's promise holds.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fault_world import k8s_type

from egress_lib import ledger, lock, manifests, ownership

if TYPE_CHECKING:
    from egress_lib import Parameters
    from egress_sandbox.sandbox import Sandbox

# Kubernetes objects a run may create: (plural, namespaced).
RUNBOOK_KINDS = (
    ("services", True),
    ("ingresses", True),
    ("configmaps", True),
    ("pods", True),
    ("leases", True),
    ("ingressclasses", False),
    ("mseingressconfigs", False),
)


@dataclass
class Before:
    """What existed when a cell started, to tell what the cell's runs created."""

    audit_len: int
    snat_ids: frozenset[str]
    uids: frozenset[str] = field(default_factory=frozenset)
    # The ClientTokens the VPC API had answered: a call repeating one makes nothing.
    tokens: frozenset[str] = field(default_factory=frozenset)


def _objects(box: Sandbox, p: Parameters) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for plural, namespaced in RUNBOOK_KINDS:
        rt = k8s_type(box, plural)
        if rt is None:
            continue
        items, _ = box.store.list(rt, p.namespace if namespaced else None)
        out += [(plural, o) for o in items]
    return out


def before(box: Sandbox, p: Parameters) -> Before:
    with box.cloud_lock:
        snat = frozenset(box.cloud.snat_entries)
        tokens = frozenset(box.cloud.client_tokens)
    uids = frozenset(o["metadata"]["uid"] for _, o in _objects(box, p))
    return Before(len(box.audit.records()), snat, uids, tokens)


def _get(box: Sandbox, plural: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    rt = k8s_type(box, plural)
    return None if rt is None else box.store.try_get(rt, namespace, name)


def ledger_ids(box: Sandbox, p: Parameters) -> set[str]:
    cm = _get(box, "configmaps", ledger.configmap_name(p.cluster_name), p.namespace) or {}
    rows = json.loads((cm.get("data") or {}).get(ledger.KEY) or "[]")
    return {str(r["id"]) for r in rows}


def snat_problems(box: Sandbox, p: Parameters, start: Before) -> list[str]:
    out: list[str] = []
    with box.cloud_lock:
        entries = list(box.cloud.snat_entries.values())
        # What the cell's CreateSnatEntry calls made: one entry per new ClientToken. A call
        # repeating a token (a re-run confirming a killed run's create) is answered with the
        # first call's entry and makes nothing, so successful calls are not counted.
        made = [
            r.result
            for k, r in box.cloud.client_tokens.items()
            if r.action == "CreateSnatEntry" and k not in start.tokens
        ]
    by_vsw: dict[str, list[str]] = {}
    for e in entries:
        if e.source_vswitch_id:
            by_vsw.setdefault(e.source_vswitch_id, []).append(e.snat_entry_id)
    out += [
        f"duplicate SNAT entries for {vsw}: {', '.join(ids)}"
        for vsw, ids in by_vsw.items()
        if len(ids) > 1
    ]
    new = [e for e in entries if e.snat_entry_id not in start.snat_ids]
    if len(made) > len(new):
        out.append(
            f"{len(made)} CreateSnatEntry calls made an entry, for {len(new)} new entr(y/ies) "
            f"(made {', '.join(made)})"
        )
    out += [
        f"SNAT entry {e.snat_entry_id} was created without a ClientToken"
        for e in new
        if e.snat_entry_id not in made
    ]
    recorded = ledger_ids(box, p)
    out += [
        f"SNAT entry {e.snat_entry_id} ({e.snat_entry_name}) for gateway vSwitch "
        f"{e.source_vswitch_id} is in no ledger: teardown would leave it behind"
        for e in entries
        if e.source_vswitch_id in p.gateway.vswitches and e.snat_entry_id not in recorded
    ]
    return out


def owner_problems(box: Sandbox, p: Parameters, start: Before) -> list[str]:
    out: list[str] = []
    default = f"mse-ingress-premium-{p.cluster_id}"
    if _get(box, "mseingressconfigs", default, None) is not None:
        out.append(f"the add-on created its default internet-facing gateway {default}")
    for plural, obj in _objects(box, p):
        meta = obj["metadata"]
        if meta["uid"] in start.uids or meta["name"] == default:
            continue
        if ownership.owner(obj, p) != "ours":
            out.append(f"{plural}/{meta['name']} was created without the ownership labels")
        if plural == "pods":
            out.append(f"pod {meta['name']} was left behind")
    lease = _get(box, "leases", lock.lease_name(p.cluster_name), p.namespace)
    if lease is not None and _held_by_a_live_run(lease):
        holder = (lease.get("spec") or {}).get("holderIdentity")
        out.append(f"the run lock is still held by a finished run ({holder})")
    return out


def _held_by_a_live_run(lease: dict[str, Any]) -> bool:
    # A killed run's Lease stays until the next run that writes takes it over (egress_lib.lock
    # sees its holder's pid is gone); one whose process lives on was never released.
    ann = (lease.get("metadata") or {}).get("annotations") or {}
    if ann.get(lock.HOST_ANNOTATION) != socket.gethostname():
        return True
    try:
        pid = int(ann.get(lock.PID_ANNOTATION) or 0)
    except ValueError:
        return True
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def done_problems(box: Sandbox, p: Parameters, step: str) -> list[str]:
    """What the steps through ``step`` promise, and is not so."""
    if step == "99":
        return _torn_down(box, p)
    out: list[str] = []
    with box.cloud_lock:
        cluster = box.cloud.clusters[p.cluster_id]
        addon = cluster.addons.get(p.controller.addon_name)
        gateways = [g.gateway_id for g in box.cloud.gateways.values()]
        ours = [
            e for e in box.cloud.snat_entries.values() if e.source_vswitch_id in p.gateway.vswitches
        ]
    if addon is None or addon.state != "active":
        out.append(f"add-on {p.controller.addon_name}: {addon.state if addon else 'absent'}")
    if _get(box, "ingressclasses", p.gateway.ingress_class, None) is None:
        out.append(f"IngressClass {p.gateway.ingress_class} is missing")
    if step >= "02":
        mic = _get(box, "mseingressconfigs", p.gateway.config_name, None)
        phase = ((mic or {}).get("status") or {}).get("phase")
        if phase != "Listening":
            out.append(f"MseIngressConfig {p.gateway.config_name}: {phase or 'absent'}")
        if len(gateways) != 1:
            out.append(f"{len(gateways)} MSE gateways: {', '.join(gateways) or 'none'}")
    if step >= "03":
        for vsw in p.gateway.vswitches:
            mine = [e for e in ours if e.source_vswitch_id == vsw]
            if len(mine) != 1 or mine[0].status != "Available":
                states = ", ".join(f"{e.snat_entry_id} {e.status}" for e in mine) or "none"
                out.append(f"SNAT entry for {vsw}: {states}")
    if step >= "04":
        for svc in manifests.external_name_services(p):
            if _get(box, "services", svc["metadata"]["name"], p.namespace) is None:
                out.append(f"Service {svc['metadata']['name']} is missing")
    if step >= "05":
        for ing in manifests.ingresses(p):
            name = ing["metadata"]["name"]
            live = _get(box, "ingresses", name, p.namespace)
            lb = ((live or {}).get("status") or {}).get("loadBalancer") or {}
            if live is None or not lb.get("ingress"):
                out.append(f"Ingress {name}: {'no address' if live else 'missing'}")
    return out


def _torn_down(box: Sandbox, p: Parameters) -> list[str]:
    out: list[str] = []
    with box.cloud_lock:
        left = [
            e.snat_entry_id
            for e in box.cloud.snat_entries.values()
            if e.source_vswitch_id in p.gateway.vswitches
        ]
        gateways = [g.gateway_id for g in box.cloud.gateways.values()]
    if left:
        out.append(f"SNAT entries left: {', '.join(left)}")
    if gateways:
        out.append(f"MSE gateways left: {', '.join(gateways)}")
    named: list[tuple[str, str, str | None]] = [
        ("mseingressconfigs", p.gateway.config_name, None),
        ("ingressclasses", p.gateway.ingress_class, None),
        ("configmaps", ledger.configmap_name(p.cluster_name), p.namespace),
    ]
    named += [
        ("services", o["metadata"]["name"], p.namespace)
        for o in manifests.external_name_services(p)
    ]
    named += [("ingresses", o["metadata"]["name"], p.namespace) for o in manifests.ingresses(p)]
    out += [
        f"{plural}/{name} left"
        for plural, name, ns in named
        if _get(box, plural, name, ns) is not None
    ]
    return out


def problems(box: Sandbox, p: Parameters, step: str, start: Before) -> list[str]:
    """Everything wrong with the world after the cell's runs (empty: converged, no orphan)."""
    return [
        *snat_problems(box, p, start),
        *owner_problems(box, p, start),
        *done_problems(box, p, step),
    ]
