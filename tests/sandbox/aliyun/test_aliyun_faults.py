"""Injected faults: throttling with x-acs-retry-after, server errors, latency, CS rendering."""

from __future__ import annotations

import time

import pytest
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_vpc20160428 import models as vpc_models
from aliyun_helpers import REGION, World


def describe(world: World) -> object:
    return world.vpc().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))


def test_throttling_then_recovery(world: World) -> None:
    world.server.faults.add("DescribeVpcs", "Throttling.User", 400, count=2, retry_after_ms=1500)
    for _ in range(2):
        with pytest.raises(ThrottlingException) as info:
            describe(world)
        e = info.value
        assert (e.code, e.status_code, e.retry_after) == ("Throttling.User", 400, 1500)
        assert "Injected fault." in e.message
    assert world.server.faults.list() == []
    describe(world)  # the fault is used up


def test_server_error_and_client_error_without_retry_after(world: World) -> None:
    faults = world.server.faults
    faults.add(
        "*",
        "ServiceUnavailable",
        503,
        count=1,
        message="The request has failed due to a temporary failure of the server.",
    )
    faults.add("DescribeVpcs", "Throttling.User", 400, count=1)
    with pytest.raises(ServerException) as info:
        describe(world)
    assert (info.value.code, info.value.status_code) == ("ServiceUnavailable", 503)
    with pytest.raises(ClientException) as client_info:
        describe(world)
    assert not isinstance(client_info.value, ThrottlingException)
    assert client_info.value.code == "Throttling.User"


def test_latency_only_fault(world: World) -> None:
    world.server.faults.add("DescribeVpcs", "", 0, count=1, latency_ms=200)
    started = time.monotonic()
    describe(world)
    assert time.monotonic() - started >= 0.2


def test_cs_fault_renders_lower_case(world: World) -> None:
    world.server.faults.add(
        "DescribeClusterDetail", "ErrorQueryCluster", 500, count=1, message="boom"
    )
    with pytest.raises(ServerException) as info:
        world.cs().describe_cluster_detail(world.cluster_id)
    assert info.value.code == "ErrorQueryCluster"
    assert "requestId" in info.value.data


def test_registry_rules(world: World) -> None:
    faults = world.server.faults
    with pytest.raises(ValueError):
        faults.add("DescribeVpcs", "X", 400, count=0)
    faults.add("DescribeVpcs", "X", 400, count=3)
    assert faults.list()[0]["count"] == 3
    faults.clear()
    assert faults.list() == []
