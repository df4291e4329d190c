"""Request handling: server-side required parameters, booleans, flattened lists, routing errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_pop_error, rpc_call


def _missing_cases(world: World) -> list[tuple[str, Callable[[], object], str]]:
    vpc, slb = world.vpc(), world.slb()
    table = world.nat.snat_table_id
    return [
        ("DescribeVpcs", lambda: vpc.describe_vpcs(vpc_models.DescribeVpcsRequest()), "RegionId"),
        (
            "DescribeNatGateways",
            lambda: vpc.describe_nat_gateways(vpc_models.DescribeNatGatewaysRequest()),
            "RegionId",
        ),
        (
            "DescribeEipAddresses",
            lambda: vpc.describe_eip_addresses(vpc_models.DescribeEipAddressesRequest()),
            "RegionId",
        ),
        (
            "DescribeVSwitches",
            lambda: vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest()),
            "RegionId",
        ),
        (
            "DescribeVSwitchAttributes",
            lambda: vpc.describe_vswitch_attributes(
                vpc_models.DescribeVSwitchAttributesRequest(region_id=REGION)
            ),
            "VSwitchId",
        ),
        (
            "DescribeSnatTableEntries",
            lambda: vpc.describe_snat_table_entries(
                vpc_models.DescribeSnatTableEntriesRequest(region_id=REGION)
            ),
            "SnatTableId",
        ),
        (
            "CreateSnatEntry",
            lambda: vpc.create_snat_entry(vpc_models.CreateSnatEntryRequest(region_id=REGION)),
            "SnatTableId",
        ),
        (
            "ModifySnatEntry",
            lambda: vpc.modify_snat_entry(
                vpc_models.ModifySnatEntryRequest(region_id=REGION, snat_table_id=table)
            ),
            "SnatEntryId",
        ),
        (
            "DeleteSnatEntry",
            lambda: vpc.delete_snat_entry(
                vpc_models.DeleteSnatEntryRequest(snat_table_id=table, snat_entry_id="snat-x")
            ),
            "RegionId",
        ),
        (
            "DescribeLoadBalancers",
            lambda: slb.describe_load_balancers(slb_models.DescribeLoadBalancersRequest()),
            "RegionId",
        ),
        (
            "DescribeLoadBalancerAttribute",
            lambda: slb.describe_load_balancer_attribute(
                slb_models.DescribeLoadBalancerAttributeRequest()
            ),
            "LoadBalancerId",
        ),
    ]


def test_required_parameters_are_enforced_server_side(world: World) -> None:
    for action, call, param in _missing_cases(world):
        with pytest.raises(ClientException) as info:
            call()
        assert_pop_error(info.value, f"Missing{param}", 400)
        assert f"{param} is mandatory for this action." in info.value.message, action
    # Every rejected call reached the server (the SDK validates nothing) and was audited.
    assert [r.error_code for r in world.audit.records()] == [
        f"Missing{p}" for _, _, p in _missing_cases(world)
    ]


def test_cs_body_requires_name_and_version(world: World) -> None:
    cs = world.cs()
    for body in (
        [cs_models.InstallClusterAddonsRequestBody(name="mse-ingress-controller")],
        [cs_models.InstallClusterAddonsRequestBody(version="2.1.3")],
        [],
    ):
        with pytest.raises(ClientException) as info:
            cs.install_cluster_addons(
                world.cluster_id, cs_models.InstallClusterAddonsRequest(body=body)
            )
        assert (info.value.code, info.value.status_code) == ("InvalidParameter", 400)


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "tRuE"])
def test_booleans_are_case_insensitive(world: World, value: str) -> None:
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeVpcs", {"RegionId": REGION, "DryRun": value})
    assert_pop_error(info.value, "DryRunOperation", 400)


@pytest.mark.parametrize("value", ["false", "False", "FALSE"])
def test_false_in_any_case_runs_the_action(world: World, value: str) -> None:
    resp = rpc_call(world, "DescribeVpcs", {"RegionId": REGION, "DryRun": value})
    assert resp["statusCode"] == 200 and resp["body"]["TotalCount"] == 1


def test_a_boolean_that_is_not_one_is_invalid(world: World) -> None:
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeVpcs", {"RegionId": REGION, "DryRun": "yes"})
    assert_pop_error(info.value, "InvalidParameter", 400)
    assert "DryRun" in info.value.message


def test_tag_n_key_is_flattened_and_read(world: World) -> None:
    vpc = world.vpc()
    tag = vpc_models.DescribeNatGatewaysRequestTag(key="team", value="egress")
    # The sandbox's NAT gateway has no tags: a tag filter the server reads matches nothing.
    assert (
        vpc.describe_nat_gateways(
            vpc_models.DescribeNatGatewaysRequest(region_id=REGION)
        ).body.total_count
        == 1
    )
    body = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=REGION, tag=[tag])
    ).body
    assert (body.total_count, body.nat_gateways.nat_gateway) == (0, [])
    # Tag.1.Value without Tag.1.Key is rejected, so Tag.N.* arrive as separate parameters.
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeNatGateways", {"RegionId": REGION, "Tag.1.Value": "egress"})
    assert_pop_error(info.value, "InvalidParameter", 400)
    assert "Tag.N.Key" in info.value.message


def test_name_n_list_is_flattened_and_read(world: World) -> None:
    # The SDK sends network_interface_ids=[a, b] as NetworkInterfaceIds.1 / .2.
    from egress_sandbox.aliyun.records import SnatEntry

    nat = world.nat
    with world.lock:
        world.cloud.snat_entries["snat-preexisting"] = SnatEntry(
            "snat-preexisting",
            nat.snat_table_id,
            nat.nat_gateway_id,
            world.cloud.eips_of_nat(nat.nat_gateway_id)[0].ip_address,
            source_cidr="127.16.9.0/24",
            status="Available",
        )
    vpc = world.vpc()
    plain = vpc_models.DescribeSnatTableEntriesRequest(
        region_id=REGION, snat_table_id=nat.snat_table_id
    )
    assert vpc.describe_snat_table_entries(plain).body.total_count == 1
    by_eni = vpc_models.DescribeSnatTableEntriesRequest(
        region_id=REGION,
        snat_table_id=nat.snat_table_id,
        network_interface_ids=["eni-a", "eni-b"],
    )
    # Internet NAT entries have no ENI, so a filter on ENIs that the server read matches none.
    assert vpc.describe_snat_table_entries(by_eni).body.total_count == 0


def test_unknown_action_and_version_through_the_sdk(world: World) -> None:
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeNothing", {"RegionId": REGION})
    assert_pop_error(info.value, "InvalidAction.NotFound", 404)
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeVpcs", {"RegionId": REGION}, version="2099-01-01")
    assert_pop_error(info.value, "InvalidVersion", 400)
    # SLB's version with a VPC-only action is unknown there too.
    with pytest.raises(ClientException) as info:
        rpc_call(world, "DescribeVpcs", {"RegionId": REGION}, version="2014-05-15")
    assert_pop_error(info.value, "InvalidAction.NotFound", 404)
    assert info.value.data["HostId"] == "slb.aliyuncs.com"


def _form_call(world: World, size: int) -> dict[str, object]:
    """DescribeVpcs through the SDK with a form body of about ``size`` bytes (signed)."""
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.client import Client as OpenApiClient
    from alibabacloud_tea_util.models import RuntimeOptions

    params = open_api_models.Params(
        action="DescribeVpcs",
        version="2016-04-28",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = open_api_models.OpenApiRequest(
        query={"RegionId": REGION}, body={"VpcName": "x" * size}
    )
    client = OpenApiClient(world.config())
    return client.call_api(params, request, RuntimeOptions())  # type: ignore[no-any-return]


def test_a_body_over_1_mib_is_refused_before_authentication(world: World) -> None:
    from egress_sandbox.aliyun.app import MAX_BODY

    with pytest.raises(ClientException) as info:
        _form_call(world, MAX_BODY)
    assert_pop_error(info.value, "RequestEntityTooLarge", 413)
    assert info.value.data["Message"] == f"The request body exceeds the limit of {MAX_BODY} bytes."
    record = next(r for r in world.audit.records() if r.request_id == info.value.request_id)
    # Refused before the signature was checked: nobody is authenticated yet.
    assert (record.principal, record.status, record.error_code) == (
        "anonymous",
        413,
        "RequestEntityTooLarge",
    )


def test_a_body_under_the_limit_is_read_and_signed_as_usual(world: World) -> None:
    out = _form_call(world, 512 * 1024)
    assert out["statusCode"] == 200
    assert out["body"]["TotalCount"] == 0  # no VPC has that name
