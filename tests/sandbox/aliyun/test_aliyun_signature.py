"""ACS3 signature verification: the reference's worked example, hand-signed requests, replay."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World, rpc_call, rpc_headers, send, sign_acs3, utc_date

from egress_sandbox.aliyun import sts
from egress_sandbox.aliyun.common import signature as sig


def test_reference_worked_example_verifies() -> None:
    # Reference D4: the probe's request and its signature with secret "testSecret".
    headers = {
        "accept": ["application/json"],
        "host": ["127.0.0.1:46867"],
        "user-agent": ["AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"],
        "x-acs-action": ["DescribeNatGateways"],
        "x-acs-content-sha256": [sig.EMPTY_SHA256],
        "x-acs-credentials-provider": ["static_ak"],
        "x-acs-date": ["2026-11-25T17:01:55Z"],
        "x-acs-signature-nonce": ["047ddcadd57ecbde16922afc06c48608"],
        "x-acs-version": ["2016-04-28"],
    }
    canonical = sig.canonical_request(
        method="POST",
        raw_path="/",
        raw_query="PageNumber=1&PageSize=50&RegionId=cn-hangzhou&Tag.1.Key=k+a"
        "&Tag.1.Value=v%2F1~&VpcId=vpc-bp1xxx",
        headers=headers,
        signed_headers=sorted(headers),
        hashed_payload=sig.EMPTY_SHA256,
    )
    to_sign = sig.string_to_sign(canonical)
    assert to_sign == (
        "ACS3-HMAC-SHA256\n063742a6469a005f8a9aac7cf7a230cffc60601547eee226663d35955a34f725"
    )
    assert sig.acs3_signature("testSecret", to_sign) == (
        "fb55536ed3a5369125a4b407a993a1197d3b3e1ccf5cabf8b61fe26602a221a6"
    )


def _hand_signed(world: World, query: dict[str, str], **overrides: str) -> dict[str, str]:
    return sign_acs3(
        method="POST",
        host=world.server.endpoint,
        path="/",
        query=query,
        headers=rpc_headers("DescribeVpcs", **overrides),
        body=b"",
        access_key_id=world.topology.access_key_id,
        secret=world.topology.access_key_secret,
    )


def test_hand_signed_request_is_accepted_and_one_changed_byte_is_not(world: World) -> None:
    query = {"RegionId": REGION, "VpcName": "ack egress/vpc~"}
    status, body = send(world, "POST", "/", query, _hand_signed(world, query))
    assert status == 200, body
    assert body["TotalCount"] == 0 and body["Vpcs"] == {"Vpc": []}

    query = {"RegionId": REGION, "VpcName": world.topology.vpc_name}
    headers = _hand_signed(world, query)
    tampered = {"RegionId": REGION, "VpcName": world.topology.vpc_name[:-1] + "X"}
    status, body = send(world, "POST", "/", tampered, headers)
    assert status == 400
    assert body["Code"] == "SignatureDoesNotMatch"
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert world.topology.access_key_secret not in body["Message"]
    # The untampered request still goes through (its nonce was not burnt by the forgery).
    status, body = send(world, "POST", "/", query, headers)
    assert status == 200 and body["Vpcs"]["Vpc"][0]["VpcName"] == world.topology.vpc_name


def test_reused_nonce_is_rejected(world: World) -> None:
    query = {"RegionId": REGION}
    nonce = uuid.uuid4().hex
    assert (
        send(
            world,
            "POST",
            "/",
            query,
            _hand_signed(world, query, **{"x-acs-signature-nonce": nonce}),
        )[0]
        == 200
    )
    status, body = send(
        world, "POST", "/", query, _hand_signed(world, query, **{"x-acs-signature-nonce": nonce})
    )
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_stale_or_future_date_is_rejected(world: World, offset: int) -> None:
    query = {"RegionId": REGION}
    headers = _hand_signed(world, query, **{"x-acs-date": utc_date(offset)})
    status, body = send(world, "POST", "/", query, headers)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_malformed_date_and_missing_authorization(world: World) -> None:
    query = {"RegionId": REGION}
    headers = _hand_signed(world, query, **{"x-acs-date": "2026-11-25 17:01:55"})
    assert send(world, "POST", "/", query, headers)[1]["Code"] == "InvalidTimeStamp.Format"
    headers = _hand_signed(world, query)
    del headers["authorization"]
    assert send(world, "POST", "/", query, headers)[1]["Code"] == "IncompleteSignature"


def test_body_must_match_content_sha256(world: World) -> None:
    query = {"RegionId": REGION}
    headers = _hand_signed(world, query)  # signed for an empty body
    status, body = send(world, "POST", "/", query, headers, body=b"RegionId=cn-beijing")
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert hashlib.sha256(b"").hexdigest() == headers["x-acs-content-sha256"]


def test_unsigned_acs_header_is_incomplete(world: World) -> None:
    query = {"RegionId": REGION}
    headers = _hand_signed(world, query)
    headers["x-acs-extra"] = "sneaked in after signing"
    status, body = send(world, "POST", "/", query, headers)
    assert (status, body["Code"]) == (400, "IncompleteSignature")


def test_sdk_unknown_access_key_and_wrong_secret(world: World) -> None:
    req = vpc_models.DescribeVpcsRequest(region_id=REGION)
    with pytest.raises(ClientException) as info:
        world.vpc(access_key_id="LTAInotakey000000", access_key_secret="x").describe_vpcs(req)
    assert (info.value.code, info.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    with pytest.raises(ClientException) as info:
        world.vpc(access_key_secret="wrong-secret").describe_vpcs(req)
    assert (info.value.code, info.value.status_code) == ("SignatureDoesNotMatch", 400)


def _call(world: World, action: str, version: str) -> dict[str, object]:
    return rpc_call(world, action, {"RegionId": REGION}, version=version)


def test_unknown_action_and_version(world: World) -> None:
    with pytest.raises(ClientException) as info:
        _call(world, "DescribeNothing", "2016-04-28")
    assert (info.value.code, info.value.status_code) == ("InvalidAction.NotFound", 404)
    with pytest.raises(ClientException) as info:
        _call(world, "DescribeVpcs", "2099-01-01")
    assert (info.value.code, info.value.status_code) == ("InvalidVersion", 400)
    # A generic call to a known action works through the same path.
    assert _call(world, "DescribeVpcs", "2016-04-28")["body"]["TotalCount"] == 1  # type: ignore[index]


def test_legacy_v2_signature(world: World) -> None:
    client = world.vpc(signature_algorithm="v2")
    body = client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body
    assert body.total_count == 1
    with pytest.raises(ClientException) as info:
        world.vpc(signature_algorithm="v2", access_key_secret="nope").describe_vpcs(
            vpc_models.DescribeVpcsRequest(region_id=REGION)
        )
    assert info.value.code == "SignatureDoesNotMatch"


def test_bearer_token(world: World) -> None:
    with world.lock:
        token = sts.mint_bearer_token(world.cloud, world.ids, principal="bearer-user")
    client = world.vpc(access_key_id="", access_key_secret="", bearer_token=token.token)
    assert (
        client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body.total_count == 1
    )
    bad = world.vpc(access_key_id="", access_key_secret="", bearer_token="not-a-token")
    with pytest.raises(ClientException) as info:
        bad.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert info.value.code == "InvalidBearerToken.NotFound"
