"""Response shapes as the SDK receives them: documented keys, double-wrapped lists, error bodies.

``rpc_call`` goes through the SDK's generic ``call_api``, which hands back the raw JSON body, so
the tests see exactly the keys the emulator sends (the typed models would drop unknown keys and
invent missing ones as None). Key lists are the API reference pages' (docs/aliyun-emulation.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from aliyun_helpers import REGION, World, assert_pop_error, rpc_call

PAGED = {"RequestId", "TotalCount", "PageNumber", "PageSize"}
VPC_KEYS = {
    "VpcId", "VpcName", "RegionId", "Status", "CidrBlock", "Ipv6CidrBlock", "EnabledIpv6",
    "IsDefault", "CreationTime", "Description", "VRouterId", "OwnerId", "ResourceGroupId",
    "CenStatus", "DhcpOptionsSetId", "DhcpOptionsSetStatus", "DnsHostnameStatus", "VSwitchIds",
    "UserCidrs", "SecondaryCidrBlocks", "NatGatewayIds", "RouterTableIds", "Ipv6CidrBlocks",
    "Tags",
}  # fmt: skip
VSWITCH_KEYS = {
    "VSwitchId", "VSwitchName", "VpcId", "ZoneId", "CidrBlock", "Ipv6CidrBlock", "EnabledIpv6",
    "AvailableIpAddressCount", "Status", "IsDefault", "CreationTime", "Description",
    "NetworkAclId", "OwnerId", "ResourceGroupId", "ShareType", "RouteTable", "Tags",
}  # fmt: skip
NAT_KEYS = {
    "NatGatewayId", "Name", "Description", "VpcId", "RegionId", "Status", "BusinessStatus",
    "NatType", "NetworkType", "Spec", "InstanceChargeType", "InternetChargeType",
    "CreationTime", "ExpiredTime", "ResourceGroupId", "AutoPay", "DeletionProtection",
    "EcsMetricEnabled", "IcmpReplyEnabled", "SecurityProtectionEnabled", "PrivateLinkEnabled",
    "PrivateLinkMode", "EipBindMode", "EnableSessionLog", "AvailabilityMode", "SnatTableIds",
    "ForwardTableIds", "FullNatTableIds", "IpLists", "IpPrefixList", "NatGatewayPrivateInfo",
    "AccessMode", "Tags",
}  # fmt: skip
SNAT_KEYS = {
    "SnatEntryId", "SnatEntryName", "SnatIp", "SnatTableId", "NatGatewayId", "SourceCIDR",
    "SourceVSwitchId", "NetworkInterfaceId", "EipAffinity", "Status",
}  # fmt: skip
EIP_CORE_KEYS = {
    "AllocationId", "IpAddress", "PrivateIpAddress", "Name", "Description", "Status",
    "InstanceId", "InstanceType", "InstanceRegionId", "RegionId", "VpcId", "Zone", "Bandwidth",
    "EipBandwidth", "InternetChargeType", "ChargeType", "ISP", "Mode", "Netmode",
    "AllocationTime", "ExpiredTime", "BusinessStatus", "DeletionProtection", "ResourceGroupId",
    "SecondLimited", "ServiceID", "ServiceManaged", "OperationLocks",
    "SecurityProtectionTypes", "Tags",
}  # fmt: skip
LB_KEYS = {
    "LoadBalancerId", "LoadBalancerName", "LoadBalancerStatus", "Address", "AddressType",
    "AddressIPVersion", "NetworkType", "VpcId", "VSwitchId", "RegionId", "RegionIdAlias",
    "MasterZoneId", "SlaveZoneId", "LoadBalancerSpec", "Bandwidth", "InternetChargeType",
    "InternetChargeTypeAlias", "InstanceChargeType", "PayType", "CreateTime",
    "CreateTimeStamp", "DeleteProtection", "ModificationProtectionStatus",
    "ModificationProtectionReason", "ResourceGroupId", "Tags",
}  # fmt: skip
LB_ATTRIBUTE_EXTRA = {
    "RequestId", "EndTime", "EndTimeStamp", "AutoReleaseTime", "RenewalStatus",
    "RenewalDuration", "RenewalCycUnit", "ListenerPorts", "ListenerPortsAndProtocal",
    "ListenerPortsAndProtocol", "BackendServers",
}  # fmt: skip


def listed(body: dict[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    """The items of a double-wrapped list, checking the wrapper has exactly one key."""
    assert set(body[outer]) == {inner}, body[outer]
    items = body[outer][inner]
    assert isinstance(items, list)
    return items


@pytest.fixture
def snat_entry(world: World) -> str:
    resp = rpc_call(
        world,
        "CreateSnatEntry",
        {
            "RegionId": REGION,
            "SnatTableId": world.nat.snat_table_id,
            "SnatIp": world.cloud.eips_of_nat(world.nat.nat_gateway_id)[0].ip_address,
            "SourceVSwitchId": world.vswitch("gateway").vswitch_id,
        },
    )
    assert set(resp["body"]) == {"RequestId", "SnatEntryId"}
    return str(resp["body"]["SnatEntryId"])


def test_vpc_success_shapes(world: World, snat_entry: str) -> None:
    def body(action: str, **query: str) -> dict[str, Any]:
        resp = rpc_call(world, action, {"RegionId": REGION, **query})
        assert resp["statusCode"] == 200
        assert resp["headers"]["x-acs-request-id"] == resp["body"]["RequestId"]
        return dict(resp["body"])

    vpcs = body("DescribeVpcs")
    assert set(vpcs) == PAGED | {"Vpcs"}
    (vpc,) = listed(vpcs, "Vpcs", "Vpc")
    assert set(vpc) == VPC_KEYS
    assert set(vpc["VSwitchIds"]) == {"VSwitchId"}
    assert set(vpc["NatGatewayIds"]) == {"NatGatewayIds"}  # sic: the same name twice
    assert set(vpc["RouterTableIds"]) == {"RouterTableIds"}

    vsws = body("DescribeVSwitches")
    assert set(vsws) == PAGED | {"VSwitches"}
    assert all(set(v) == VSWITCH_KEYS for v in listed(vsws, "VSwitches", "VSwitch"))
    attrs = body("DescribeVSwitchAttributes", VSwitchId=world.vswitch("gateway").vswitch_id)
    assert set(attrs) == VSWITCH_KEYS | {"RequestId"}  # flat, no wrapper

    nats = body("DescribeNatGateways")
    assert set(nats) == PAGED | {"NatGateways"}
    (nat,) = listed(nats, "NatGateways", "NatGateway")
    assert set(nat) == NAT_KEYS
    assert nat["SnatTableIds"] == {"SnatTableId": [world.nat.snat_table_id]}
    assert set(nat["IpLists"]) == {"IpList"} and set(nat["IpPrefixList"]) == {"IpPrefixList"}
    assert "VswitchId" in nat["NatGatewayPrivateInfo"]  # lower-case s, as documented

    eips = body("DescribeEipAddresses")
    assert set(eips) == PAGED | {"EipAddresses"}
    (eip,) = listed(eips, "EipAddresses", "EipAddress")
    assert set(eip) >= EIP_CORE_KEYS
    assert set(eip["OperationLocks"]) == {"LockReason"}

    entries = body("DescribeSnatTableEntries", SnatTableId=world.nat.snat_table_id)
    assert set(entries) == PAGED | {"SnatTableEntries"}
    (entry,) = listed(entries, "SnatTableEntries", "SnatTableEntry")
    assert set(entry) == SNAT_KEYS and entry["SnatEntryId"] == snat_entry


def test_slb_success_shapes(world: World) -> None:
    with world.lock:
        lb = world.gateway_lb("shape", "127.16.2.10", listeners=((80, "http"),))
    lbs = rpc_call(world, "DescribeLoadBalancers", {"RegionId": REGION}, version="2014-05-15")
    assert set(lbs["body"]) == PAGED | {"LoadBalancers"}
    (item,) = listed(lbs["body"], "LoadBalancers", "LoadBalancer")
    assert set(item) == LB_KEYS
    attr = rpc_call(
        world,
        "DescribeLoadBalancerAttribute",
        {"LoadBalancerId": lb.load_balancer_id},
        version="2014-05-15",
    )["body"]
    assert set(attr) == LB_KEYS | LB_ATTRIBUTE_EXTRA
    assert attr["ListenerPorts"] == {"ListenerPort": [80]}
    assert attr["ListenerPortsAndProtocal"] == {
        "ListenerPortAndProtocal": [{"ListenerPort": 80, "ListenerProtocal": "http"}]
    }


def test_error_body_and_status_per_product(world: World) -> None:
    cases = [
        ("DescribeSnatTableEntries", "2016-04-28", {"SnatTableId": "stb-x"}, "vpc.aliyuncs.com"),
        ("DescribeLoadBalancerAttribute", "2014-05-15", {"LoadBalancerId": "lb-x"}, "slb"),
    ]
    codes = ["InvalidSnatTableId.NotFound", "InvalidLoadBalancerId.NotFound"]
    for (action, version, query, host), code in zip(cases, codes, strict=True):
        with pytest.raises(ClientException) as info:
            rpc_call(world, action, {"RegionId": REGION, **query}, version=version)
        assert_pop_error(info.value, code, 404)
        assert info.value.data["HostId"].startswith(host)


def test_throttling_adds_retry_after(world: World) -> None:
    world.server.faults.add("DescribeVpcs", "Throttling.User", 400, count=1, retry_after_ms=700)
    with pytest.raises(ThrottlingException) as info:
        rpc_call(world, "DescribeVpcs", {"RegionId": REGION})
    # The SDK raises ThrottlingException only for a positive x-acs-retry-after header.
    assert info.value.retry_after == 700
    assert_pop_error(info.value, "Throttling.User", 400)
