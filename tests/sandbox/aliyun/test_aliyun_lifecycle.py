"""Transitions set in a topology YAML file: immediate, timed (N s) and manual, for each kind.

Each test writes the file, loads it with ``Topology.load`` and drives the resulting cloud
through the real SDK: SNAT entries (Pending -> Available, Deleting -> gone), add-on install tasks
(running -> success) and NAT gateways listed with ``status: Creating`` (Creating -> Available).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_pop_error, wait_until

from egress_sandbox.aliyun.records import AVAILABLE_ADDONS
from egress_sandbox.topology import Topology

SECONDS = 0.3  # the timed mode's delay; long enough to observe the state before it


def topology_file(tmp_path: Path, mode: str) -> Path:
    timing = f"{{mode: {mode}, seconds: {SECONDS}}}"
    path = tmp_path / "topology.yaml"
    path.write_text(
        "transitions:\n"
        f"  snat_entry: {timing}\n"
        f"  addon_install: {timing}\n"
        f"  nat_gateway: {timing}\n"
        "nat_gateways:\n"
        "  - name: egress-nat\n"
        "    status: Creating\n"
        "  - name: ready-nat\n"
    )
    return path


@pytest.fixture(params=["immediate", "timed", "manual"])
def topology(request: pytest.FixtureRequest, tmp_path: Path) -> Topology:
    topo = Topology.load(topology_file(tmp_path, request.param))
    assert topo.transitions.snat_entry.mode == request.param
    return topo


def mode(world: World) -> str:
    return world.topology.transitions.snat_entry.mode


def nat_named(world: World, name: str) -> str:
    return next(n.nat_gateway_id for n in world.cloud.nat_gateways.values() if n.name == name)


def nat_status(world: World, nat_gateway_id: str) -> str:
    body = (
        world.vpc()
        .describe_nat_gateways(
            vpc_models.DescribeNatGatewaysRequest(region_id=REGION, nat_gateway_id=nat_gateway_id)
        )
        .body
    )
    return str(body.nat_gateways.nat_gateway[0].status)


def snat_status(world: World, table: str, entry_id: str) -> str | None:
    body = (
        world.vpc()
        .describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id=REGION, snat_table_id=table, snat_entry_id=entry_id
            )
        )
        .body
    )
    found = body.snat_table_entries.snat_table_entry
    return str(found[0].status) if found else None


def settle(
    world: World,
    resource_id: str,
    before: str,
    after: str | None,
    get: Callable[[], str | None],
    since: float | None = None,
) -> None:
    """The resource is ``before`` now (unless immediate) and reaches ``after`` per the mode.

    ``since``: when its timed step was scheduled, if before this call (else: now).
    """
    if mode(world) == "immediate":
        assert get() == after
        return
    assert get() == before
    if mode(world) == "manual":
        time.sleep(SECONDS + 0.1)
        assert get() == before  # nothing moves on its own
        assert world.server.advance(resource_id) is True
        assert get() == after
        assert world.server.advance(resource_id) is False
    else:
        took = wait_until(lambda: get() == after, timeout=SECONDS + 3)
        if since is not None:
            took = time.monotonic() - since
        assert took >= SECONDS - 0.05


def test_nat_gateway_creating_then_available(world: World) -> None:
    nat_id = nat_named(world, "egress-nat")
    assert nat_status(world, nat_named(world, "ready-nat")) == "Available"
    if mode(world) != "immediate":
        # A NAT gateway that is still being created takes no SNAT entries.
        table = world.cloud.nat_gateways[nat_id].snat_table_id
        request = vpc_models.CreateSnatEntryRequest(
            region_id=REGION,
            snat_table_id=table,
            snat_ip=world.cloud.eips_of_nat(nat_id)[0].ip_address,
            source_vswitch_id=world.vswitch("gateway").vswitch_id,
        )
        with pytest.raises(ClientException) as info:
            world.vpc().create_snat_entry(request)
        assert_pop_error(info.value, "IncorrectStatus.NATGW", 400)
    # Its clock started at server.resume(), in the fixture, not when this test began waiting.
    settle(
        world,
        nat_id,
        "Creating",
        "Available",
        lambda: nat_status(world, nat_id),
        since=world.resumed_at,
    )


def test_snat_entry_pending_available_deleting_gone(world: World) -> None:
    nat_id = nat_named(world, "ready-nat")
    table = world.cloud.nat_gateways[nat_id].snat_table_id
    entry_id = (
        world.vpc()
        .create_snat_entry(
            vpc_models.CreateSnatEntryRequest(
                region_id=REGION,
                snat_table_id=table,
                snat_ip=world.cloud.eips_of_nat(nat_id)[0].ip_address,
                source_vswitch_id=world.vswitch("gateway").vswitch_id,
            )
        )
        .body.snat_entry_id
    )
    settle(world, entry_id, "Pending", "Available", lambda: snat_status(world, table, entry_id))
    world.vpc().delete_snat_entry(
        vpc_models.DeleteSnatEntryRequest(
            region_id=REGION, snat_table_id=table, snat_entry_id=entry_id
        )
    )
    settle(world, entry_id, "Deleting", None, lambda: snat_status(world, table, entry_id))


def test_addon_install_task_running_then_success(world: World) -> None:
    name = "mse-ingress-controller"
    body = [cs_models.InstallClusterAddonsRequestBody(name=name, version=AVAILABLE_ADDONS[name])]
    task_id = (
        world.cs()
        .install_cluster_addons(world.cluster_id, cs_models.InstallClusterAddonsRequest(body=body))
        .body.task_id
    )

    def state() -> str:
        return str(world.cs().describe_task_info(task_id).body.state)

    settle(world, task_id, "running", "success", state)
    addon = world.cs().describe_cluster_addon_instance(world.cluster_id, name).body
    assert addon.state == "active"
    assert [c[0] for c in world.hooks.calls] == ["installing", "installed"]
