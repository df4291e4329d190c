"""Paging of every Describe* action over a topology with 60 SNAT entries and 121 EIPs.

Defaults and maxima (the VPC and SLB API reference pages): PageSize 10 by default everywhere; at
most 50 for
VPCs, vSwitches, NAT gateways and SNAT entries, at most 100 for EIPs and load balancers.
"""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_pop_error, fast_transitions, rpc_call

from egress_sandbox.topology import NatSpec, Topology

SNAT_ENTRIES = 60
EIPS = 121  # one bound to the NAT gateway + 120 unbound

# action, version, extra query, wrapper, item key, maximum PageSize, total in the topology
ACTIONS = [
    ("DescribeVpcs", "2016-04-28", {}, "Vpcs", "Vpc", 50, 1),
    ("DescribeVSwitches", "2016-04-28", {}, "VSwitches", "VSwitch", 50, 2),
    ("DescribeNatGateways", "2016-04-28", {}, "NatGateways", "NatGateway", 50, 1),
    ("DescribeSnatTableEntries", "2016-04-28", None, "SnatTableEntries", "SnatTableEntry", 50, 60),
    ("DescribeEipAddresses", "2016-04-28", {}, "EipAddresses", "EipAddress", 100, EIPS),
    ("DescribeLoadBalancers", "2014-05-15", {}, "LoadBalancers", "LoadBalancer", 100, 0),
]


@pytest.fixture
def topology() -> Topology:
    # 60 /28 SNAT entries by CIDR, as if created before the sandbox started.
    entries = [
        {"cidr": f"127.16.{100 + n // 16}.{(n % 16) * 16}/28", "name": f"entry-{n:02d}"}
        for n in range(SNAT_ENTRIES)
    ]
    return Topology(
        transitions=fast_transitions(),
        nat_gateways=[NatSpec(snat_entries=entries)],
        extra_eips=EIPS - 1,
    )


def query(world: World, extra: dict[str, str] | None, **paging: int) -> dict[str, str]:
    q = {"RegionId": REGION, **(extra if extra is not None else {})}
    if extra is None:  # SNAT entries are listed per table
        q["SnatTableId"] = world.nat.snat_table_id
    return {**q, **{k: str(v) for k, v in paging.items()}}


@pytest.mark.parametrize(
    ("action", "version", "extra", "outer", "inner", "maximum", "total"), ACTIONS
)
def test_defaults_maxima_and_total_count(
    world: World,
    action: str,
    version: str,
    extra: dict[str, str] | None,
    outer: str,
    inner: str,
    maximum: int,
    total: int,
) -> None:
    body = rpc_call(world, action, query(world, extra), version=version)["body"]
    assert (body["PageNumber"], body["PageSize"], body["TotalCount"]) == (1, 10, total)
    assert len(body[outer][inner]) == min(10, total)

    body = rpc_call(world, action, query(world, extra, PageSize=maximum), version=version)["body"]
    assert (body["PageSize"], body["TotalCount"]) == (maximum, total)
    assert len(body[outer][inner]) == min(maximum, total)

    for bad in ({"PageSize": maximum + 1}, {"PageSize": 0}, {"PageNumber": 0}):
        with pytest.raises(ClientException) as info:
            rpc_call(world, action, query(world, extra, **bad), version=version)
        assert_pop_error(info.value, "InvalidParameter", 400)
        assert next(iter(bad)) in info.value.message


def test_walk_sixty_snat_entries_by_fifty(world: World) -> None:
    client = world.vpc()
    seen: list[str] = []
    for number in (1, 2, 3):
        body = client.describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id=REGION,
                snat_table_id=world.nat.snat_table_id,
                page_number=number,
                page_size=50,
            )
        ).body
        assert (body.total_count, body.page_number, body.page_size) == (60, number, 50)
        seen += [e.snat_entry_name for e in body.snat_table_entries.snat_table_entry]
    assert seen == [f"entry-{n:02d}" for n in range(SNAT_ENTRIES)]  # stable order, no repeats


def test_walk_121_eips_by_100(world: World) -> None:
    client = world.vpc()
    pages = [
        client.describe_eip_addresses(
            vpc_models.DescribeEipAddressesRequest(region_id=REGION, page_number=n, page_size=100)
        ).body
        for n in (1, 2)
    ]
    assert [len(p.eip_addresses.eip_address) for p in pages] == [100, 21]
    ids = [e.allocation_id for p in pages for e in p.eip_addresses.eip_address]
    assert len(set(ids)) == EIPS == pages[0].total_count
