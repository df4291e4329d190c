"""SLB describes over load balancers the MSE controller inserted with the slb model functions."""

from __future__ import annotations

import pytest
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyun_helpers import REGION, World

from egress_sandbox.aliyun.slb import models as slb


@pytest.fixture
def lbs(world: World) -> list[str]:
    with world.lock:
        private = world.gateway_lb(
            "mse-private",
            "127.16.2.10",
            tags={"ack.aliyun.com": world.cluster_id, "role": "private"},
            listeners=((80, "tcp"), (443, "tcp")),
        )
        public = world.gateway_lb(
            "mse-public", "47.96.9.9", address_type="internet", tags={"role": "public"}
        )
    return [private.load_balancer_id, public.load_balancer_id]


def test_describe_load_balancers_filters(world: World, lbs: list[str]) -> None:
    client = world.slb()

    def names(**kw: object) -> list[str]:
        body = client.describe_load_balancers(
            slb_models.DescribeLoadBalancersRequest(region_id=REGION, **kw)
        ).body
        return [lb.load_balancer_name for lb in body.load_balancers.load_balancer]

    assert names() == ["mse-private", "mse-public"]
    assert names(address_type="intranet") == ["mse-private"]
    assert names(address="47.96.9.9") == ["mse-public"]
    assert names(load_balancer_id=",".join(reversed(lbs))) == ["mse-private", "mse-public"]
    assert names(v_switch_id=world.vswitch("nodes").vswitch_id) == []
    tag = slb_models.DescribeLoadBalancersRequestTag(key="role", value="private")
    assert names(tag=[tag]) == ["mse-private"]
    body = client.describe_load_balancers(
        slb_models.DescribeLoadBalancersRequest(region_id=REGION, load_balancer_name="mse-private")
    ).body
    lb = body.load_balancers.load_balancer[0]
    assert (lb.address, lb.vpc_id, lb.load_balancer_status, lb.network_type) == (
        "127.16.2.10",
        world.vswitch("gateway").vpc_id,
        "active",
        "vpc",
    )
    assert {(t.tag_key, t.tag_value) for t in lb.tags.tag} >= {("role", "private")}


def test_describe_load_balancer_attribute(world: World, lbs: list[str]) -> None:
    client = world.slb()
    body = client.describe_load_balancer_attribute(
        slb_models.DescribeLoadBalancerAttributeRequest(load_balancer_id=lbs[0])
    ).body
    assert body.listener_ports.listener_port == [80, 443]
    assert [
        (p.listener_port, p.listener_protocol)
        for p in body.listener_ports_and_protocol.listener_port_and_protocol
    ] == [(80, "tcp"), (443, "tcp")]
    with pytest.raises(ClientException) as info:
        client.describe_load_balancer_attribute(
            slb_models.DescribeLoadBalancerAttributeRequest(load_balancer_id="lb-nothere")
        )
    assert (info.value.code, info.value.status_code) == ("InvalidLoadBalancerId.NotFound", 404)
    assert info.value.data["HostId"] == "slb.aliyuncs.com"
    with world.lock:
        assert slb.delete_load_balancer(world.cloud, lbs[0]) is not None
        assert slb.delete_load_balancer(world.cloud, lbs[0]) is None


def test_intranet_address_must_be_a_free_address_of_the_vswitch(world: World) -> None:
    with world.lock:
        with pytest.raises(ValueError, match="not in vSwitch"):
            world.gateway_lb("outside", "127.16.1.10")  # the node vSwitch's block
        world.gateway_lb("first", "127.16.2.10")
        with pytest.raises(ValueError, match="already used"):
            world.gateway_lb("second", "127.16.2.10")
