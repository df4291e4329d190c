"""Pure builders for the Kubernetes objects the runbook applies.

From the seed procedure's inputs they produce the seed's YAML plus the ownership labels
(:mod:`egress_lib.ownership`), so what the operator reads in the documentation is what lands
in the cluster, and teardown can tell our objects from anyone else's.
"""

from __future__ import annotations

from typing import Any

import yaml

from egress_lib import policy_annotations
from egress_lib.ownership import labels
from egress_lib.parameters import Destination, Parameters
from egress_lib.policies import Endpoint

MSE_GROUP = "mse.alibabacloud.com"
MSE_VERSION = "v1alpha1"
MSE_PLURAL = "mseingressconfigs"
MSE_CONTROLLER = "mse.alibabacloud.com/ingress"
# The keys live with the rest of the translation (egress_lib.policy_annotations).
BACKEND_PROTOCOL_ANNOTATION = policy_annotations.BACKEND_PROTOCOL
PROXY_SSL_NAME_ANNOTATION = policy_annotations.PROXY_SSL_NAME
PROXY_SSL_SERVER_NAME_ANNOTATION = policy_annotations.PROXY_SSL_SERVER_NAME
UPSTREAM_VHOST_ANNOTATION = policy_annotations.UPSTREAM_VHOST

Manifest = dict[str, Any]


def mse_ingress_config(p: Parameters) -> Manifest:
    """The MseIngressConfig: an MSE gateway with an internal CLB only (cluster-scoped)."""
    spec: Manifest = {
        "name": p.gateway.name,
        "common": {
            "instance": {"spec": p.gateway.spec, "replicas": p.gateway.replicas},
            "network": {
                "vSwitches": list(p.gateway.vswitches),
                # Only privateSLBSpec: the gateway must not be reachable from the internet.
                "privateSLBSpec": p.gateway.private_slb_spec,
            },
        },
    }
    access = policy_annotations.ip_access_control(p)
    if access is not None:
        spec["global"] = {"ipAccessControl": access}
    return {
        "apiVersion": f"{MSE_GROUP}/{MSE_VERSION}",
        "kind": "MseIngressConfig",
        "metadata": {"name": p.gateway.config_name, "labels": labels(p)},
        "spec": spec,
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


def external_name_service(
    dest: Destination, p: Parameters, endpoint: Endpoint | None = None
) -> Manifest:
    """An ExternalName Service mapping ``dest.name`` to ``dest.host``.

    Ports 80 and 443 are always declared (as in the seed) so switching the backend
    protocol never needs a Service change; any other port is added as ``port3``. With
    ``endpoint``: that load-balancing endpoint's Service, with the destination's ports.
    """
    ports: list[dict[str, Any]] = [
        {"name": "port1", "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "port2", "port": 443, "protocol": "TCP", "targetPort": 443},
    ]
    if dest.port not in (80, 443):
        ports.append(
            {"name": "port3", "port": dest.port, "protocol": "TCP", "targetPort": dest.port}
        )
    name, host = (dest.name, dest.host) if endpoint is None else (endpoint.name, endpoint.host)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": p.namespace, "labels": labels(p)},
        "spec": {"externalName": host, "ports": ports, "type": "ExternalName"},
    }


def external_name_services(p: Parameters) -> list[Manifest]:
    """One ExternalName Service per destination, each followed by its endpoints' ones."""
    out = []
    for d in p.destinations:
        out.append(external_name_service(d, p))
        lb = d.policies.load_balancing
        out += [external_name_service(d, p, e) for e in (lb.endpoints if lb else [])]
    return out


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
    annotations = policy_annotations.ingress_annotations(dests, p)
    if annotations:
        metadata = {"annotations": annotations, **metadata}
    spec: dict[str, Any] = {"ingressClassName": p.gateway.ingress_class, "rules": rules}
    tls = policy_annotations.ingress_tls(dests)
    if tls:
        spec = {"ingressClassName": p.gateway.ingress_class, "tls": tls, "rules": rules}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def ingress_annotations(dest: Destination, p: Parameters) -> dict[str, str]:
    """The annotations of ``dest``'s Ingress (the parameters check that its group agrees)."""
    return policy_annotations.ingress_annotations([dest], p)


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
