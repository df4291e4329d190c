"""Real clients of an in-process Sandbox, for any test folder (``from sandbox_clients import``).

The SDKs and the ``kubernetes`` client reach the sandbox over HTTP exactly as they reach a real
cluster; nothing here touches the sandbox's objects directly. A module, not a package: the
rootdir conftest puts tests/ on ``sys.path``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from waiting import wait_for

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

REGION = "cn-hangzhou"
MSE_ADDON = ("mse-ingress-controller", "2.1.3")


def sdk_config(box: Sandbox) -> open_api_models.Config:
    return open_api_models.Config(
        access_key_id=box.topology.access_key_id,
        access_key_secret=box.topology.access_key_secret,
        endpoint=box.aliyun.endpoint,
        protocol="http",
        region_id=REGION,
        read_timeout=10000,
        connect_timeout=5000,
    )


def vpc(box: Sandbox) -> VpcClient:
    return VpcClient(sdk_config(box))


def cs(box: Sandbox) -> CsClient:
    return CsClient(sdk_config(box))


def kube(box: Sandbox) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(str(box.kubeconfig_path), context="sandbox")


def install_mse_addon(box: Sandbox, timeout: float = 10.0) -> None:
    """InstallClusterAddons through CS; returns once its task succeeded (runbook step 01)."""
    name, version = MSE_ADDON
    body = cs_models.InstallClusterAddonsRequestBody(name=name, version=version)
    task = cs(box).install_cluster_addons(
        box.cluster_id, cs_models.InstallClusterAddonsRequest(body=[body])
    )
    wait_for(
        lambda: cs(box).describe_task_info(task.body.task_id).body.state == "success",
        timeout,
        "the add-on install task",
    )
