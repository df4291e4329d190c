"""RAM 2015-05-01 GetRole and its response shape (SDK alibabacloud-ram20150501 GetRoleResponseBody).

RAM is a global service: GetRole takes no RegionId. The ``Arn`` form
``acs:ram::<account>:role/<lower-case name>`` is the documented one (help:
api-ram-2015-05-01-getrole); service-linked roles live under ``role/aliyunservicerole...``
with no path prefix in the sandbox [UNCONFIRMED: the real ARN of a service-linked role].
"""

from __future__ import annotations

import threading
from typing import Any

from egress_sandbox.aliyun.common.params import Params
from egress_sandbox.aliyun.common.product_errors import EntityNotExistRole
from egress_sandbox.aliyun.ram.models import find_role
from egress_sandbox.aliyun.records import CloudState

ACTIONS: dict[str, tuple[str, bool]] = {"GetRole": ("get_role", False)}


class RamResponses:
    def __init__(self, cloud: CloudState, lock: threading.RLock) -> None:
        self.cloud = cloud
        self.lock = lock

    def get_role(self, p: Params) -> dict[str, Any]:
        name = p.require("RoleName")
        with self.lock:
            role = find_role(self.cloud, name)
            account = self.cloud.account_id
        if role is None:
            raise EntityNotExistRole(f"The role not exists: {name}.")
        return {
            "Role": {
                "RoleId": role.role_id,
                "RoleName": role.role_name,
                "Arn": f"acs:ram::{account}:role/{role.role_name.lower()}",
                "Description": role.description,
                "AssumeRolePolicyDocument": role.assume_role_policy_document,
                "CreateDate": role.create_date,
                "UpdateDate": role.create_date,
                "MaxSessionDuration": 3600,
                "RolePrincipalName": f"{role.role_name}@role.{account}.onaliyunservice.com",
                "IsServiceLinkedRole": role.is_service_linked_role,
            }
        }
