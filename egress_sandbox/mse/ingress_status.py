"""Writes ``status.loadBalancer`` of the Ingresses a Listening gateway serves, as MSE does.

Bound Ingresses get ``[{"ip": <internal CLB address>}]`` (plus ``ports`` when the data plane
could not bind port 80 or 443, so clients can still find it: the real port of each listener, 80
first); unbound ones get an empty status. With the topology's ``ingress_status_hostname`` the
entry carries ``hostname`` instead, as for a gateway fronted by an NLB (reached by a domain
name: https://www.alibabacloud.com/help/en/mse/product-overview/billing-overview-2); pods
resolve that name to the CLB's address (``CloudState.pod_dns``).
"""

from __future__ import annotations

import threading
from typing import Any

from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.k8s.errors import Conflict, NotFound
from egress_sandbox.k8s.store import Store
from egress_sandbox.mse.binding import BindingView, ingress_type
from egress_sandbox.mse.gateway import gateway_of_config

Obj = dict[str, Any]


def _desired(cloud: CloudState, cloud_lock: threading.RLock, cfg: Obj | None) -> tuple[Obj, str]:
    """The status an Ingress should carry, and the gateway id serving it ("" if none)."""
    if cfg is None:
        return {"loadBalancer": {}}, ""
    with cloud_lock:
        gw = gateway_of_config(cloud, cfg["metadata"]["name"])
        lb = cloud.load_balancers.get(gw.private_slb_id) if gw else None
        if gw is None or lb is None:
            return {"loadBalancer": {}}, ""
        entry: Obj = (
            {"hostname": cloud.lb_hostname(lb)} if cloud.status_hostnames else {"ip": lb.address}
        )
        real = sorted(lb.listen_ports.items())
        if any(port != bound for port, bound in real):
            # Every listener's real port in listener order (80 first), so ports[0] stays the
            # HTTP port whichever listener had to move.
            entry["ports"] = [{"port": bound, "protocol": "TCP"} for _, bound in real]
        return {"loadBalancer": {"ingress": [entry]}}, gw.gateway_id


def sync_all(store: Store, cloud: CloudState, cloud_lock: threading.RLock) -> int:
    """Bring every Ingress status up to date; returns how many were changed."""
    rt = ingress_type(store)
    view = BindingView(store)
    items, _ = store.list(rt)
    changed = 0
    for ing in items:
        want, gw_id = _desired(cloud, cloud_lock, view.config_for(ing))
        have = ing.get("status") or {"loadBalancer": {}}
        if (have.get("loadBalancer") or {}) == want["loadBalancer"]:
            continue
        ing["status"] = want
        try:
            updated = store.update(rt, ing, subresource="status")
        except (Conflict, NotFound):
            continue  # changed or deleted meanwhile: that change triggers another sync
        changed += 1
        if gw_id:
            store.record_event(
                updated,
                "Sync",
                f"Ingress synced to gateway {gw_id}",
                component="mse-ingress-controller",
            )
    return changed
