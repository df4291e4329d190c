"""SNAT rules, one test each, over two NAT gateways, an unbound EIP and a vSwitch of another VPC."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_pop_error, fast_transitions, wait_until

from egress_sandbox.aliyun.records import NatGateway, Vpc, VSwitch
from egress_sandbox.topology import NatSpec, Topology


@pytest.fixture
def topology() -> Topology:
    return Topology(
        transitions=fast_transitions(),
        nat_gateways=[NatSpec(name="first"), NatSpec(name="second")],
        extra_eips=1,
    )


def nat(world: World, name: str) -> NatGateway:
    return next(n for n in world.cloud.nat_gateways.values() if n.name == name)


def eip_of(world: World, name: str) -> str:
    return world.cloud.eips_of_nat(nat(world, name).nat_gateway_id)[0].ip_address


def create(world: World, **kw: str) -> str:
    args = {
        "region_id": REGION,
        "snat_table_id": nat(world, "first").snat_table_id,
        "snat_ip": eip_of(world, "first"),
        "source_vswitch_id": world.vswitch("gateway").vswitch_id,
        **kw,
    }
    request = vpc_models.CreateSnatEntryRequest(**{k: v for k, v in args.items() if v})
    return str(world.vpc().create_snat_entry(request).body.snat_entry_id)


def status(world: World, entry_id: str) -> str | None:
    entry = world.cloud.snat_entries.get(entry_id)
    return entry.status if entry else None


def rejected(call: Callable[[], object], code: str, status_code: int) -> None:
    with pytest.raises(ClientException) as info:
        call()
    assert_pop_error(info.value, code, status_code)


def test_a_vswitch_is_in_at_most_one_entry(world: World) -> None:
    first = create(world)
    rejected(lambda: create(world), "Forbidden.SourceVSwitchId.Duplicated", 400)
    wait_until(lambda: status(world, first) == "Available")
    rejected(lambda: create(world), "Forbidden.SourceVSwitchId.Duplicated", 400)
    # The same source given as its CIDR is the same entry too.
    cidr = world.vswitch("gateway").cidr_block
    rejected(
        lambda: create(world, source_vswitch_id="", source_cidr=cidr),
        "Forbidden.SourceVSwitchId.Duplicated",
        400,
    )


def test_overlapping_cidr_conflicts(world: World) -> None:
    create(world)
    for cidr in ("127.16.2.0/25", "127.16.0.0/16"):  # inside, and around, the vSwitch's /24
        rejected(
            lambda cidr=cidr: create(world, source_vswitch_id="", source_cidr=cidr),  # type: ignore[misc]
            "OperationUnsupported.CidrConflict",
            400,
        )
    create(world, source_vswitch_id="", source_cidr="127.16.3.0/24")  # disjoint: fine


def test_snat_ip_must_be_an_eip_of_that_nat_gateway(world: World) -> None:
    unbound = next(e.ip_address for e in world.cloud.eips.values() if not e.instance_id)
    for ip in (eip_of(world, "second"), unbound, "47.96.250.250"):
        rejected(lambda ip=ip: create(world, snat_ip=ip), "InvalidSnatIp.NotFound", 404)  # type: ignore[misc]
    assert world.cloud.snat_entries == {}
    # The other NAT gateway's EIP is fine in its own table.
    create(world, snat_table_id=nat(world, "second").snat_table_id, snat_ip=eip_of(world, "second"))


def test_modify_checks_the_snat_ip_too(world: World) -> None:
    entry_id = create(world)
    wait_until(lambda: status(world, entry_id) == "Available")
    table = nat(world, "first").snat_table_id

    def modify(**kw: str) -> object:
        return world.vpc().modify_snat_entry(
            vpc_models.ModifySnatEntryRequest(region_id=REGION, snat_table_id=table, **kw)
        )

    rejected(
        lambda: modify(snat_entry_id=entry_id, snat_ip=eip_of(world, "second")),
        "InvalidSnatIp.NotFound",
        404,
    )
    rejected(lambda: modify(snat_entry_id="snat-nothere"), "InvalidSnatEntryId.NotFound", 404)
    assert status(world, entry_id) == "Available"


def test_vswitch_must_be_in_the_nat_gateways_vpc(world: World) -> None:
    with world.lock:
        world.cloud.vpcs["vpc-other"] = Vpc("vpc-other", "other", "10.9.0.0/16", REGION)
        world.cloud.vswitches["vsw-other"] = VSwitch(
            "vsw-other", "other", "vpc-other", "cn-hangzhou-k", "10.9.1.0/24"
        )
    # [UNCONFIRMED] code: a vSwitch of another VPC is "not found" from this NAT gateway.
    rejected(lambda: create(world, source_vswitch_id="vsw-other"), "InvalidVSwitchId.NotFound", 404)


def test_nothing_is_deleted_while_an_entry_of_the_table_is_pending(world: World) -> None:
    first = create(world)
    wait_until(lambda: status(world, first) == "Available")
    world.topology.transitions.snat_entry.seconds = 30  # keep the next entry Pending
    create(world, source_vswitch_id=world.vswitch("nodes").vswitch_id)
    delete = vpc_models.DeleteSnatEntryRequest(
        region_id=REGION, snat_table_id=nat(world, "first").snat_table_id, snat_entry_id=first
    )
    rejected(lambda: world.vpc().delete_snat_entry(delete), "IncorretSnatEntryStatus", 400)
    assert status(world, first) == "Available"
    # Another table is not blocked by this one's Pending entry.
    other = create(
        world, snat_table_id=nat(world, "second").snat_table_id, snat_ip=eip_of(world, "second")
    )
    assert status(world, other) == "Pending"
