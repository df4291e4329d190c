"""Real clients of a sandbox (a unique module name: test folders are not packages)."""

from __future__ import annotations

from typing import Any

from alibabacloud_vpc20160428 import models as vpc_models

# The control tests import these from here, with the helpers below.
from sandbox_clients import REGION, cs, install_mse_addon, kube, sdk_config, vpc  # noqa: F401
from waiting import wait_for  # noqa: F401

from egress_sandbox.cli import main as cli_main
from egress_sandbox.sandbox import Sandbox


def cli(box: Sandbox, *args: str) -> int:
    return cli_main(["--home", str(box.home), *args])


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
