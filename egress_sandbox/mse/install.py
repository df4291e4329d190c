"""What installing the ``mse-ingress-controller`` add-on leaves in the cluster.

CRD, namespace ``mse-ingress-controller``, Deployment ``ack-mse-ingress-controller`` (reported
ready at once: there is no real pod), an Event, and, unless an IngressClass ``mse`` already
exists, the default MseIngressConfig ``mse-ingress-premium-<clusterid>`` plus IngressClass
``mse`` bound to it (reference section 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.k8s.errors import AlreadyExists, NotFound
from egress_sandbox.k8s.store import Store, now_rfc3339
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.mse.binding import CONTROLLER_NAME, ingress_class_type
from egress_sandbox.mse.crd import (
    GROUP,
    KIND,
    MSE_INGRESS_CONFIG,
    PLURAL,
    VERSION,
    crd_manifest,
    openapi_schema,
)

Obj = dict[str, Any]
ADDON_NAME = "mse-ingress-controller"
NAMESPACE = "mse-ingress-controller"
DEPLOYMENT = "ack-mse-ingress-controller"
IMAGE_REPO = "registry-vpc.cn-hangzhou.aliyuncs.com/acs/mse-ingress-controller"
DEFAULT_CLASS = "mse"


def _rt(store: Store, group: str, version: str, plural: str) -> ResourceType:
    rt = store.types.get(group, version, plural)
    assert rt is not None, f"built-in type {plural} missing"
    return rt


def default_config_name(cluster_id: str) -> str:
    return f"mse-ingress-premium-{cluster_id}"


def ensure_crd(store: Store) -> None:
    """Create the CRD; register the type here too if no CRD subscriber did it synchronously."""
    crd_rt = _rt(store, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
    with contextlib.suppress(AlreadyExists):
        store.create(crd_rt, crd_manifest())
    if store.types.get(GROUP, VERSION, PLURAL) is None:
        store.types.add(dataclasses.replace(MSE_INGRESS_CONFIG, schema=openapi_schema()))


def _deployment(version: str) -> Obj:
    labels = {"app": DEPLOYMENT}
    now = now_rfc3339()
    return {
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": DEPLOYMENT,
                    "containers": [
                        {
                            "name": "mse-ingress-controller",
                            "image": f"{IMAGE_REPO}:v{version}",
                        }
                    ],
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{DEPLOYMENT}" has successfully progressed.',
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
            ],
        },
    }


def _default_config(cluster_id: str, vswitch_id: str) -> Obj:
    name = default_config_name(cluster_id)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "common": {
                "pay": {"payType": "POSTPAY"},
                "instance": {"spec": "4c8g", "replicas": 3},
                "network": {"vSwitches": [vswitch_id], "publicSLBSpec": "slb.s2.small"},
            },
            "ingress": {"local": {"ingressClass": DEFAULT_CLASS}},
        },
    }


def install(store: Store, cloud: CloudState, cluster_id: str, version: str) -> None:
    """Apply the add-on's effects; idempotent, as a re-install would be."""
    ensure_crd(store)
    ns_rt = _rt(store, "", "v1", "namespaces")
    dep_rt = _rt(store, "apps", "v1", "deployments")
    with contextlib.suppress(AlreadyExists):
        store.create(ns_rt, {"metadata": {"name": NAMESPACE}, "status": {"phase": "Active"}})
    with store.lock:
        existing = store.try_get(dep_rt, NAMESPACE, DEPLOYMENT)
        if existing is None:
            dep = store.create(dep_rt, _deployment(version))
            # The Deployment type has a status subresource: set the ready status through it.
            dep["status"] = _deployment(version)["status"]
            dep = store.update(dep_rt, dep, subresource="status")
        else:
            dep = existing
    store.record_event(
        dep,
        "ScalingReplicaSet",
        f"Scaled up replica set {DEPLOYMENT} to 1",
        component="deployment-controller",
    )
    if store.try_get(ingress_class_type(store), None, DEFAULT_CLASS) is not None:
        return  # documented: an existing IngressClass "mse" suppresses the default gateway
    cluster = cloud.clusters.get(cluster_id)
    vswitch = cluster.vswitch_ids[0] if cluster else ""
    cfg = _default_config(cluster_id, vswitch)
    with contextlib.suppress(AlreadyExists):
        store.create(MSE_INGRESS_CONFIG, cfg)
    with contextlib.suppress(AlreadyExists):
        store.create(
            ingress_class_type(store),
            {
                "metadata": {"name": DEFAULT_CLASS},
                "spec": {
                    "controller": CONTROLLER_NAME,
                    "parameters": {
                        "apiGroup": GROUP,
                        "kind": KIND,
                        "name": cfg["metadata"]["name"],
                    },
                },
            },
        )


def uninstall(store: Store) -> None:
    """Remove the Deployment and namespace. The CRD (and so every MseIngressConfig) stays, as
    Helm-style add-ons keep CRDs on uninstall (UNCONFIRMED for this add-on)."""
    dep_rt = _rt(store, "apps", "v1", "deployments")
    ns_rt = _rt(store, "", "v1", "namespaces")
    for rt, ns, name in ((dep_rt, NAMESPACE, DEPLOYMENT), (ns_rt, None, NAMESPACE)):
        with contextlib.suppress(NotFound):
            store.delete(rt, ns, name)


def is_installed(store: Store) -> bool:
    return store.try_get(_rt(store, "apps", "v1", "deployments"), NAMESPACE, DEPLOYMENT) is not None
