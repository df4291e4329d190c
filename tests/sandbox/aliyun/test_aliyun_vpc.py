"""VPC Describe* actions through the real SDK: shapes, filters, paging, region and DryRun errors."""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, fast_transitions

from egress_sandbox.aliyun.records import SnatEntry
from egress_sandbox.topology import Topology


def test_describe_vpcs_and_vswitches(world: World) -> None:
    client = world.vpc()
    vpcs = client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body
    (vpc,) = vpcs.vpcs.vpc
    assert (vpc.cidr_block, vpc.status, vpc.region_id) == ("127.16.0.0/16", "Available", REGION)
    assert sorted(vpc.v_switch_ids.v_switch_id) == sorted(world.cloud.vswitches)
    assert vpc.nat_gateway_ids.nat_gateway_ids == [world.nat.nat_gateway_id]
    assert vpc.owner_id == int(world.cloud.account_id)

    vsws = client.describe_vswitches(
        vpc_models.DescribeVSwitchesRequest(region_id=REGION, vpc_id=vpc.vpc_id)
    ).body
    assert vsws.total_count == 2
    assert {v.cidr_block for v in vsws.v_switches.v_switch} == {"127.16.1.0/24", "127.16.2.0/24"}
    gw = world.vswitch("gateway")
    attrs = client.describe_vswitch_attributes(
        vpc_models.DescribeVSwitchAttributesRequest(region_id=REGION, v_switch_id=gw.vswitch_id)
    ).body
    assert (attrs.v_switch_id, attrs.cidr_block, attrs.vpc_id) == (
        gw.vswitch_id,
        gw.cidr_block,
        vpc.vpc_id,
    )
    assert attrs.route_table.route_table_type == "System"


def test_describe_nat_gateways_and_eips(world: World) -> None:
    client = world.vpc()
    body = client.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=REGION, vpc_id=world.nat.vpc_id)
    ).body
    (nat,) = body.nat_gateways.nat_gateway
    assert nat.snat_table_ids.snat_table_id == [world.nat.snat_table_id]
    assert nat.nat_gateway_private_info.vswitch_id == world.nat.vswitch_id
    (ip,) = nat.ip_lists.ip_list
    assert (ip.using_status, ip.snat_entry_enabled) == ("Idle", False)

    eips = client.describe_eip_addresses(
        vpc_models.DescribeEipAddressesRequest(region_id=REGION, associated_instance_type="Nat")
    ).body.eip_addresses.eip_address
    assert [(e.instance_type, e.instance_id, e.status) for e in eips] == [
        ("Nat", world.nat.nat_gateway_id, "InUse")
    ]
    assert eips[0].ip_address == ip.ip_address

    none = client.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=REGION, nat_gateway_id="ngw-nothere")
    ).body
    assert none.total_count == 0 and none.nat_gateways.nat_gateway == []


def test_region_errors(world: World) -> None:
    client = world.vpc()
    with pytest.raises(ClientException) as info:
        client.describe_nat_gateways(vpc_models.DescribeNatGatewaysRequest())
    e = info.value
    assert (e.code, e.status_code) == ("MissingRegionId", 400)
    assert "RegionId is mandatory for this action." in e.message
    assert e.data["HostId"] == "vpc.aliyuncs.com" and e.data["Recommend"].startswith("https://")
    with pytest.raises(ClientException) as info:
        client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id="cn-nowhere-1"))
    assert (info.value.code, info.value.status_code) == ("InvalidRegionId.NotFound", 404)
    with pytest.raises(ClientException) as info:
        client.describe_vswitch_attributes(
            vpc_models.DescribeVSwitchAttributesRequest(region_id=REGION, v_switch_id="vsw-nope")
        )
    assert (info.value.code, info.value.status_code) == ("InvalidVSwitchId.NotFound", 404)
    with pytest.raises(ClientException) as info:
        client.describe_vswitch_attributes(
            vpc_models.DescribeVSwitchAttributesRequest(region_id=REGION)
        )
    assert info.value.code == "MissingVSwitchId"


def test_dry_run_on_a_describe(world: World) -> None:
    with pytest.raises(ClientException) as info:
        world.vpc().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION, dry_run=True))
    assert (info.value.code, info.value.status_code) == ("DryRunOperation", 400)


class TestPaging:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(transitions=fast_transitions(), extra_eips=120)

    @pytest.fixture
    def many_snat(self, world: World) -> list[str]:
        # 60 /28 CIDR entries inside the VPC, as if created earlier (paging needs > 50).
        nat = world.nat
        eip = world.cloud.eips_of_nat(nat.nat_gateway_id)[0]
        ids = []
        with world.lock:
            for n in range(60):
                entry = SnatEntry(
                    snat_entry_id=world.ids.resource_id("snat"),
                    snat_table_id=nat.snat_table_id,
                    nat_gateway_id=nat.nat_gateway_id,
                    snat_ip=eip.ip_address,
                    source_cidr=f"127.16.{100 + n // 16}.{(n % 16) * 16}/28",
                    status="Available",
                )
                world.cloud.snat_entries[entry.snat_entry_id] = entry
                ids.append(entry.snat_entry_id)
        return ids

    def test_eips_page_by_100(self, world: World) -> None:
        client = world.vpc()
        seen: list[str] = []
        for page in (1, 2):
            body = client.describe_eip_addresses(
                vpc_models.DescribeEipAddressesRequest(
                    region_id=REGION, page_number=page, page_size=100
                )
            ).body
            assert (body.total_count, body.page_number, body.page_size) == (121, page, 100)
            seen += [e.allocation_id for e in body.eip_addresses.eip_address]
        assert len(seen) == 121 == len(set(seen))
        default = client.describe_eip_addresses(
            vpc_models.DescribeEipAddressesRequest(region_id=REGION)
        ).body
        assert (default.page_size, len(default.eip_addresses.eip_address)) == (10, 10)
        with pytest.raises(ClientException) as info:
            client.describe_eip_addresses(
                vpc_models.DescribeEipAddressesRequest(region_id=REGION, page_size=101)
            )
        assert (info.value.code, info.value.status_code) == ("InvalidParameter", 400)

    def test_snat_entries_page_by_50(self, world: World, many_snat: list[str]) -> None:
        client = world.vpc()
        table = world.nat.snat_table_id
        pages = [
            client.describe_snat_table_entries(
                vpc_models.DescribeSnatTableEntriesRequest(
                    region_id=REGION, snat_table_id=table, page_number=n, page_size=50
                )
            ).body
            for n in (1, 2, 3)
        ]
        assert [p.total_count for p in pages] == [60, 60, 60]
        got = [e.snat_entry_id for p in pages for e in p.snat_table_entries.snat_table_entry]
        assert got == many_snat
        assert pages[2].snat_table_entries.snat_table_entry == []
        with pytest.raises(ClientException) as info:
            client.describe_snat_table_entries(
                vpc_models.DescribeSnatTableEntriesRequest(
                    region_id=REGION, snat_table_id=table, page_size=51
                )
            )
        assert info.value.code == "InvalidParameter"
