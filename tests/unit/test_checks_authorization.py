"""The dedicated-cluster note of the MSE authorization checks (a pure function of the facts)."""

from __future__ import annotations

from egress_lib.steps.checks_authorization import MSE_FULL_ACCESS, dedicated_check
from egress_lib.steps.preflight import Facts


def _facts(**cluster: str) -> Facts:
    return Facts(
        cluster=dict(cluster), kubernetes_version="v1.32", vpc=None, vswitches=[], nat_gateways=[]
    )


def test_managed_clusters_need_no_worker_role_policy() -> None:
    assert dedicated_check(_facts(cluster_type="ManagedKubernetes")) is None


def test_a_dedicated_cluster_warns_naming_the_worker_role_and_the_policy() -> None:
    check = dedicated_check(
        _facts(cluster_type="Kubernetes", worker_ram_role_name="KubernetesWorkerRole-abc")
    )
    assert check is not None and not check.ok and check.level == "warning"
    assert "KubernetesWorkerRole-abc" in check.detail and MSE_FULL_ACCESS in check.fix
    assert "rollout restart deployment/ack-mse-ingress-controller" in check.fix
