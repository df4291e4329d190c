"""Route tables, route entries and node pools through the real SDKs, and egress needing a route."""

from __future__ import annotations

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_cs_error, assert_pop_error, fast_transitions

from egress_sandbox.topology import NatSpec, RouteTableSpec, Topology, VSwitchSpec


def _tables(
    world: World,
) -> list[vpc_models.DescribeRouteTableListResponseBodyRouterTableListRouterTableListType]:
    body = (
        world.vpc()
        .describe_route_table_list(
            vpc_models.DescribeRouteTableListRequest(region_id=REGION, vpc_id=world.nat.vpc_id)
        )
        .body
    )
    assert body.total_count == len(body.router_table_list.router_table_list_type)
    return list(body.router_table_list.router_table_list_type)


def _entries(
    world: World, table_id: str, **filters: str
) -> list[vpc_models.DescribeRouteEntryListResponseBodyRouteEntrysRouteEntry]:
    body = (
        world.vpc()
        .describe_route_entry_list(
            vpc_models.DescribeRouteEntryListRequest(
                region_id=REGION, route_table_id=table_id, **filters
            )
        )
        .body
    )
    return list(body.route_entrys.route_entry)


def test_system_table_routes_the_internet_to_the_nat_gateway(world: World) -> None:
    (table,) = _tables(world)
    assert (table.route_table_type, table.router_type, table.status) == (
        "System",
        "VRouter",
        "Available",
    )
    assert sorted(table.v_switch_ids.v_switch_id) == sorted(world.cloud.vswitches)
    routes = {
        e.destination_cidr_block: (e.type, e.next_hops.next_hop[0].next_hop_type)
        for e in _entries(world, table.route_table_id)
    }
    assert routes == {"127.16.0.0/16": ("System", "local"), "0.0.0.0/0": ("Custom", "NatGateway")}
    (default,) = _entries(world, table.route_table_id, destination_cidr_block="0.0.0.0/0")
    assert default.next_hops.next_hop[0].next_hop_id == world.nat.nat_gateway_id
    vsw = (
        world.vpc()
        .describe_vswitch_attributes(
            vpc_models.DescribeVSwitchAttributesRequest(
                region_id=REGION, v_switch_id=world.vswitch("gateway").vswitch_id
            )
        )
        .body
    )
    assert vsw.route_table.route_table_id == table.route_table_id


def test_route_entry_list_pages_with_next_token_and_rejects_unknown_tables(world: World) -> None:
    (table,) = _tables(world)
    first = (
        world.vpc()
        .describe_route_entry_list(
            vpc_models.DescribeRouteEntryListRequest(
                region_id=REGION, route_table_id=table.route_table_id, max_result=1
            )
        )
        .body
    )
    assert (first.total_count, len(first.route_entrys.route_entry)) == (2, 1)
    second = (
        world.vpc()
        .describe_route_entry_list(
            vpc_models.DescribeRouteEntryListRequest(
                region_id=REGION,
                route_table_id=table.route_table_id,
                max_result=1,
                next_token=first.next_token,
            )
        )
        .body
    )
    assert second.next_token in ("", None)
    ids = {first.route_entrys.route_entry[0].route_entry_id}
    assert second.route_entrys.route_entry[0].route_entry_id not in ids
    with pytest.raises(ClientException) as e:
        _entries(world, "vtb-nothere")
    assert_pop_error(e.value, "InvalidRouteTableId.NotFound", 404)
    with pytest.raises(ClientException) as e:
        world.vpc().describe_route_entry_list(
            vpc_models.DescribeRouteEntryListRequest(region_id=REGION)
        )
    assert_pop_error(e.value, "MissingRouteTableId", 400)
    with pytest.raises(ClientException) as e:
        world.vpc().describe_route_table_list(vpc_models.DescribeRouteTableListRequest())
    assert_pop_error(e.value, "MissingRegionId", 400)


class TestNodePoolsApartFromTheControlPlane:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(
            transitions=fast_transitions(),
            vswitches=[
                VSwitchSpec(name="nodes", cidr="127.16.1.0/24"),
                VSwitchSpec(name="gateway", cidr="127.16.2.0/24"),
                VSwitchSpec(name="control-plane", cidr="127.16.3.0/24"),
            ],
            cluster_vswitch="control-plane",
        )

    def test_the_node_pool_names_the_nodes_vswitch(self, world: World) -> None:
        cs = world.cs()
        (pool,) = cs.describe_cluster_node_pools(
            world.cluster_id, cs_models.DescribeClusterNodePoolsRequest()
        ).body.nodepools
        assert pool.nodepool_info.is_default and pool.nodepool_info.name == "default-nodepool"
        assert pool.nodepool_info.nodepool_id.startswith("np")
        assert pool.scaling_group.vswitch_ids == [world.vswitch("nodes").vswitch_id]
        assert pool.status.state == "active"
        detail = cs.describe_cluster_detail(world.cluster_id).body
        assert detail.vswitch_ids == [world.vswitch("control-plane").vswitch_id]
        assert world.cloud.node_vswitch_ids(world.cluster_id) == pool.scaling_group.vswitch_ids
        none = cs.describe_cluster_node_pools(
            world.cluster_id, cs_models.DescribeClusterNodePoolsRequest(nodepool_name="other")
        ).body
        assert none.nodepools == []
        with pytest.raises(ClientException) as e:
            cs.describe_cluster_node_pools("cnothere", cs_models.DescribeClusterNodePoolsRequest())
        assert_cs_error(e.value, "ErrorClusterNotFound", 404)


class TestCustomTableWithoutDefaultRoute:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(
            transitions=fast_transitions(),
            nat_gateways=[NatSpec(snat_entries=[{"vswitch": "gateway"}])],
            route_tables=[RouteTableSpec(name="gateway-rt", vswitches=["gateway"])],
        )

    def test_the_gateway_vswitch_has_no_way_out_despite_its_snat_entry(self, world: World) -> None:
        gateway = world.vswitch("gateway")
        tables = {t.route_table_type: t for t in _tables(world)}
        custom = tables["Custom"]
        assert (custom.route_table_name, custom.v_switch_ids.v_switch_id) == (
            "gateway-rt",
            [gateway.vswitch_id],
        )
        assert gateway.vswitch_id not in tables["System"].v_switch_ids.v_switch_id
        assert [e.destination_cidr_block for e in _entries(world, custom.route_table_id)] == [
            "127.16.0.0/16"
        ]
        assert world.cloud.snat_egress_ip(gateway.vswitch_id) is None


class TestCustomTableWithDefaultRoute:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(
            transitions=fast_transitions(),
            nat_gateways=[NatSpec(snat_entries=[{"vswitch": "gateway"}])],
            route_tables=[
                RouteTableSpec(name="gateway-rt", vswitches=["gateway"], default_route=True)
            ],
        )

    def test_egress_leaves_by_the_snat_ip(self, world: World) -> None:
        gateway = world.vswitch("gateway")
        (eip,) = world.cloud.eips_of_nat(world.nat.nat_gateway_id)
        assert world.cloud.snat_egress_ip(gateway.vswitch_id) == eip.ip_address
