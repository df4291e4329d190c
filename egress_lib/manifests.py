"""Pure builders for the Kubernetes objects the runbook applies.

From the seed procedure's inputs they produce the seed's YAML plus the ownership labels
(:mod:`egress_lib.ownership`), so what the operator reads in the documentation is what lands
in the cluster, and teardown can tell our objects from anyone else's.
"""

from __future__ import annotations

from typing import Any

import yaml

from egress_lib.ownership import labels
from egress_lib.parameters import Destination, Parameters

MSE_GROUP = "mse.alibabacloud.com"
MSE_VERSION = "v1alpha1"
MSE_PLURAL = "mseingressconfigs"
MSE_CONTROLLER = "mse.alibabacloud.com/ingress"
BACKEND_PROTOCOL_ANNOTATION = "nginx.ingress.kubernetes.io/backend-protocol"
# TLS server name (SNI) towards the backend: MSE reads the name only together with the switch
# (https://www.alibabacloud.com/help/en/mse/user-guide/annotations-supported-by-mse-ingress-gateways).
PROXY_SSL_NAME_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-ssl-name"
PROXY_SSL_SERVER_NAME_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-ssl-server-name"
# The Host header sent to the backend (same page); the gateway does not rewrite it by itself.
UPSTREAM_VHOST_ANNOTATION = "nginx.ingress.kubernetes.io/upstream-vhost"

Manifest = dict[str, Any]


def mse_ingress_config(p: Parameters) -> Manifest:
    """The MseIngressConfig: an MSE gateway with an internal CLB only (cluster-scoped)."""
    return {
        "apiVersion": f"{MSE_GROUP}/{MSE_VERSION}",
        "kind": "MseIngressConfig",
        "metadata": {"name": p.gateway.config_name, "labels": labels(p)},
        "spec": {
            "name": p.gateway.name,
            "common": {
                "instance": {"spec": p.gateway.spec, "replicas": p.gateway.replicas},
                "network": {
                    "vSwitches": list(p.gateway.vswitches),
                    # Only privateSLBSpec: the gateway must not be reachable from the internet.
                    "privateSLBSpec": p.gateway.private_slb_spec,
                },
            },
        },
    }


def ingress_class(p: Parameters) -> Manifest:
    """The IngressClass that binds ``p.gateway.ingress_class`` to the MseIngressConfig."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": p.gateway.ingress_class, "labels": labels(p)},
        "spec": {
            "controller": MSE_CONTROLLER,
            "parameters": {
                "apiGroup": MSE_GROUP,
                "kind": "MseIngressConfig",
                "name": p.gateway.config_name,
            },
        },
    }


def external_name_service(dest: Destination, p: Parameters) -> Manifest:
    """An ExternalName Service mapping ``dest.name`` to ``dest.host``.

    Ports 80 and 443 are always declared (as in the seed) so switching the backend
    protocol never needs a Service change; any other port is added as ``port3``.
    """
    ports: list[dict[str, Any]] = [
        {"name": "port1", "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "port2", "port": 443, "protocol": "TCP", "targetPort": 443},
    ]
    if dest.port not in (80, 443):
        ports.append(
            {"name": "port3", "port": dest.port, "protocol": "TCP", "targetPort": dest.port}
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": dest.name, "namespace": p.namespace, "labels": labels(p)},
        "spec": {"externalName": dest.host, "ports": ports, "type": "ExternalName"},
    }


def external_name_services(p: Parameters) -> list[Manifest]:
    """One ExternalName Service per destination."""
    return [external_name_service(d, p) for d in p.destinations]


def ingress(name: str, dests: list[Destination], p: Parameters) -> Manifest:
    """One Ingress holding the rules of ``dests`` (which share a backend protocol)."""
    rules: list[dict[str, Any]] = []
    by_host: dict[str, list[dict[str, Any]]] = {}
    for d in dests:
        if d.host not in by_host:
            by_host[d.host] = []
            rules.append({"host": d.host, "http": {"paths": by_host[d.host]}})
        by_host[d.host].append(
            {
                "backend": {"service": {"name": d.name, "port": {"number": d.port}}},
                "path": d.path,
                "pathType": d.path_type,
            }
        )
    metadata: dict[str, Any] = {"name": name, "namespace": p.namespace, "labels": labels(p)}
    annotations = ingress_annotations(dests[0])
    if annotations:
        metadata = {"annotations": annotations, **metadata}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {"ingressClassName": p.gateway.ingress_class, "rules": rules},
    }


def ingress_annotations(dest: Destination) -> dict[str, str]:
    """The annotations of ``dest``'s Ingress (the parameters check that its group agrees)."""
    out: dict[str, str] = {}
    if dest.backend_protocol == "HTTPS":
        # The gateway talks TLS to the external service; HTTP is the default, so no
        # annotation is written for it (keeps the HTTP Ingress identical to the seed's).
        out[BACKEND_PROTOCOL_ANNOTATION] = "HTTPS"
    if dest.sni is not None:
        # The name alone is not sent: the gateway sets SNI only when the switch is "on".
        out[PROXY_SSL_NAME_ANNOTATION] = dest.sni
        out[PROXY_SSL_SERVER_NAME_ANNOTATION] = "on"
    if dest.upstream_vhost is not None:
        out[UPSTREAM_VHOST_ANNOTATION] = dest.upstream_vhost
    return out


def ingresses(p: Parameters) -> list[Manifest]:
    """The Ingresses, one per ``ingress_name`` group."""
    return [ingress(name, dests, p) for name, dests in p.ingress_groups().items()]


class _BlockDumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def to_yaml(obj: object) -> str:
    """Block-style YAML, keys in insertion order; a list becomes ``---``-separated documents."""
    docs = obj if isinstance(obj, list) else [obj]
    return "---\n".join(
        yaml.dump(
            d, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        for d in docs
    )
