"""Authentication acceptance, each point through the real VPC/SLB/CS SDK clients.

The SDK stamps every request with the current time and a fresh nonce; to send a stale date or a
reused nonce *through the SDK* the tests replace ``Utils.get_timestamp`` / ``Utils.get_nonce``,
the two functions the SDK's signer calls (tea-openapi 0.4.x).
"""

from __future__ import annotations

import datetime as dt

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, assert_cs_error, assert_pop_error

from egress_sandbox.aliyun import sts
from egress_sandbox.aliyun.records import AVAILABLE_ADDONS


def describe_vpcs(world: World, **config: str) -> object:
    return world.vpc(**config).describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))


def test_unknown_access_key_is_404_on_every_product(world: World) -> None:
    unknown = {"access_key_id": "LTAInotakey000000", "access_key_secret": "x"}
    calls = [
        lambda: describe_vpcs(world, **unknown),
        lambda: world.slb(**unknown).describe_load_balancers(
            slb_models.DescribeLoadBalancersRequest(region_id=REGION)
        ),
        lambda: world.cs(**unknown).describe_cluster_detail(world.cluster_id),
    ]
    for call in calls:
        with pytest.raises(ClientException) as info:
            call()
        # Authentication errors come from the gateway, in PascalCase even on CS.
        assert_pop_error(info.value, "InvalidAccessKeyId.NotFound", 404)
        assert "Specified access key is not found." in info.value.message


def test_wrong_secret_is_signature_does_not_match(world: World) -> None:
    with pytest.raises(ClientException) as info:
        describe_vpcs(world, access_key_secret="not-the-secret")
    assert_pop_error(info.value, "SignatureDoesNotMatch", 400)
    assert "server string to sign is:ACS3-HMAC-SHA256\n" in info.value.data["Message"]
    assert world.topology.access_key_secret not in info.value.data["Message"]


@pytest.mark.parametrize("minutes", [16, -16])
def test_date_outside_15_minutes_is_expired(
    world: World, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)
    monkeypatch.setattr(
        Utils, "get_timestamp", staticmethod(lambda: at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    with pytest.raises(ClientException) as info:
        describe_vpcs(world)
    assert_pop_error(info.value, "InvalidTimeStamp.Expired", 400)


def test_date_within_15_minutes_is_accepted(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=14)
    monkeypatch.setattr(
        Utils, "get_timestamp", staticmethod(lambda: at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    assert describe_vpcs(world).body.total_count == 1  # type: ignore[attr-defined]


def test_reused_nonce_is_rejected(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        Utils, "get_nonce", staticmethod(lambda: "0123456789abcdef0123456789abcdef")
    )
    assert describe_vpcs(world).body.total_count == 1  # type: ignore[attr-defined]
    with pytest.raises(ClientException) as info:
        describe_vpcs(world)
    assert_pop_error(info.value, "SignatureNonceUsed", 400)
    # A request rejected for its signature does not burn the nonce it carried.
    monkeypatch.setattr(
        Utils, "get_nonce", staticmethod(lambda: "fedcba9876543210fedcba9876543210")
    )
    with pytest.raises(ClientException):
        describe_vpcs(world, access_key_secret="wrong")
    assert describe_vpcs(world).body.total_count == 1  # type: ignore[attr-defined]


def test_sts_token_signs_vpc_slb_and_cs(world: World) -> None:
    with world.lock:
        token = sts.mint_sts_token(world.cloud, world.ids, principal="role/egress-runbook")
    creds = {
        "access_key_id": token.access_key_id,
        "access_key_secret": token.access_key_secret,
        "security_token": token.security_token,
    }
    assert describe_vpcs(world, **creds).body.total_count == 1  # type: ignore[attr-defined]
    slb = world.slb(**creds).describe_load_balancers(
        slb_models.DescribeLoadBalancersRequest(region_id=REGION)
    )
    assert slb.status_code == 200
    assert world.cs(**creds).describe_cluster_detail(world.cluster_id).body.state == "running"
    assert {r.principal for r in world.audit.records()} == {"role/egress-runbook"}


def test_restricted_key_gets_forbidden_ram_on_writes_only(world: World) -> None:
    ro = {
        "access_key_id": world.topology.readonly_access_key_id,
        "access_key_secret": world.topology.readonly_access_key_secret,
    }
    assert describe_vpcs(world, **ro).body.total_count == 1  # type: ignore[attr-defined]
    with pytest.raises(ClientException) as info:
        world.vpc(**ro).delete_snat_entry(
            vpc_models.DeleteSnatEntryRequest(
                region_id=REGION, snat_table_id=world.nat.snat_table_id, snat_entry_id="snat-x"
            )
        )
    e = info.value
    assert_pop_error(e, "Forbidden.RAM", 403, extra=frozenset({"AccessDeniedDetail"}))
    assert e.access_denied_detail["AuthAction"] == "vpc:DeleteSnatEntry"
    assert e.access_denied_detail["NoPermissionType"] == "ImplicitDeny"

    cs = world.cs(**ro)
    request = cs_models.UnInstallClusterAddonsRequest(
        addons=[cs_models.UnInstallClusterAddonsRequestAddons(name="mse-ingress-controller")]
    )
    with pytest.raises(ClientException) as info:
        cs.un_install_cluster_addons(world.cluster_id, request)
    # Past routing, CS renders its own errors, RAM denials included [UNCONFIRMED layer].
    assert (info.value.code, info.value.status_code) == ("Forbidden.RAM", 403)
    assert info.value.access_denied_detail["AuthAction"] == "cs:UnInstallClusterAddons"
    assert "requestId" in info.value.data
    assert (
        cs.describe_cluster_addons_version(world.cluster_id).body["mse-ingress-controller"][
            "next_version"
        ]
        == AVAILABLE_ADDONS["mse-ingress-controller"]
    )


def test_cs_business_error_shape(world: World) -> None:
    with pytest.raises(ClientException) as info:
        world.cs().describe_cluster_detail("c0000000000000000000000000000000f")
    assert_cs_error(info.value, "ErrorClusterNotFound", 404)
