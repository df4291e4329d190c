"""VPC 2016-04-28 actions: parameter checks, filters and the response shapes.

The shapes are the VPC API reference's (docs/aliyun-emulation.md lists the pages).

One method per action, named like the SDK method. Each returns the body without ``RequestId``
(the server adds it first). Lists use the real double wrappers (``NatGateways: {NatGateway: []}``).

Choices [UNCONFIRMED]: DescribeVSwitchAttributes requires RegionId (the SDK does not mark it);
an unknown NatGatewayId in DescribeSnatTableEntries is 404 InvalidNatGatewayId.NotFound; when
neither SnatTableId nor NatGatewayId is given it is 400 MissingSnatTableId; CreateSnatEntry
requires SnatIp (every NAT gateway of the sandbox is an Internet NAT gateway) and rejects
NetworkInterfaceId (VPC NAT only) with INVALID_PARAMETER.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.paging import page_request, paginate
from egress_sandbox.aliyun.common.params import Params, tags_match
from egress_sandbox.aliyun.records import Eip, NatGateway, SnatEntry, Vpc, VSwitch
from egress_sandbox.aliyun.vpc.models import (
    SnatSpec,
    VpcModel,
    validate_snat_entry_name,
    validate_snat_ips,
)
from egress_sandbox.aliyun.vpc.route_responses import ROUTE_ACTIONS, RouteResponses

# Action name -> (method name, mutating). The server's registry of known VPC actions.
ACTIONS: dict[str, tuple[str, bool]] = {
    "DescribeVpcs": ("describe_vpcs", False),
    "DescribeVSwitches": ("describe_vswitches", False),
    "DescribeVSwitchAttributes": ("describe_vswitch_attributes", False),
    "DescribeNatGateways": ("describe_nat_gateways", False),
    "DescribeEipAddresses": ("describe_eip_addresses", False),
    "DescribeSnatTableEntries": ("describe_snat_table_entries", False),
    "CreateSnatEntry": ("create_snat_entry", True),
    "ModifySnatEntry": ("modify_snat_entry", True),
    "DeleteSnatEntry": ("delete_snat_entry", True),
    **ROUTE_ACTIONS,
}

_RESOURCE_GROUP = "rg-acfmsandbox00000"


def _suffix(resource_id: str) -> str:
    return resource_id.split("-", 1)[1]


class VpcResponses(RouteResponses):
    def __init__(self, model: VpcModel) -> None:
        self.model = model

    @property
    def _owner(self) -> int:
        return int(self.model.cloud.account_id)

    def _region(self, p: Params) -> None:
        p.region(self.model.cloud.region_id)

    # --- VPCs and vSwitches ---------------------------------------------------------------

    def _vpc(self, vpc: Vpc, vswitches: list[VSwitch], nats: list[NatGateway]) -> dict[str, Any]:
        return {
            "VpcId": vpc.vpc_id,
            "VpcName": vpc.vpc_name,
            "RegionId": vpc.region_id,
            "Status": vpc.status,
            "CidrBlock": vpc.cidr_block,
            "Ipv6CidrBlock": "",
            "EnabledIpv6": False,
            "IsDefault": False,
            "CreationTime": vpc.creation_time,
            "Description": "",
            "VRouterId": "vrt-" + _suffix(vpc.vpc_id),
            "OwnerId": self._owner,
            "ResourceGroupId": _RESOURCE_GROUP,
            "CenStatus": "Detached",
            "DhcpOptionsSetId": "",
            "DhcpOptionsSetStatus": "",
            "DnsHostnameStatus": "DISABLED",
            "VSwitchIds": {
                "VSwitchId": [v.vswitch_id for v in vswitches if v.vpc_id == vpc.vpc_id]
            },
            "UserCidrs": {"UserCidr": []},
            "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
            "NatGatewayIds": {
                "NatGatewayIds": [n.nat_gateway_id for n in nats if n.vpc_id == vpc.vpc_id]
            },
            "RouterTableIds": {
                "RouterTableIds": [
                    t.route_table_id for t in self.model.route_tables() if t.vpc_id == vpc.vpc_id
                ]
            },
            "Ipv6CidrBlocks": {"Ipv6CidrBlock": []},
            "Tags": {"Tag": []},
        }

    def describe_vpcs(self, p: Params) -> dict[str, Any]:
        self._region(p)
        wanted_ids = p.csv("VpcId")
        if len(wanted_ids) > 20:
            raise errors.InvalidParameter("The specified parameter VpcId is not valid (up to 20).")
        name, is_default, tags = p.get("VpcName"), p.get("IsDefault"), p.tags()
        paging = page_request(p)
        p.dry_run()
        vswitches, nats = self.model.vswitches(), self.model.nat_gateways()
        vpcs = [
            v
            for v in self.model.vpcs()
            if (not wanted_ids or v.vpc_id in wanted_ids)
            and (name is None or v.vpc_name == name)
            and (is_default is None or not p.bool("IsDefault"))
            and tags_match(tags, {})
        ]
        page = paginate(vpcs, paging)
        return {
            **page.envelope(),
            "Vpcs": {"Vpc": [self._vpc(v, vswitches, nats) for v in page.items]},
        }

    def _vswitch(self, vsw: VSwitch) -> dict[str, Any]:
        table_id, table_type = self.model.route_table_id_of(vsw.vswitch_id)
        return {
            "VSwitchId": vsw.vswitch_id,
            "VSwitchName": vsw.vswitch_name,
            "VpcId": vsw.vpc_id,
            "ZoneId": vsw.zone_id,
            "CidrBlock": vsw.cidr_block,
            "Ipv6CidrBlock": "",
            "EnabledIpv6": False,
            "AvailableIpAddressCount": vsw.available_ip_address_count,
            "Status": vsw.status,
            "IsDefault": False,
            "CreationTime": vsw.creation_time,
            "Description": "",
            "NetworkAclId": "",
            "OwnerId": self._owner,
            "ResourceGroupId": _RESOURCE_GROUP,
            "ShareType": "",
            "RouteTable": {"RouteTableId": table_id, "RouteTableType": table_type},
            "Tags": {"Tag": []},
        }

    def describe_vswitches(self, p: Params) -> dict[str, Any]:
        # "Specify at least one of RegionId and VpcId" (https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-describevswitches).
        vpc_id = p.get("VpcId")
        if p.get("RegionId") is None and vpc_id is None:
            raise errors.MissingParameter("RegionId")
        if p.get("RegionId") is not None:
            self._region(p)
        vswitch_id, name, zone = p.get("VSwitchId"), p.get("VSwitchName"), p.get("ZoneId")
        is_default, tags = p.get("IsDefault"), p.tags()
        paging = page_request(p)
        p.dry_run()
        found = [
            v
            for v in self.model.vswitches()
            if (vpc_id is None or v.vpc_id == vpc_id)
            and (vswitch_id is None or v.vswitch_id == vswitch_id)
            and (name is None or v.vswitch_name == name)
            and (zone is None or v.zone_id == zone)
            and (is_default is None or not p.bool("IsDefault"))
            and tags_match(tags, {})
        ]
        page = paginate(found, paging)
        return {**page.envelope(), "VSwitches": {"VSwitch": [self._vswitch(v) for v in page.items]}}

    def describe_vswitch_attributes(self, p: Params) -> dict[str, Any]:
        self._region(p)
        vswitch_id = p.require("VSwitchId")
        p.dry_run()
        return self._vswitch(self.model.vswitch(vswitch_id))

    # --- NAT gateways and EIPs ------------------------------------------------------------

    def _nat(self, nat: NatGateway) -> dict[str, Any]:
        vsw = self.model.vswitch(nat.vswitch_id)
        private_ip = str(list(ipaddress.IPv4Network(vsw.cidr_block).hosts())[-2])
        ip_list = [
            {
                "AllocationId": eip.allocation_id,
                "IpAddress": eip.ip_address,
                "PrivateIpAddress": private_ip,
                "SnatEntryEnabled": used,
                "UsingStatus": "UsedBySnatTable" if used else "Idle",
            }
            for eip, used in self.model.nat_ip_list(nat.nat_gateway_id)
        ]
        return {
            "NatGatewayId": nat.nat_gateway_id,
            "Name": nat.name,
            "Description": "",
            "VpcId": nat.vpc_id,
            "RegionId": nat.region_id,
            "Status": nat.status,
            "BusinessStatus": "Normal",
            "NatType": nat.nat_type,
            "NetworkType": nat.network_type,
            "Spec": nat.spec,
            "InstanceChargeType": "PostPaid",
            "InternetChargeType": "PayByLcu",
            "CreationTime": nat.creation_time,
            "ExpiredTime": "",
            "ResourceGroupId": _RESOURCE_GROUP,
            "AutoPay": False,
            "DeletionProtection": False,
            "EcsMetricEnabled": False,
            "IcmpReplyEnabled": True,
            "SecurityProtectionEnabled": False,
            "PrivateLinkEnabled": False,
            "PrivateLinkMode": "",
            "EipBindMode": "MULTI_BINDED",
            "EnableSessionLog": "false",
            # [UNCONFIRMED] values: empty, as for a field the service leaves unset.
            "AvailabilityMode": "",
            # AccessMode describes VPC NAT gateways' access; Internet NAT leaves it empty.
            "AccessMode": {"ModeValue": "", "TunnelType": ""},
            "SnatTableIds": {"SnatTableId": [nat.snat_table_id]},
            "ForwardTableIds": {"ForwardTableId": [nat.forward_table_id]},
            "FullNatTableIds": {"FullNatTableId": []},
            "IpLists": {"IpList": ip_list},
            "IpPrefixList": {"IpPrefixList": []},
            "NatGatewayPrivateInfo": {
                "VswitchId": nat.vswitch_id,
                "EniInstanceId": "eni-" + _suffix(nat.nat_gateway_id),
                "EniType": "indirect",
                "IzNo": vsw.zone_id,
                "PrivateIpAddress": private_ip,
                "MaxBandwidth": 5120,
                "MaxSessionEstablishRate": 100000,
                "MaxSessionQuota": 2000000,
            },
            "Tags": {"Tag": []},
        }

    def describe_nat_gateways(self, p: Params) -> dict[str, Any]:
        self._region(p)
        filters = {
            "NatGatewayId": p.get("NatGatewayId"),
            "VpcId": p.get("VpcId"),
            "Name": p.get("Name"),
            "Status": p.get("Status"),
            "NetworkType": p.get("NetworkType"),
            "NatType": p.get("NatType"),
            "Spec": p.get("Spec"),
        }
        fields = {
            "NatGatewayId": "nat_gateway_id",
            "VpcId": "vpc_id",
            "Name": "name",
            "Status": "status",
            "NetworkType": "network_type",
            "NatType": "nat_type",
            "Spec": "spec",
        }
        charge, tags = p.get("InstanceChargeType"), p.tags()
        paging = page_request(p)
        p.dry_run()
        found = [
            n
            for n in self.model.nat_gateways()
            if all(v is None or getattr(n, fields[k]) == v for k, v in filters.items())
            and (charge is None or charge == "PostPaid")
            and tags_match(tags, {})
        ]
        page = paginate(found, paging)
        return {
            **page.envelope(),
            "NatGateways": {"NatGateway": [self._nat(n) for n in page.items]},
        }

    def _eip(self, eip: Eip, nats: dict[str, NatGateway]) -> dict[str, Any]:
        nat = nats.get(eip.instance_id)
        return {
            "AllocationId": eip.allocation_id,
            "IpAddress": eip.ip_address,
            "PrivateIpAddress": "",
            "Name": eip.name,
            "Description": "",
            "Status": eip.status,
            "InstanceId": eip.instance_id,
            "InstanceType": eip.instance_type,
            "InstanceRegionId": eip.region_id if eip.instance_id else "",
            "RegionId": eip.region_id,
            "VpcId": nat.vpc_id if nat else "",
            "Zone": "",
            "Bandwidth": eip.bandwidth,
            "EipBandwidth": eip.bandwidth,
            "InternetChargeType": "PayByTraffic",
            "ChargeType": "PostPaid",
            "ISP": "BGP",
            "Mode": "NAT",
            "Netmode": "public",
            "AllocationTime": eip.allocation_time,
            "ExpiredTime": "",
            "BandwidthPackageId": "",
            "BandwidthPackageBandwidth": "",
            "BandwidthPackageType": "",
            "BizType": "",
            "BusinessStatus": "Normal",
            "DeletionProtection": False,
            "HDMonitorStatus": "OFF",
            "HasReservationData": "false",
            "ResourceGroupId": _RESOURCE_GROUP,
            "SecondLimited": False,
            "SegmentInstanceId": "",
            "ServiceManaged": 0,
            "ServiceID": 0,
            "PublicIpAddressPoolId": "",
            "OperationLocks": {"LockReason": []},
            "SecurityProtectionTypes": {"SecurityProtectionType": []},
            "Tags": {"Tag": []},
        }

    def describe_eip_addresses(self, p: Params) -> dict[str, Any]:
        self._region(p)
        allocation_ids, addresses = p.csv("AllocationId"), p.csv("EipAddress")
        if len(allocation_ids) > 50 or len(addresses) > 50:
            raise errors.InvalidParameter("Up to 50 AllocationId or EipAddress values are allowed.")
        status, name = p.get("Status"), p.get("EipName")
        instance_id, instance_type = p.get("AssociatedInstanceId"), p.get("AssociatedInstanceType")
        tags = p.tags()
        paging = page_request(p, maximum=100)
        p.dry_run()
        found = [
            e
            for e in self.model.eips()
            if (not allocation_ids or e.allocation_id in allocation_ids)
            and (not addresses or e.ip_address in addresses)
            and (status is None or e.status == status)
            and (name is None or e.name == name)
            and (instance_id is None or e.instance_id == instance_id)
            and (instance_type is None or e.instance_type == instance_type)
            and tags_match(tags, {})
        ]
        page = paginate(found, paging)
        nats = {n.nat_gateway_id: n for n in self.model.nat_gateways()}
        return {
            **page.envelope(),
            "EipAddresses": {"EipAddress": [self._eip(e, nats) for e in page.items]},
        }

    # --- SNAT entries ---------------------------------------------------------------------

    def _source_cidr(self, entry: SnatEntry) -> str:
        # The real API reports a vSwitch entry's CIDR in SourceCIDR too.
        if entry.source_vswitch_id:
            try:
                return self.model.vswitch(entry.source_vswitch_id).cidr_block
            except errors.ApiError:
                return ""
        return entry.source_cidr

    def _snat(self, entry: SnatEntry) -> dict[str, Any]:
        return {
            "SnatEntryId": entry.snat_entry_id,
            "SnatEntryName": entry.snat_entry_name,
            "SnatIp": entry.snat_ip,
            "SnatTableId": entry.snat_table_id,
            "NatGatewayId": entry.nat_gateway_id,
            "SourceCIDR": self._source_cidr(entry),
            "SourceVSwitchId": entry.source_vswitch_id,
            "NetworkInterfaceId": "",
            "EipAffinity": entry.eip_affinity,
            "Status": entry.status,
        }

    def describe_snat_table_entries(self, p: Params) -> dict[str, Any]:
        self._region(p)
        table_id, nat_id = p.get("SnatTableId"), p.get("NatGatewayId")
        if table_id is None and nat_id is None:
            raise errors.MissingParameter("SnatTableId")
        entry_id, name = p.get("SnatEntryId"), p.get("SnatEntryName")
        snat_ip, cidr, vswitch = p.get("SnatIp"), p.get("SourceCIDR"), p.get("SourceVSwitchId")
        # NetworkInterfaceIds.N (VPC NAT only): entries of the sandbox's Internet NAT gateways
        # have no ENI, so any such filter matches none of them.
        enis = p.indexed("NetworkInterfaceIds")
        paging = page_request(p)
        if table_id is not None:
            self.model.nat_by_table(table_id)
        if nat_id is not None:
            self.model.nat(nat_id)
        found = [
            e
            for e in self.model.snat_entries()
            if (table_id is None or e.snat_table_id == table_id)
            and (nat_id is None or e.nat_gateway_id == nat_id)
            and (entry_id is None or e.snat_entry_id == entry_id)
            and (name is None or e.snat_entry_name == name)
            and (snat_ip is None or snat_ip in e.snat_ip.split(","))
            and (cidr is None or self._source_cidr(e) == cidr)
            and (vswitch is None or e.source_vswitch_id == vswitch)
            and not enis
        ]
        page = paginate(found, paging)
        return {
            **page.envelope(),
            "SnatTableEntries": {"SnatTableEntry": [self._snat(e) for e in page.items]},
        }

    @staticmethod
    def _client_token(p: Params) -> str | None:
        token = p.get("ClientToken")
        if token is not None and (len(token) > 64 or not token.isascii()):
            raise errors.InvalidParameter("The specified parameter ClientToken is not valid.")
        return token

    @staticmethod
    def _eip_affinity(p: Params) -> int | None:
        value = p.int("EipAffinity")
        if value not in (None, 0, 1):
            raise errors.InvalidParameter("The specified parameter EipAffinity is not valid.")
        return value

    def create_snat_entry(self, p: Params) -> dict[str, Any]:
        self._region(p)
        table_id = p.require("SnatTableId")
        if p.get("NetworkInterfaceId") is not None:
            raise errors.InvalidSnatParameter(
                "NetworkInterfaceId is supported by VPC NAT gateways only."
            )
        p.require("SnatIp")
        snat_ips = p.csv("SnatIp")
        validate_snat_ips(snat_ips)
        vswitch_id, cidr = p.get("SourceVSwitchId"), p.get("SourceCIDR")
        if (vswitch_id is None) == (cidr is None):
            raise errors.InvalidSnatParameter(
                "Exactly one of SourceVSwitchId and SourceCIDR must be specified."
            )
        if cidr is not None:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError:
                raise errors.InvalidSnatParameter(
                    "The specified SourceCIDR is malformed."
                ) from None
        name = p.get("SnatEntryName")
        validate_snat_entry_name(name)
        affinity = self._eip_affinity(p)
        token = self._client_token(p)
        p.dry_run()
        spec = SnatSpec(table_id, snat_ips, vswitch_id, cidr, name, affinity or 0)
        entry_id = self.model.create_snat_entry(
            spec, client_token=token, fingerprint=self.model.fingerprint(p.raw())
        )
        return {"SnatEntryId": entry_id}

    def modify_snat_entry(self, p: Params) -> dict[str, Any]:
        self._region(p)
        table_id = p.require("SnatTableId")
        entry_id = p.require("SnatEntryId")
        if p.get("NetworkInterfaceId") is not None:
            raise errors.InvalidSnatParameter(
                "NetworkInterfaceId is supported by VPC NAT gateways only."
            )
        snat_ips = p.csv("SnatIp") if p.get("SnatIp") is not None else None
        if snat_ips is not None:
            validate_snat_ips(snat_ips)
        name = p.get("SnatEntryName")
        validate_snat_entry_name(name)
        affinity = self._eip_affinity(p)
        token = self._client_token(p)
        p.dry_run()
        self.model.modify_snat_entry(
            table_id,
            entry_id,
            snat_ips=snat_ips,
            name=name,
            eip_affinity=affinity,
            client_token=token,
            fingerprint=self.model.fingerprint(p.raw()),
        )
        return {}

    def delete_snat_entry(self, p: Params) -> dict[str, Any]:
        self._region(p)
        table_id = p.require("SnatTableId")
        entry_id = p.require("SnatEntryId")
        token = self._client_token(p)
        self.model.delete_snat_entry(
            table_id, entry_id, client_token=token, fingerprint=self.model.fingerprint(p.raw())
        )
        return {}
