"""The listeners of a gateway's CLBs: 80 (http) always, 443 (https) while TLS is in use.

MSE adds listener 443 to the gateway's SLB when an Ingress it serves declares ``spec.tls`` and
drops it again once none does (the issue "SLB ... listeners 80 and 443 where TLS is used").
The data plane follows the CLB's listeners (``DataPlane.open_clb``).
"""

from __future__ import annotations

import threading
from typing import Any

from egress_sandbox.aliyun.records import CloudState, LoadBalancer
from egress_sandbox.aliyun.slb import models as slb
from egress_sandbox.k8s.store import Store
from egress_sandbox.mse.binding import bound_ingresses

Obj = dict[str, Any]
HTTPS_PORT = 443


def uses_tls(ingress: Obj) -> bool:
    return bool((ingress.get("spec") or {}).get("tls"))


def sync(store: Store, cloud: CloudState, cloud_lock: threading.RLock) -> list[LoadBalancer]:
    """Add or remove listener 443 on every attached gateway's CLBs; the CLBs that changed."""
    with cloud_lock:
        gateways = [
            (gw.config_name, [i for i in (gw.private_slb_id, gw.public_slb_id) if i])
            for gw in cloud.gateways.values()
            if gw.config_name
        ]
    changed: list[LoadBalancer] = []
    for config_name, lb_ids in gateways:
        # Read outside cloud_lock: store subscribers may take cloud_lock under Store.lock.
        tls = any(uses_tls(ing) for ing in bound_ingresses(store, config_name))
        with cloud_lock:
            for lb_id in lb_ids:
                lb = cloud.load_balancers.get(lb_id)
                if lb is None:
                    continue
                has = any(int(e["port"]) == HTTPS_PORT for e in lb.listeners)
                if tls and not has:
                    slb.add_listener(cloud, lb_id, port=HTTPS_PORT, protocol="https")
                elif has and not tls:
                    slb.remove_listener(cloud, lb_id, port=HTTPS_PORT)
                else:
                    continue
                changed.append(lb)
    return changed
