"""Typed records of the Alibaba Cloud resources the steps reason about, parsed once from the wire.

Wire rows are the SDK bodies' ``to_map()`` dicts (CamelCase keys for VPC and SLB). Each record
keeps only what the runbook uses; :mod:`egress_lib.inventory` returns these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _s(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class SnatEntry:
    """One entry of an SNAT table (DescribeSnatTableEntries)."""

    id: str
    table_id: str
    name: str
    source_vswitch_id: str
    source_cidr: str
    snat_ips: tuple[str, ...]
    status: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> SnatEntry:
        ips = tuple(ip.strip() for ip in _s(row, "SnatIp").split(",") if ip.strip())
        return cls(
            id=_s(row, "SnatEntryId"),
            table_id=_s(row, "SnatTableId"),
            name=_s(row, "SnatEntryName"),
            source_vswitch_id=_s(row, "SourceVSwitchId"),
            source_cidr=_s(row, "SourceCIDR"),
            snat_ips=ips,
            status=_s(row, "Status"),
        )

    @property
    def snat_ip(self) -> str:
        """The SnatIp field as the API shows it (comma-separated when several)."""
        return ",".join(self.snat_ips)


@dataclass(frozen=True)
class NatIp:
    """One EIP of a NAT gateway as DescribeNatGateways lists it (``IpLists.IpList[]``)."""

    ip_address: str
    allocation_id: str
    # UsedBySnatTable | UsedByForwardTable | UsedByForwardSnatTable | Idle ("" if not given).
    using_status: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> NatIp:
        return cls(
            ip_address=_s(row, "IpAddress"),
            allocation_id=_s(row, "AllocationId"),
            using_status=_s(row, "UsingStatus"),
        )


@dataclass(frozen=True)
class NatGateway:
    """A NAT gateway of the VPC (DescribeNatGateways)."""

    id: str
    name: str
    vpc_id: str
    network_type: str
    status: str
    snat_table_ids: tuple[str, ...]
    ip_list: tuple[NatIp, ...] = ()

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> NatGateway:
        tables = (row.get("SnatTableIds") or {}).get("SnatTableId") or []
        ips = (row.get("IpLists") or {}).get("IpList") or []
        return cls(
            id=_s(row, "NatGatewayId"),
            name=_s(row, "Name"),
            vpc_id=_s(row, "VpcId"),
            # Older gateways have no NetworkType; they are Internet NAT gateways.
            network_type=_s(row, "NetworkType") or "internet",
            status=_s(row, "Status"),
            snat_table_ids=tuple(str(t) for t in tables),
            ip_list=tuple(NatIp.from_wire(r) for r in ips),
        )

    @property
    def is_internet(self) -> bool:
        return self.network_type == "internet"


@dataclass(frozen=True)
class Eip:
    """An elastic IP address (DescribeEipAddresses)."""

    id: str
    ip_address: str
    instance_id: str
    status: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> Eip:
        return cls(
            id=_s(row, "AllocationId"),
            ip_address=_s(row, "IpAddress"),
            instance_id=_s(row, "InstanceId"),
            status=_s(row, "Status"),
        )


@dataclass(frozen=True)
class VSwitch:
    """A vSwitch of the VPC (DescribeVSwitches)."""

    id: str
    name: str
    zone_id: str
    cidr_block: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> VSwitch:
        return cls(
            id=_s(row, "VSwitchId"),
            name=_s(row, "VSwitchName"),
            zone_id=_s(row, "ZoneId"),
            cidr_block=_s(row, "CidrBlock"),
        )


@dataclass(frozen=True)
class Clb:
    """A Classic Load Balancer (DescribeLoadBalancers)."""

    id: str
    name: str
    address: str
    address_type: str
    spec: str
    vswitch_id: str
    status: str
    tags: tuple[tuple[str, str], ...]

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> Clb:
        tags = (row.get("Tags") or {}).get("Tag") or []
        return cls(
            id=_s(row, "LoadBalancerId"),
            name=_s(row, "LoadBalancerName"),
            address=_s(row, "Address"),
            address_type=_s(row, "AddressType"),
            spec=_s(row, "LoadBalancerSpec"),
            vswitch_id=_s(row, "VSwitchId"),
            status=_s(row, "LoadBalancerStatus"),
            tags=tuple((str(t.get("TagKey")), str(t.get("TagValue"))) for t in tags),
        )

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)
