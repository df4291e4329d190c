"""RAM roles over CloudState: the two roles MSE Ingress needs, and look-ups by name.

Role names are case-insensitive in RAM (help: api-ram-2015-05-01-getrole), so look-ups fold case.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from egress_sandbox.aliyun.records import CloudState, RamRole
from egress_sandbox.core.ids import IdFactory

SERVICE_ROLE_FOR_MSE = "AliyunServiceRoleForMSE"
CS_MANAGED_MSE_ROLE = "AliyunCSManagedMseRole"
MSE_ROLES = (SERVICE_ROLE_FOR_MSE, CS_MANAGED_MSE_ROLE)

# Who may assume each role: the service-linked role trusts MSE, the managed role trusts CS
# (help: mse/user-guide/grant-permissions-to-mse-ingress-controller-in-ack-or-ask-clusters).
_TRUSTED = {SERVICE_ROLE_FOR_MSE: "mse.aliyuncs.com", CS_MANAGED_MSE_ROLE: "cs.aliyuncs.com"}
_DESCRIPTION = {
    SERVICE_ROLE_FOR_MSE: "The Microservices Engine (MSE) will use this role to access your "
    "resources in other services.",
    CS_MANAGED_MSE_ROLE: "The MSE Ingress Controller of ACK clusters assumes this role to "
    "access your resources in MSE.",
}


def _trust_policy(service: str) -> str:
    return json.dumps(
        {
            "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": [service]}}
            ],
            "Version": "1",
        }
    )


def _role(name: str, role_id: str) -> RamRole:
    return RamRole(
        role_name=name,
        role_id=role_id,
        description=_DESCRIPTION[name],
        is_service_linked_role=name == SERVICE_ROLE_FOR_MSE,
        assume_role_policy_document=_trust_policy(_TRUSTED[name]),
    )


def seed_mse_roles(cloud: CloudState, ids: IdFactory) -> None:
    """Create both MSE roles, as RAM Quick Authorization does."""
    for name in MSE_ROLES:
        # A stream of its own, so that seeding roles never shifts the other resource IDs.
        cloud.ram_roles[name] = _role(name, "3" + ids.token(18, "0123456789", stream="ram-role"))


def restore_legacy_roles(cloud: CloudState, saved: dict[str, Any]) -> None:
    """A world saved before roles were modelled had them: add both, with stable IDs."""
    if "ram_roles" in saved:
        return
    for name in MSE_ROLES:
        digest = hashlib.sha256(f"{cloud.account_id}:{name}".encode()).hexdigest()
        cloud.ram_roles[name] = _role(name, "3" + str(int(digest[:16], 16)).rjust(18, "0")[:18])


def find_role(cloud: CloudState, name: str) -> RamRole | None:
    """The role called ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for role in cloud.ram_roles.values():
        if role.role_name.lower() == wanted:
            return role
    return None


def missing_mse_roles(cloud: CloudState) -> list[str]:
    """The MSE roles the account lacks, in MSE_ROLES order."""
    return [name for name in MSE_ROLES if find_role(cloud, name) is None]
