"""SNAT entries through the real SDK: lifecycle, rules, ClientToken, DryRun, manual transitions."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from aliyun_helpers import REGION, World, fast_transitions

from egress_sandbox.topology import Topology


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def eip_ip(world: World) -> str:
    return world.cloud.eips_of_nat(world.nat.nat_gateway_id)[0].ip_address


def create(world: World, client: VpcClient | None = None, **kw: object) -> str:
    args: dict[str, object] = {
        "region_id": REGION,
        "snat_table_id": world.nat.snat_table_id,
        "snat_ip": eip_ip(world),
        "source_vswitch_id": world.vswitch("gateway").vswitch_id,
    }
    args.update(kw)
    request = vpc_models.CreateSnatEntryRequest(**{k: v for k, v in args.items() if v is not None})
    return str((client or world.vpc()).create_snat_entry(request).body.snat_entry_id)


def entries(
    world: World,
) -> list[vpc_models.DescribeSnatTableEntriesResponseBodySnatTableEntriesSnatTableEntry]:
    body = (
        world.vpc()
        .describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id=REGION, snat_table_id=world.nat.snat_table_id
            )
        )
        .body
    )
    return list(body.snat_table_entries.snat_table_entry)


def status(world: World, entry_id: str) -> str | None:
    return next((e.status for e in entries(world) if e.snat_entry_id == entry_id), None)


def delete(world: World, entry_id: str, **kw: object) -> None:
    world.vpc().delete_snat_entry(
        vpc_models.DeleteSnatEntryRequest(
            region_id=REGION, snat_table_id=world.nat.snat_table_id, snat_entry_id=entry_id, **kw
        )
    )


def error_of(call: Callable[[], object]) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    return info.value


def test_create_pending_then_available_then_delete(world: World) -> None:
    entry_id = create(world, snat_entry_name="gateway-egress")
    assert entry_id.startswith("snat-")
    (entry,) = entries(world)
    gw = world.vswitch("gateway")
    assert (entry.status, entry.source_vswitch_id, entry.source_cidr) == (
        "Pending",
        gw.vswitch_id,
        gw.cidr_block,
    )
    assert world.cloud.snat_egress_ip(gw.vswitch_id) is None  # not yet Available
    wait_for(lambda: status(world, entry_id) == "Available")
    assert world.cloud.snat_egress_ip(gw.vswitch_id) == eip_ip(world)
    nat = (
        world.vpc()
        .describe_nat_gateways(vpc_models.DescribeNatGatewaysRequest(region_id=REGION))
        .body
    )
    ip = nat.nat_gateways.nat_gateway[0].ip_lists.ip_list[0]
    assert (ip.using_status, ip.snat_entry_enabled) == ("UsedBySnatTable", True)

    delete(world, entry_id)
    assert status(world, entry_id) == "Deleting"
    wait_for(lambda: status(world, entry_id) is None)
    e = error_of(lambda: delete(world, entry_id))
    assert (e.code, e.status_code) == ("InvalidSnatEntryId.NotFound", 404)


def test_nothing_changes_while_an_entry_is_pending(world: World) -> None:
    first = create(world)
    wait_for(lambda: status(world, first) == "Available")
    world.topology.transitions.snat_entry.seconds = 30  # keep the next one Pending
    second = create(world, source_vswitch_id=world.vswitch("nodes").vswitch_id)
    for call in (
        lambda: delete(world, first),
        lambda: delete(world, second),
        lambda: world.vpc().modify_snat_entry(
            vpc_models.ModifySnatEntryRequest(
                region_id=REGION,
                snat_table_id=world.nat.snat_table_id,
                snat_entry_id=first,
                snat_entry_name="renamed",
            )
        ),
    ):
        e = error_of(call)
        assert (e.code, e.status_code) == ("IncorretSnatEntryStatus", 400)


def test_modify_goes_pending_then_available(world: World) -> None:
    entry_id = create(world)
    wait_for(lambda: status(world, entry_id) == "Available")
    world.vpc().modify_snat_entry(
        vpc_models.ModifySnatEntryRequest(
            region_id=REGION,
            snat_table_id=world.nat.snat_table_id,
            snat_entry_id=entry_id,
            snat_entry_name="renamed",
        )
    )
    assert status(world, entry_id) == "Pending"
    wait_for(lambda: status(world, entry_id) == "Available")
    assert entries(world)[0].snat_entry_name == "renamed"


def test_rules(world: World) -> None:
    gw = world.vswitch("gateway")
    nodes = world.vswitch("nodes").vswitch_id
    entry_id = create(world)
    wait_for(lambda: status(world, entry_id) == "Available")
    cases: list[tuple[dict[str, object], str, int]] = [
        ({}, "Forbidden.SourceVSwitchId.Duplicated", 400),
        (
            {"source_vswitch_id": None, "source_cidr": gw.cidr_block},
            "Forbidden.SourceVSwitchId.Duplicated",
            400,
        ),
        (
            {"source_vswitch_id": None, "source_cidr": "127.16.0.0/16"},
            "OperationUnsupported.CidrConflict",
            400,
        ),
        (
            {"source_vswitch_id": None, "source_cidr": "127.16.2.128/25"},
            "OperationUnsupported.CidrConflict",
            400,
        ),
        ({"source_vswitch_id": "vsw-bp1doesnotexist0000"}, "InvalidVSwitchId.NotFound", 404),
        ({"source_cidr": "10.0.0.0/24"}, "INVALID_PARAMETER", 400),
        ({"source_vswitch_id": None}, "INVALID_PARAMETER", 400),
        ({"snat_ip": "47.96.200.1", "source_vswitch_id": nodes}, "InvalidSnatIp.NotFound", 404),
        ({"snat_ip": "not-an-ip"}, "InvalidSnatIp.Malformed", 400),
        ({"snat_ip": None}, "MissingSnatIp", 400),
        ({"snat_table_id": "stb-bp1doesnotexist0000"}, "InvalidSnatTableId.NotFound", 404),
        ({"snat_table_id": None}, "MissingSnatTableId", 400),
        ({"region_id": None}, "MissingRegionId", 400),
        ({"region_id": "cn-nowhere-1"}, "InvalidRegionId.NotFound", 404),
        ({"snat_entry_name": "x"}, "InvalidParameter.Name.Malformed", 400),
        ({"snat_entry_name": "a" * 129}, "InvalidParameter.Name.Malformed", 400),
    ]
    for kw, code, http in cases:
        e = error_of(lambda kw=kw: create(world, **kw))  # type: ignore[misc]
        assert (kw, e.code, e.status_code) == (kw, code, http)
    assert [e.snat_entry_id for e in entries(world)] == [entry_id]


def test_client_token_is_idempotent(world: World) -> None:
    first = create(world, client_token="token-1")
    again = create(world, client_token="token-1")
    assert first == again
    assert len(entries(world)) == 1
    e = error_of(lambda: create(world, client_token="token-1", snat_entry_name="different"))
    assert (e.code, e.status_code) == ("IdempotentParameterMismatch", 400)
    wait_for(lambda: status(world, first) == "Available")
    delete(world, first, client_token="del-1")
    delete(world, first, client_token="del-1")  # a retried delete succeeds, nothing more happens


def test_dry_run(world: World) -> None:
    e = error_of(lambda: create(world, dry_run=True))
    assert (e.code, e.status_code) == ("DryRunOperation", 400)
    assert entries(world) == []
    e = error_of(lambda: create(world, dry_run=True, snat_table_id=None))
    assert e.code == "MissingSnatTableId"  # validation still runs first


class TestManual:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(transitions=fast_transitions("manual"))

    def test_entries_move_only_when_advanced(self, world: World) -> None:
        entry_id = create(world)
        time.sleep(0.1)
        assert status(world, entry_id) == "Pending"
        assert world.server.lifecycle.waiting() == {
            entry_id: [f"snat {entry_id} available after create"]
        }
        assert world.server.vpc.advance_snat_entry(entry_id) is True
        assert status(world, entry_id) == "Available"
        assert world.server.vpc.advance_snat_entry(entry_id) is False
        delete(world, entry_id)
        assert status(world, entry_id) == "Deleting"
        assert world.server.advance(entry_id) is True
        assert status(world, entry_id) is None


class TestImmediate:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(transitions=fast_transitions("immediate"))

    def test_available_at_once(self, world: World) -> None:
        entry_id = create(world)
        assert status(world, entry_id) == "Available"
