"""Step 03's EIP choice by UsingStatus (pure) and the IpLists parsing it relies on."""

from __future__ import annotations

import pytest

from egress_lib.errors import PreconditionFailed
from egress_lib.resources import NatGateway
from egress_lib.steps._snat_eip import choose

NAT = "ngw-1"
A, B, C = "47.96.0.11", "47.96.0.12", "47.96.0.13"


@pytest.mark.parametrize(
    ("statuses", "chosen", "why"),
    [
        ({A: "Idle", B: "UsedBySnatTable"}, B, "already used by SNAT entries"),
        ({A: "Idle", B: "UsedByForwardSnatTable"}, B, "SNAT and port-mapping DNAT"),
        ({A: "UsedByForwardSnatTable", B: "UsedBySnatTable"}, B, "already used by SNAT"),
        ({A: "UsedByForwardTable", B: "Idle"}, B, "idle"),
        ({A: "Idle", B: "Idle"}, A, "idle"),  # equals: the API's order
        ({}, A, "no UsingStatus reported"),
        ({A: "UsedByForwardTable"}, B, "no UsingStatus reported"),
    ],
)
def test_null_snat_ip_is_chosen_by_using_status(
    statuses: dict[str, str], chosen: str, why: str
) -> None:
    got = choose(NAT, [A, B], statuses, None)
    assert got.ip == chosen
    assert got.reason.startswith("chosen by UsingStatus: ") and why in got.reason


def test_an_eip_used_by_dnat_only_is_never_chosen_by_itself() -> None:
    with pytest.raises(PreconditionFailed) as info:
        choose(NAT, [A, B], {A: "UsedByForwardTable", B: "UsedByForwardTable"}, None)
    assert "used by DNAT entries only" in str(info.value) and "snat.snat_ip" in str(info.value)


def test_an_explicit_snat_ip_wins_and_is_explained() -> None:
    got = choose(NAT, [A, B, C], {A: "UsedBySnatTable", C: "UsedByForwardTable"}, C)
    assert got.ip == C and got.using_status == "UsedByForwardTable"
    assert got.reason.startswith("snat.snat_ip, used by DNAT entries only")
    assert "Forbidden.IpUsedInForwardTable" in got.reason


def test_a_foreign_snat_ip_and_no_eip_fail() -> None:
    with pytest.raises(PreconditionFailed, match=r"not an EIP of NAT gateway ngw-1 .*47.96.0.11"):
        choose(NAT, [A], {A: "Idle"}, "1.2.3.4")
    with pytest.raises(PreconditionFailed, match="has no EIP bound"):
        choose(NAT, [], {}, None)


def test_nat_gateway_reads_ip_lists() -> None:
    row = {
        "NatGatewayId": NAT,
        "IpLists": {
            "IpList": [
                {"IpAddress": A, "AllocationId": "eip-1", "UsingStatus": "UsedBySnatTable"},
                {"IpAddress": B, "AllocationId": "eip-2"},
            ]
        },
    }
    nat = NatGateway.from_wire(row)
    assert [(i.ip_address, i.allocation_id, i.using_status) for i in nat.ip_list] == [
        (A, "eip-1", "UsedBySnatTable"),
        (B, "eip-2", ""),
    ]
    assert NatGateway.from_wire({"NatGatewayId": NAT}).ip_list == ()
