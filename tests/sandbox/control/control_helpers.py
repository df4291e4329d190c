"""Real clients of a sandbox (a unique module name: test folders are not packages)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from egress_sandbox.cli import main as cli_main
from egress_sandbox.sandbox import Sandbox

T = TypeVar("T")
REGION = "cn-hangzhou"


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def cli(box: Sandbox, *args: str) -> int:
    return cli_main(["--home", str(box.home), *args])


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


def vswitch_id(box: Sandbox, name: str) -> str:
    with box.cloud_lock:
        return next(v.vswitch_id for v in box.cloud.vswitches.values() if v.vswitch_name == name)


def create_snat(box: Sandbox, vswitch: str = "gateway", name: str | None = None) -> str:
    """CreateSnatEntry through the SDK for a vSwitch (by name); returns the entry ID."""
    with box.cloud_lock:
        nat = next(iter(box.cloud.nat_gateways.values()))
        eip = box.cloud.eips_of_nat(nat.nat_gateway_id)[0].ip_address
        table = nat.snat_table_id
    request = vpc_models.CreateSnatEntryRequest(
        region_id=REGION,
        snat_table_id=table,
        source_vswitch_id=vswitch_id(box, vswitch),
        snat_ip=eip,
        snat_entry_name=name,
    )
    return str(vpc(box).create_snat_entry(request).body.snat_entry_id)


def snat_status(box: Sandbox, entry_id: str) -> str | None:
    with box.cloud_lock:
        entry = box.cloud.snat_entries.get(entry_id)
        return entry.status if entry else None


def configmap(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": data or {"k": "v"}}
