"""Every request, accepted or rejected at any stage, yields exactly one audit record.

Each call below goes through a real SDK client; its RequestId (from the body, the
``x-acs-request-id`` header, or the exception) must be the one audit record's ``request_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_util.models import RuntimeOptions
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, rpc_call

from egress_sandbox.aliyun.records import AVAILABLE_ADDONS
from egress_sandbox.aliyun.vpc.models import VpcModel
from egress_sandbox.core.audit import AuditRecord

MSE = "mse-ingress-controller"


def request_id_of(call: Callable[[], Any]) -> str:
    """Run one SDK call; the RequestId the client saw, success or error."""
    try:
        resp = call()
    except (ClientException, ServerException) as e:
        return str(e.request_id)
    headers = resp["headers"] if isinstance(resp, dict) else resp.headers
    return str(headers["x-acs-request-id"])


def roa_get(world: World, path: str) -> dict[str, Any]:
    client = OpenApiClient(world.config())
    params = open_api_models.Params(
        action="Anything",
        version="2015-12-15",
        protocol="HTTP",
        pathname=path,
        method="GET",
        auth_type="AK",
        style="ROA",
        req_body_type="json",
        body_type="json",
    )
    return client.call_api(params, open_api_models.OpenApiRequest(), RuntimeOptions())  # type: ignore[no-any-return]


def snat_request(world: World, **kw: Any) -> vpc_models.CreateSnatEntryRequest:
    return vpc_models.CreateSnatEntryRequest(
        region_id=REGION,
        snat_table_id=world.nat.snat_table_id,
        snat_ip=world.cloud.eips_of_nat(world.nat.nat_gateway_id)[0].ip_address,
        source_vswitch_id=world.vswitch("gateway").vswitch_id,
        **kw,
    )


def test_one_record_per_request_with_all_fields(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ro = {
        "access_key_id": world.topology.readonly_access_key_id,
        "access_key_secret": world.topology.readonly_access_key_secret,
    }
    cid = world.cluster_id
    install = cs_models.InstallClusterAddonsRequest(
        body=[cs_models.InstallClusterAddonsRequestBody(name=MSE, version=AVAILABLE_ADDONS[MSE])]
    )
    world.server.faults.add("DescribeEipAddresses", "Throttling.User", 400, count=1)

    def broken(self: VpcModel) -> list[Any]:
        raise RuntimeError("a bug in the emulator")

    # (call, api, principal, action, path, mutating, status, error code)
    cases: list[tuple[Callable[[], Any], str, str, str, str, bool, int, str]] = [
        (
            lambda: world.vpc().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)),
            "vpc", "sandbox-admin", "DescribeVpcs", "/", False, 200, "",
        ),
        (
            lambda: world.vpc().create_snat_entry(snat_request(world)),
            "vpc", "sandbox-admin", "CreateSnatEntry", "/", True, 200, "",
        ),
        (
            lambda: world.vpc(access_key_secret="bad").create_snat_entry(snat_request(world)),
            "vpc", "anonymous", "CreateSnatEntry", "/", True, 400, "SignatureDoesNotMatch",
        ),
        (
            lambda: world.vpc(access_key_id="LTAIunknown", access_key_secret="x").describe_vpcs(
                vpc_models.DescribeVpcsRequest(region_id=REGION)
            ),
            "vpc", "anonymous", "DescribeVpcs", "/", False, 404, "InvalidAccessKeyId.NotFound",
        ),
        (
            lambda: rpc_call(world, "DescribeNothing", {"RegionId": REGION}),
            "vpc", "sandbox-admin", "DescribeNothing", "/", False, 404, "InvalidAction.NotFound",
        ),
        (
            lambda: rpc_call(world, "DeleteVpc", {"RegionId": REGION}, version="1999-01-01"),
            "rpc", "sandbox-admin", "DeleteVpc", "/", True, 400, "InvalidVersion",
        ),
        (
            lambda: world.vpc(**ro).create_snat_entry(snat_request(world)),
            "vpc", "sandbox-readonly", "CreateSnatEntry", "/", True, 403, "Forbidden.RAM",
        ),
        (
            lambda: world.vpc().create_snat_entry(snat_request(world, dry_run=True)),
            "vpc", "sandbox-admin", "CreateSnatEntry", "/", True, 400, "DryRunOperation",
        ),
        (
            lambda: world.vpc().describe_nat_gateways(vpc_models.DescribeNatGatewaysRequest()),
            "vpc", "sandbox-admin", "DescribeNatGateways", "/", False, 400, "MissingRegionId",
        ),
        (
            lambda: world.vpc().describe_eip_addresses(
                vpc_models.DescribeEipAddressesRequest(region_id=REGION)
            ),
            "vpc", "sandbox-admin", "DescribeEipAddresses", "/", False, 400, "Throttling.User",
        ),
        (
            lambda: world.slb().describe_load_balancers(
                slb_models.DescribeLoadBalancersRequest(region_id=REGION)
            ),
            "slb", "sandbox-admin", "DescribeLoadBalancers", "/", False, 200, "",
        ),
        (
            lambda: world.cs().describe_cluster_detail(cid),
            "cs", "sandbox-admin", "DescribeClusterDetail", f"/clusters/{cid}", False, 200, "",
        ),
        (
            lambda: world.cs().install_cluster_addons(cid, install),
            "cs", "sandbox-admin", "InstallClusterAddons",
            f"/clusters/{cid}/components/install", True, 200, "",
        ),
        (
            lambda: world.cs().describe_task_info("T-nothere"),
            "cs", "sandbox-admin", "DescribeTaskInfo", "/tasks/T-nothere", False, 404,
            "ErrorTaskNotFound",
        ),
        (
            lambda: roa_get(world, "/no/such/path"),
            "cs", "sandbox-admin", "", "/no/such/path", False, 404, "InvalidAction.NotFound",
        ),
    ]  # fmt: skip
    seen: list[str] = [request_id_of(case[0]) for case in cases]
    with monkeypatch.context() as m:
        m.setattr(VpcModel, "vpcs", broken)
        seen.append(request_id_of(lambda: rpc_call(world, "DescribeVpcs", {"RegionId": REGION})))
    expected = [case[1:] for case in cases]
    expected.append(("vpc", "sandbox-admin", "DescribeVpcs", "/", False, 500, "InternalError"))

    records: list[AuditRecord] = world.audit.records()
    assert len(records) == len(expected)  # exactly one each, rejected ones included
    got = [
        (r.api, r.principal, r.action, r.path, r.mutating, r.status, r.error_code) for r in records
    ]
    assert got == expected
    assert [r.request_id for r in records] == seen
    assert len(set(seen)) == len(seen) and all(seen)


def test_records_never_hold_secrets_or_tokens(world: World) -> None:
    world.vpc().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))
    world.vpc(signature_algorithm="v2").describe_vpcs(
        vpc_models.DescribeVpcsRequest(region_id=REGION)
    )
    dumped = repr(world.audit.records())
    assert world.topology.access_key_secret not in dumped
    assert "Signature" not in dumped  # the v2 query (with its signature) is not recorded
