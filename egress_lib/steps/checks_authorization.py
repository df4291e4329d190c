"""Preflight checks that MSE may act for the account: its RAM roles, and dedicated clusters.

MSE Ingress Controller 1.1.5+ authenticates with the CS-managed role ``AliyunCSManagedMseRole``
and MSE reaches the cluster through the service-linked role ``AliyunServiceRoleForMSE``; without
them the add-on installs but its gateway never comes up (help:
https://www.alibabacloud.com/help/en/mse/user-guide/grant-permissions-to-mse-ingress-controller-in-ack-or-ask-clusters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from egress_lib.cloud import call
from egress_lib.errors import CloudApiError
from egress_lib.steps.preflight import AGAIN, Check

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.steps.preflight import Facts

SERVICE_ROLE = "AliyunServiceRoleForMSE"
CS_MANAGED_ROLE = "AliyunCSManagedMseRole"
QUICK_AUTHORIZATION = (
    "https://www.alibabacloud.com/help/en/mse/user-guide/"
    "grant-permissions-to-mse-ingress-controller-in-ack-or-ask-clusters"
)
# ACK dedicated clusters report this cluster_type; managed ones "ManagedKubernetes".
DEDICATED = "Kubernetes"
MSE_FULL_ACCESS = "AliyunMSEFullAccess"

_CONSOLE_STEP = (
    "an administrator of the account opens the RAM Quick Authorization link on "
    f"{QUICK_AUTHORIZATION} (ACK console > the cluster > Add-ons > MSE Ingress Controller: "
    '"Failed to pass the precheck." > View Report > the authorization link) and clicks Authorize'
)
FIXES = {
    SERVICE_ROLE: f"{_CONSOLE_STEP}; or with the CLI: `aliyun ram CreateServiceLinkedRole "
    f"--ServiceName mse.aliyuncs.com` (needs ram:CreateServiceLinkedRole); then {AGAIN}",
    CS_MANAGED_ROLE: f"{_CONSOLE_STEP} (it creates {CS_MANAGED_ROLE}, trusted by "
    f"cs.aliyuncs.com); then {AGAIN}",
}
ROLE_NOT_FOUND = "EntityNotExist.Role"


def role_check(session: Session, role: str) -> Check:
    """RAM GetRole ``role``: ✗ when the account lacks it, ⚠ when it cannot be read."""
    from alibabacloud_ram20150501 import models as m

    name = f"RAM role {role}"
    try:
        body = call("ram", "GetRole", session.ram.get_role, m.GetRoleRequest(role_name=role))
    except CloudApiError as e:
        if e.code == ROLE_NOT_FOUND or e.status_code == 404:
            return Check(
                name,
                False,
                f"{role} does not exist: MSE Ingress cannot create or run the gateway "
                f"(Quick Authorization: {QUICK_AUTHORIZATION})",
                fix=FIXES[role],
            )
        return Check(
            name,
            False,
            f"cannot read {role} ({e.code or e.status_code}): grant ram:GetRole to verify it",
            level="warning",
            fix=FIXES[role],
        )
    arn = getattr(getattr(body, "role", None), "arn", None) or role
    return Check(name, True, f"exists ({arn})")


def dedicated_check(f: Facts) -> Check | None:
    """ACK dedicated clusters: the worker RAM role needs AliyunMSEFullAccess (⚠, unverified)."""
    if f.cluster.get("cluster_type") != DEDICATED:
        return None
    role = f.cluster.get("worker_ram_role_name") or "the worker RAM role (KubernetesWorkerRole-…)"
    return Check(
        f"{MSE_FULL_ACCESS} on the worker RAM role",
        False,
        f"ACK dedicated cluster: {role} needs the system policy {MSE_FULL_ACCESS}; preflight "
        "cannot verify the role's policies",
        level="warning",
        fix=f"attach {MSE_FULL_ACCESS} to {role} (RAM console > Roles), then run `kubectl -n "
        "mse-ingress-controller rollout restart deployment/ack-mse-ingress-controller` "
        f"(see {QUICK_AUTHORIZATION})",
    )


def checks(session: Session, f: Facts) -> list[Check]:
    """Both MSE roles, then the dedicated-cluster note when it applies."""
    found = [role_check(session, role) for role in (SERVICE_ROLE, CS_MANAGED_ROLE)]
    dedicated = dedicated_check(f)
    return found + ([dedicated] if dedicated else [])
