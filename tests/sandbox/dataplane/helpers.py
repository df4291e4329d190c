"""Objects of the egress procedure, and a plain HTTP client for CLB addresses."""

from __future__ import annotations

import http.client
import json
from typing import Any

from egress_sandbox.aliyun.records import LoadBalancer
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG
from egress_sandbox.mse.gateway import gateway_of_config

from .conftest import World, wait_for

Obj = dict[str, Any]
GATEWAY = "egress-gateway"


def mse_class(name: str = "mse", config: str = GATEWAY) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "controller": "mse.alibabacloud.com/ingress",
            "parameters": {
                "apiGroup": "mse.alibabacloud.com",
                "kind": "MseIngressConfig",
                "name": config,
            },
        },
    }


def egress_config(w: World, name: str = GATEWAY, **network: Any) -> Obj:
    net = {"vSwitches": [w.vswitch("gateway")], "privateSLBSpec": "slb.s2.small", **network}
    return {
        "apiVersion": "mse.alibabacloud.com/v1alpha1",
        "kind": "MseIngressConfig",
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "common": {"instance": {"spec": "2c4g", "replicas": 3}, "network": net},
        },
    }


def external_service(
    name: str = "aliyun-svc-external",
    host: str = "www.aliyun.com",
    annotations: dict[str, str] | None = None,
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
        "spec": {
            "type": "ExternalName",
            "externalName": host,
            "ports": [
                {"name": "port1", "port": 80, "protocol": "TCP", "targetPort": 80},
                {"name": "port2", "port": 443, "protocol": "TCP", "targetPort": 443},
            ],
        },
    }


def ingress(
    name: str = "mse-ingress",
    *,
    host: str | None = "www.aliyun.com",
    path: str = "/product/aliware/mse",
    path_type: str = "Prefix",
    service: str = "aliyun-svc-external",
    port: int | str = 80,
    annotations: dict[str, str] | None = None,
    cls: str | None = "mse",
) -> Obj:
    port_ref = {"number": port} if isinstance(port, int) else {"name": port}
    rule: Obj = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": path_type,
                    "backend": {"service": {"name": service, "port": port_ref}},
                }
            ]
        }
    }
    if host:
        rule["host"] = host
    spec: Obj = {"rules": [rule]}
    if cls:
        spec["ingressClassName"] = cls
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
        "spec": spec,
    }


def listening_gateway(w: World, name: str = GATEWAY) -> LoadBalancer:
    """IngressClass mse -> ``name``, install (no default gateway), wait for Listening."""
    w.store.create(w.ingress_classes, mse_class(config=name))
    w.install()
    w.store.create(MSE_INGRESS_CONFIG, egress_config(w, name))
    w.wait_phase(name, "Listening")
    with w.cloud_lock:
        gw = gateway_of_config(w.cloud, name)
        assert gw is not None
        return w.cloud.load_balancers[gw.private_slb_id]


def ingress_ip(w: World, name: str = "mse-ingress") -> Obj:
    def get() -> Obj | None:
        ing = w.store.get(w.ingresses, "default", name)
        entries = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        return entries[0] if entries else None

    return wait_for(get, what=f"status of ingress {name}")


def request(lb: LoadBalancer, host: str, path: str, method: str = "GET") -> tuple[int, Obj, bytes]:
    conn = http.client.HTTPConnection(lb.address, lb.listen_port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def echo(body: bytes) -> Obj:
    data: Obj = json.loads(body)
    return data
