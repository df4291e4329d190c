"""Who may do what: the read-only AccessKey (RAM denial), STS credentials, and the audit trail.

The secrets are random, never the seed's: a secret every sandbox shares is no secret.
"""

from __future__ import annotations

import json

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World

from egress_sandbox.aliyun import sts
from egress_sandbox.aliyun.records import AVAILABLE_ADDONS, CloudState
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.topology import Topology, build_cloud

# The AccessKey secrets every sandbox had before they were random (topology defaults).
PUBLISHED = {
    "LTSANDBOXADMIN000000000": "sandbox-admin-secret-0000000000",
    "LTSANDBOXREADONLY000000": "sandbox-readonly-secret-000000",
}


def readonly(world: World) -> dict[str, str]:
    return {
        "access_key_id": world.topology.readonly_access_key_id,
        "access_key_secret": world.topology.readonly_access_key_secret,
    }


def create_request(world: World, **kw: object) -> vpc_models.CreateSnatEntryRequest:
    return vpc_models.CreateSnatEntryRequest(
        region_id=REGION,
        snat_table_id=world.nat.snat_table_id,
        snat_ip=world.cloud.eips_of_nat(world.nat.nat_gateway_id)[0].ip_address,
        source_vswitch_id=world.vswitch("gateway").vswitch_id,
        **kw,
    )


def test_read_only_key_reads_but_cannot_write(world: World) -> None:
    client = world.vpc(**readonly(world))
    assert (
        client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body.total_count == 1
    )
    for request in (create_request(world), create_request(world, dry_run=True)):
        with pytest.raises(ClientException) as info:
            client.create_snat_entry(request)
        e = info.value
        assert (e.code, e.status_code) == ("Forbidden.RAM", 403)
        detail = e.access_denied_detail
        assert set(detail) == {
            "PolicyType",
            "AuthPrincipalOwnerId",
            "EncodedDiagnosticMessage",
            "AuthPrincipalType",
            "AuthPrincipalDisplayName",
            "NoPermissionType",
            "AuthAction",
        }
        assert detail["AuthAction"] == "vpc:CreateSnatEntry"
        assert detail["AuthPrincipalDisplayName"] == "sandbox-readonly"
    assert world.cloud.snat_entries == {}

    cs = world.cs(**readonly(world))
    assert cs.describe_cluster_detail(world.cluster_id).body.state == "running"
    body = [
        cs_models.InstallClusterAddonsRequestBody(
            name="mse-ingress-controller", version=AVAILABLE_ADDONS["mse-ingress-controller"]
        )
    ]
    with pytest.raises(ClientException) as info:
        cs.install_cluster_addons(
            world.cluster_id, cs_models.InstallClusterAddonsRequest(body=body)
        )
    assert (info.value.code, info.value.status_code) == ("Forbidden.RAM", 403)
    assert info.value.access_denied_detail["AuthAction"] == "cs:InstallClusterAddons"
    assert world.hooks.calls == []


def test_sts_credentials(world: World) -> None:
    with world.lock:
        token = sts.mint_sts_token(world.cloud, world.ids, principal="role/egress-runbook")
        ro = sts.mint_sts_token(world.cloud, world.ids, principal="role/viewer", read_only=True)
        expired = sts.mint_sts_token(
            world.cloud, world.ids, principal="role/old", duration_seconds=-1
        )
    assert token.access_key_id.startswith("STS.")

    def client(t: sts.StsToken, security_token: str | None = None) -> object:
        return world.vpc(
            access_key_id=t.access_key_id,
            access_key_secret=t.access_key_secret,
            security_token=security_token or t.security_token,
        )

    entry = client(token).create_snat_entry(create_request(world)).body.snat_entry_id  # type: ignore[attr-defined]
    assert entry in world.cloud.snat_entries

    cases = [
        (client(token, security_token="CAISforged"), "InvalidSecurityToken.MisMatch", 400),
        (client(expired), "InvalidSecurityToken.Expired", 400),
    ]
    for c, code, status in cases:
        with pytest.raises(ClientException) as info:
            c.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))  # type: ignore[attr-defined]
        assert (info.value.code, info.value.status_code) == (code, status)
    with pytest.raises(ClientException) as info:
        client(ro).create_snat_entry(create_request(world))  # type: ignore[attr-defined]
    assert info.value.code == "Forbidden.RAM"
    assert info.value.access_denied_detail["AuthPrincipalType"] == "AssumedRoleUser"

    records = world.audit.records()
    assert [(r.principal, r.action, r.status) for r in records] == [
        ("role/egress-runbook", "CreateSnatEntry", 200),
        ("anonymous", "DescribeVpcs", 400),
        ("anonymous", "DescribeVpcs", 400),
        ("role/viewer", "CreateSnatEntry", 403),
    ]


def test_audit_records_every_request_without_secrets(world: World) -> None:
    world.vpc().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))
    with pytest.raises(ClientException):
        world.vpc(access_key_secret="wrong").create_snat_entry(create_request(world))
    world.cs().describe_cluster_detail(world.cluster_id)
    records = world.audit.records()
    assert [
        (r.api, r.principal, r.action, r.mutating, r.status, r.error_code) for r in records
    ] == [
        ("vpc", "sandbox-admin", "DescribeVpcs", False, 200, ""),
        ("vpc", "anonymous", "CreateSnatEntry", True, 400, "SignatureDoesNotMatch"),
        ("cs", "sandbox-admin", "DescribeClusterDetail", False, 200, ""),
    ]
    assert records[2].path == f"/clusters/{world.cluster_id}"
    assert all(r.request_id for r in records)
    dumped = json.dumps([r.__dict__ for r in records])
    assert world.topology.access_key_secret not in dumped


def test_the_once_published_secrets_sign_nothing(world: World) -> None:
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    for key_id, secret in PUBLISHED.items():
        client = world.vpc(access_key_id=key_id, access_key_secret=secret)
        with pytest.raises(ClientException) as info:
            client.describe_vpcs(request)
        assert (info.value.code, info.value.status_code) == ("SignatureDoesNotMatch", 400)
    assert world.vpc().describe_vpcs(request).body.total_count == 1  # its own secret does


def test_access_key_secrets_are_random_unless_named_and_never_dumped() -> None:
    one, two = Topology(), Topology()
    assert one.access_key_secret != two.access_key_secret
    assert one.readonly_access_key_secret != two.readonly_access_key_secret
    assert (one.access_key_id, one.readonly_access_key_id) == tuple(PUBLISHED)  # IDs: no secret
    # A Sandbox gives each fresh home its own, but keeps what a topology names.
    fresh = one.with_fresh_secrets()
    assert fresh.access_key_secret not in (one.access_key_secret, two.access_key_secret)
    pinned = Topology(access_key_secret="P" * 30).with_fresh_secrets()
    assert pinned.access_key_secret == "P" * 30
    cloud = build_cloud(pinned, IdFactory(pinned.seed))
    assert cloud.access_keys[pinned.access_key_id].access_key_secret == "P" * 30
    dumped = json.dumps(pinned.model_dump()) + repr(pinned)
    assert "P" * 30 not in dumped and pinned.readonly_access_key_secret not in dumped


def test_sts_and_bearer_secrets_do_not_come_from_the_seed() -> None:
    minted = []
    for _ in range(2):  # two sandboxes with the same seed
        cloud, ids = CloudState(account_id="1", region_id=REGION), IdFactory(20250108)
        minted.append(
            (
                sts.mint_sts_token(cloud, ids, principal="role/egress-runbook"),
                sts.mint_bearer_token(cloud, ids, principal="bearer-user"),
            )
        )
    (first, first_bearer), (second, second_bearer) = minted
    assert first.access_key_id == second.access_key_id  # an ID: deterministic, as every ID
    assert first.access_key_secret != second.access_key_secret
    assert first.security_token != second.security_token
    assert first_bearer.token != second_bearer.token
