"""MSE ListGateway/ListGatewaySlb and RAM GetRole, through the real SDKs (ACS3-signed).

Gateways are made with the functions the emulated MSE controller calls, as test_aliyun_slb
makes CLBs, so the answers are what the controller's own state looks like to MSE's API.
"""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_mse20190531 import models as mse_models
from alibabacloud_mse20190531.client import Client as MseClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyun_helpers import World, assert_pop_error, fast_transitions

from egress_sandbox.aliyun.ram.models import MSE_ROLES
from egress_sandbox.mse import gateway as gwmod
from egress_sandbox.topology import Topology


def _provision(world: World, name: str, *, public: bool = False) -> Any:
    network: dict[str, Any] = {
        "vSwitches": [world.vswitch("gateway").vswitch_id],
        "privateSLBSpec": "slb.s2.small",
    }
    if public:
        network["publicSLBSpec"] = "slb.s2.small"
    spec = {"name": name, "common": {"instance": {"spec": "2c4g"}, "network": network}}
    with world.lock:
        gw, _ = gwmod.provision(
            world.cloud,
            world.ids,
            config_name=f"cfg-{name}",
            spec=spec,
            cluster_id=world.cluster_id,
        )
    return gw


def _list(client: MseClient, **filters: str) -> Any:
    params = mse_models.ListGatewayRequestFilterParams(**filters)
    return client.list_gateway(mse_models.ListGatewayRequest(filter_params=params)).body


def test_list_gateway_filters_by_name_and_vpc(world: World) -> None:
    egress = _provision(world, "egress-gateway")
    _provision(world, "other")
    client = MseClient(world.config())
    vpc_id = world.vswitch("gateway").vpc_id
    body = _list(client, name="egress-gateway", vpc=vpc_id)
    assert (body.success, body.code, body.data.total_size) == (True, 200, 1)
    (found,) = body.data.result
    assert (found.gateway_unique_id, found.name, found.vpc_id) == (
        egress.gateway_id,
        "egress-gateway",
        vpc_id,
    )
    assert (found.status, found.spec, found.internet_slb) == (2, "MSE_GTW_2_4_200_c", [])
    assert [s.type for s in found.slb] == ["PRIVATE_NET"]
    assert _list(client, vpc="vpc-elsewhere").data.result == []
    assert _list(client).data.total_size == 2
    # Name matches a part of the name, so a client must compare the name itself.
    assert {g.name for g in _list(client, name="e").data.result} == {"egress-gateway", "other"}


def test_list_gateway_slb_reports_each_slb_with_its_type(world: World) -> None:
    gw = _provision(world, "both", public=True)
    client = MseClient(world.config())
    body = client.list_gateway_slb(
        mse_models.ListGatewaySlbRequest(gateway_unique_id=gw.gateway_id)
    ).body
    by_type = {s.type: s for s in body.data}
    assert set(by_type) == {"PRIVATE_NET", "PUB_NET"}
    with world.lock:
        private = world.cloud.load_balancers[gw.private_slb_id]
        public = world.cloud.load_balancers[gw.public_slb_id]
    assert (by_type["PRIVATE_NET"].slb_id, by_type["PRIVATE_NET"].slb_ip) == (
        private.load_balancer_id,
        private.address,
    )
    assert (by_type["PUB_NET"].slb_id, by_type["PUB_NET"].slb_ip) == (
        public.load_balancer_id,
        public.address,
    )
    listed = _list(client, name="both").data.result[0]
    assert [s.slb_id for s in listed.internet_slb] == [public.load_balancer_id]


def test_list_gateway_slb_errors(world: World) -> None:
    client = MseClient(world.config())
    with pytest.raises(ClientException) as info:
        client.list_gateway_slb(mse_models.ListGatewaySlbRequest(gateway_unique_id="gw-nothere"))
    assert_pop_error(info.value, "NotFound.Gateway", 404)
    assert info.value.data["HostId"] == "mse.cn-hangzhou.aliyuncs.com"
    with pytest.raises(ClientException) as info:
        client.list_gateway_slb(mse_models.ListGatewaySlbRequest())
    assert_pop_error(info.value, "MissingGatewayUniqueId", 400)


def test_mse_calls_are_audited_as_reads(world: World) -> None:
    MseClient(world.config()).list_gateway(mse_models.ListGatewayRequest())
    (record,) = [r for r in world.audit.records() if r.api == "mse"]
    assert (record.action, record.mutating, record.status) == ("ListGateway", False, 200)


def test_get_role_finds_both_mse_roles(world: World) -> None:
    client = RamClient(world.config())
    for name in MSE_ROLES:
        role = client.get_role(ram_models.GetRoleRequest(role_name=name)).body.role
        assert role.role_name == name
        assert role.arn == f"acs:ram::{world.topology.account_id}:role/{name.lower()}"
    slr = client.get_role(ram_models.GetRoleRequest(role_name="aliyunserviceroleformse"))
    assert slr.body.role.is_service_linked_role is True


class TestWithoutRoles:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(transitions=fast_transitions(), mse_roles=False)

    def test_get_role_is_entity_not_exist(self, world: World) -> None:
        client = RamClient(world.config())
        with pytest.raises(ClientException) as info:
            client.get_role(ram_models.GetRoleRequest(role_name="AliyunCSManagedMseRole"))
        assert_pop_error(info.value, "EntityNotExist.Role", 404)
        assert "AliyunCSManagedMseRole" in info.value.data["Message"]
        assert info.value.data["HostId"] == "ram.aliyuncs.com"


def test_docs_table_matches_the_product_catalogue() -> None:
    import re
    from pathlib import Path

    from egress_sandbox.aliyun.common.product_errors import PRODUCT_CATALOGUE

    doc = Path(__file__).resolve().parents[3] / "docs" / "aliyun-emulation.md"
    rows = re.findall(r"^\| (\w+) \| `([^`]+)` \| (\d{3}) \|", doc.read_text(), flags=re.MULTILINE)
    assert {code: (spec.scope, spec.status) for code, spec in PRODUCT_CATALOGUE.items()} == {
        code: (scope, int(status)) for scope, code, status in rows
    }


def test_filter_params_must_be_a_json_object(world: World) -> None:
    from aliyun_helpers import rpc_call

    with pytest.raises(ClientException) as info:
        rpc_call(world, "ListGateway", {"FilterParams": "[1]"}, version="2019-05-31")
    assert_pop_error(info.value, "IllegalRequest", 400)


def test_a_world_saved_before_roles_were_modelled_keeps_them(world: World) -> None:
    from egress_sandbox.aliyun.ram.models import missing_mse_roles, restore_legacy_roles
    from egress_sandbox.aliyun.records import CloudState

    with world.lock:
        saved = world.cloud.to_dict()
    del saved["ram_roles"]
    restored = CloudState.from_dict(saved)
    assert missing_mse_roles(restored) == list(MSE_ROLES)
    restore_legacy_roles(restored, saved)
    assert missing_mse_roles(restored) == []
