"""RAM policies per identity: the topology gives the admin key a policy, checked per RAM action."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_pop_error, fast_transitions
from pydantic import ValidationError

from egress_sandbox.aliyun.common.ram_policy import RamPolicy, ram_action
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.topology import Topology

POLICY: dict[str, Any] = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["vpc:Describe*", "cs:DescribeClusterDetail"],
            "Resource": "*",
        },
        {"Effect": "Deny", "Action": "vpc:DescribeEipAddresses", "Resource": "*"},
    ],
}
DETAIL_KEYS = {
    "PolicyType",
    "AuthPrincipalOwnerId",
    "EncodedDiagnosticMessage",
    "AuthPrincipalType",
    "AuthPrincipalDisplayName",
    "NoPermissionType",
    "AuthAction",
}


@pytest.fixture
def topology() -> Topology:
    return Topology(transitions=fast_transitions(), admin_ram_policy=POLICY)


def policy(*statements: dict[str, Any]) -> RamPolicy:
    return RamPolicy.parse({"Version": "1", "Statement": list(statements)})


def allow(action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": "*", **extra}


def test_ram_action_names_follow_the_help_pages() -> None:
    assert ram_action("cs", "DescribeClusterAddonsVersion") == "cs:Queryk8sComponentsUpdateVersion"
    assert ram_action("vpc", "CreateSnatEntry") == "vpc:CreateSnatEntry"


def test_decisions_wildcards_and_deny_precedence() -> None:
    p = policy(allow(["vpc:Describe*", "cs:Get?lusterAddonInstance"]), allow("slb:*"))
    assert p.decide("vpc:DescribeVpcs") == "Allow"
    assert p.decide("cs:GetClusterAddonInstance") == "Allow"
    assert p.decide("slb:DescribeLoadBalancers") == "Allow"
    assert p.decide("vpc:CreateSnatEntry") == "ImplicitDeny"
    assert p.decide("vpc:describevpcs") == "ImplicitDeny"  # stricter than RAM: case matters
    denied = policy(allow("*"), {"Effect": "Deny", "Action": "vpc:*SnatEntry", "Resource": "*"})
    assert denied.decide("vpc:CreateSnatEntry") == "ExplicitDeny"
    assert denied.decide("vpc:DescribeVpcs") == "Allow"
    everything_but = policy({"Effect": "Allow", "NotAction": "vpc:Delete*", "Resource": "*"})
    assert everything_but.decide("vpc:CreateSnatEntry") == "Allow"
    assert everything_but.decide("vpc:DeleteSnatEntry") == "ImplicitDeny"


def test_resources_and_conditions_only_ever_narrow() -> None:
    # Not evaluated: an Allow with a resource or a condition never allows, a Deny always denies.
    arn = "acs:vpc:*:*:natgateway/ngw-1"
    assert policy(allow("vpc:*", Resource=arn)).decide("vpc:CreateSnatEntry") == "ImplicitDeny"
    condition = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    assert policy(allow("vpc:*", Condition=condition)).decide("vpc:DescribeVpcs") == (
        "ImplicitDeny"
    )
    deny = {"Effect": "Deny", "Action": "vpc:*", "Resource": arn, "Condition": condition}
    assert policy(allow("*"), deny).decide("vpc:DescribeVpcs") == "ExplicitDeny"


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"Version": "2", "Statement": [allow("*")]}, "Version"),
        ({"Version": "1", "Statement": []}, "non-empty"),
        ({"Version": "1", "Statement": [allow("*", Sid="s1")]}, "Sid"),
        ({"Version": "1", "Statement": [allow("*", Principal="*")]}, "Principal"),
        ({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*"}]}, "Resource"),
        ({"Version": "1", "Statement": [allow("vpc:*", NotAction="x:y")]}, "NotAction"),
        ({"Version": "1", "Statement": [allow("DescribeVpcs")]}, "ram-code"),
        ({"Version": "1", "Statement": [{**allow("*"), "Effect": "allow"}]}, "Effect"),
    ],
)
def test_malformed_policies_are_refused_at_load(document: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Topology(admin_ram_policy=document)


def test_admin_key_is_authorized_per_ram_action(world: World) -> None:
    vpc = world.vpc()
    assert vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body.total_count
    cases = [
        (
            lambda: vpc.create_snat_entry(
                vpc_models.CreateSnatEntryRequest(
                    region_id=REGION,
                    snat_table_id=world.nat.snat_table_id,
                    snat_ip=world.cloud.eips_of_nat(world.nat.nat_gateway_id)[0].ip_address,
                    source_vswitch_id=world.vswitch("gateway").vswitch_id,
                    dry_run=True,
                )
            ),
            "vpc:CreateSnatEntry",
            "ImplicitDeny",
        ),
        (
            lambda: vpc.describe_eip_addresses(
                vpc_models.DescribeEipAddressesRequest(region_id=REGION)
            ),
            "vpc:DescribeEipAddresses",
            "ExplicitDeny",
        ),
        (
            lambda: world.slb().describe_load_balancers(
                slb_models.DescribeLoadBalancersRequest(region_id=REGION)
            ),
            "slb:DescribeLoadBalancers",
            "ImplicitDeny",
        ),
    ]
    for call, auth_action, why in cases:
        with pytest.raises(ClientException) as info:
            call()
        assert_pop_error(info.value, "Forbidden.RAM", 403, extra=frozenset({"AccessDeniedDetail"}))
        detail = info.value.access_denied_detail
        assert set(detail) == DETAIL_KEYS
        assert (detail["AuthAction"], detail["NoPermissionType"]) == (auth_action, why)
        assert detail["AuthPrincipalDisplayName"] == "sandbox-admin"
        assert detail["AuthPrincipalOwnerId"] == world.cloud.account_id
    assert world.cloud.snat_entries == {}


def test_cs_denies_by_the_ram_action_name(world: World) -> None:
    cs = world.cs()
    assert cs.describe_cluster_detail(world.cluster_id).body.state == "running"
    with pytest.raises(ClientException) as info:
        cs.describe_cluster_addons_version(world.cluster_id)
    assert (info.value.code, info.value.status_code) == ("Forbidden.RAM", 403)
    assert info.value.data["accessDeniedDetail"]["AuthAction"] == (
        "cs:Queryk8sComponentsUpdateVersion"
    )
    assert info.value.access_denied_detail["AuthAction"] == "cs:Queryk8sComponentsUpdateVersion"
    audit = world.audit.records()[-1]
    assert (audit.action, audit.status, audit.error_code) == (
        "DescribeClusterAddonsVersion",
        403,
        "Forbidden.RAM",
    )


def test_the_read_only_key_keeps_its_rule(world: World) -> None:
    ro = world.vpc(
        access_key_id=world.topology.readonly_access_key_id,
        access_key_secret=world.topology.readonly_access_key_secret,
    )
    # The admin's policy denies this; the read-only key has no policy, only its read-only rule.
    assert ro.describe_eip_addresses(vpc_models.DescribeEipAddressesRequest(region_id=REGION))


def test_the_policy_survives_a_saved_world(world: World) -> None:
    saved = CloudState.from_dict(world.cloud.to_dict())
    assert saved.access_keys[world.topology.access_key_id].policy == POLICY
    assert saved.access_keys[world.topology.readonly_access_key_id].policy is None
