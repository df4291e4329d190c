"""The objects a fresh ACK cluster has: system namespaces, one node, the kubernetes Service."""

from __future__ import annotations

from egress_sandbox.k8s.crds import install_crd_controller
from egress_sandbox.k8s.defaults import KUBERNETES_SERVICE_IP
from egress_sandbox.k8s.store import Obj, Store, now_rfc3339
from egress_sandbox.k8s.validation import install_admission

NODE_NAME = "cn-hangzhou.127.16.1.10"
NODE_IP = "127.16.1.10"
KUBERNETES_VERSION = "v1.32.1"


POD_CIDR = "127.244.16.0/24"  # the default node's share of Topology.pod_cidr (see kubelet.podips)


def _node(name: str, ip: str, pod_cidr: str, region: str) -> Obj:
    now = now_rfc3339()
    return {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": f"{region}-k",
                "node.kubernetes.io/instance-type": "ecs.g7.xlarge",
            },
        },
        "spec": {
            "providerID": f"{region}.i-bp1sandboxnode0001",
            "podCIDR": pod_cidr,
            "podCIDRs": [pod_cidr],
        },
        "status": {
            "conditions": [
                {
                    "type": t,
                    "status": "False",
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for t, r, m in (
                    (
                        "MemoryPressure",
                        "KubeletHasSufficientMemory",
                        "kubelet has sufficient memory available",
                    ),
                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    (
                        "PIDPressure",
                        "KubeletHasSufficientPID",
                        "kubelet has sufficient PID available",
                    ),
                )
            ]
            + [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {"cpu": "4", "memory": "16049064Ki", "pods": "64"},
            "allocatable": {"cpu": "3900m", "memory": "13200264Ki", "pods": "64"},
            "nodeInfo": {
                "kubeletVersion": f"{KUBERNETES_VERSION}-aliyun.1",
                "kubeProxyVersion": f"{KUBERNETES_VERSION}-aliyun.1",
                "containerRuntimeVersion": "containerd://1.6.36",
                "osImage": "Alibaba Cloud Linux 3.2104 U10 (OpenAnolis Edition)",
                "kernelVersion": "5.10.134-17.3.al8.x86_64",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def bootstrap_cluster(
    store: Store,
    *,
    node_name: str = NODE_NAME,
    node_ip: str = NODE_IP,
    pod_cidr: str = POD_CIDR,
    region: str = "cn-hangzhou",
) -> None:
    """Seed ``store`` with a fresh cluster's objects (skipping any that exist).

    The node is the one the kubelet runs as (``pod_cidr``: its share of the cluster's pod
    CIDR); it is created only when the cluster has no node at all, so a saved world keeps the
    node it had. Also installs admission (defaulting + validation) and the CRD controller, so
    the store behaves like a cluster whether or not a KubeApiServer fronts it.
    """
    install_admission(store)
    install_crd_controller(store)
    ns_rt = store.types.get("", "v1", "namespaces")
    node_rt = store.types.get("", "v1", "nodes")
    svc_rt = store.types.get("", "v1", "services")
    assert ns_rt and node_rt and svc_rt
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        if store.try_get(ns_rt, None, ns) is None:
            store.create(ns_rt, {"metadata": {"name": ns}})
    if not store.list(node_rt)[0]:
        store.create(node_rt, _node(node_name, node_ip, pod_cidr, region))
    if store.try_get(svc_rt, "default", "kubernetes") is None:
        store.create(
            svc_rt,
            {
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": KUBERNETES_SERVICE_IP,
                    "ports": [
                        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}
                    ],
                },
            },
        )
