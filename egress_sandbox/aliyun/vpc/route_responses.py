"""VPC 2016-04-28 route actions: DescribeRouteTableList and DescribeRouteEntryList.

Shapes from the SDK models (alibabacloud_vpc20160428 ``DescribeRouteTableListResponseBody``,
``DescribeRouteEntryListResponseBody``); API pages:
https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-describeroutetablelist
https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-describerouteentrylist

Choices [UNCONFIRMED]: DescribeRouteEntryList with an unknown RouteTableId is 404
InvalidRouteTableId.NotFound; its NextToken is the index of the next entry, and a token it
did not hand out is 400 InvalidParameter. The VPC's own CIDR has a System route whose next
hop type is ``local``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.paging import page_request, paginate
from egress_sandbox.aliyun.common.params import Params
from egress_sandbox.aliyun.records import RouteEntry, RouteTable
from egress_sandbox.aliyun.vpc.models import VpcModel

ROUTE_ACTIONS: dict[str, tuple[str, bool]] = {
    "DescribeRouteTableList": ("describe_route_table_list", False),
    "DescribeRouteEntryList": ("describe_route_entry_list", False),
}

_RESOURCE_GROUP = "rg-acfmsandbox00000"


class RouteResponses:
    """Mixed into VpcResponses, which provides ``model`` and ``_owner``."""

    model: VpcModel

    @property
    def _owner(self) -> int:
        return int(self.model.cloud.account_id)

    def _route_table(self, table: RouteTable) -> dict[str, Any]:
        return {
            "RouteTableId": table.route_table_id,
            "RouteTableName": table.name,
            "RouteTableType": table.route_table_type,
            "AssociateType": "VSwitch",
            "VpcId": table.vpc_id,
            "RouterId": "vrt-" + table.vpc_id.split("-", 1)[1],
            "RouterType": "VRouter",
            "Status": table.status,
            "CreationTime": table.creation_time,
            "Description": "",
            "OwnerId": self._owner,
            "ResourceGroupId": _RESOURCE_GROUP,
            "RoutePropagationEnable": True,
            "VSwitchIds": {"VSwitchId": self.model.route_table_vswitches(table)},
            "GatewayIds": {"GatewayIds": []},
            "Tags": {"Tag": []},
        }

    def describe_route_table_list(self, p: Params) -> dict[str, Any]:
        p.region(self.model.cloud.region_id)
        vpc_id, table_id = p.get("VpcId"), p.get("RouteTableId")
        name, kind = p.get("RouteTableName"), p.get("RouteTableType")
        router_id, router_type = p.get("RouterId"), p.get("RouterType")
        if router_type not in (None, "VRouter", "VBR"):
            raise errors.InvalidParameter("The specified parameter RouterType is not valid.")
        paging = page_request(p)
        found = [
            t
            for t in self.model.route_tables()
            if (vpc_id is None or t.vpc_id == vpc_id)
            and (table_id is None or t.route_table_id == table_id)
            and (name is None or t.name == name)
            and (kind is None or t.route_table_type == kind)
            and (router_id is None or "vrt-" + t.vpc_id.split("-", 1)[1] == router_id)
            and router_type in (None, "VRouter")
        ]
        page = paginate(found, paging)
        return {
            **page.envelope(),
            "RouterTableList": {"RouterTableListType": [self._route_table(t) for t in page.items]},
        }

    def _route_entry(self, entry: RouteEntry) -> dict[str, Any]:
        region = self.model.cloud.region_id
        hop = {
            "NextHopId": entry.next_hop_id,
            "NextHopType": entry.next_hop_type,
            "Enabled": 1,
            "Weight": 0,
            "NextHopRegionId": region,
            "NextHopRelatedInfo": {"InstanceId": "", "InstanceType": "", "RegionId": ""},
        }
        return {
            "RouteEntryId": entry.route_entry_id,
            "RouteEntryName": entry.name,
            "RouteTableId": entry.route_table_id,
            "DestinationCidrBlock": entry.destination_cidr_block,
            "Type": entry.type,
            "Status": entry.status,
            "IpVersion": "ipv4",
            "Description": "",
            "GmtModified": "2026-01-01T00:00Z",
            "Origin": "",
            "ServiceType": "",
            "NextHops": {"NextHop": [hop]},
        }

    def describe_route_entry_list(self, p: Params) -> dict[str, Any]:
        p.region(self.model.cloud.region_id)
        table_id = p.require("RouteTableId")
        size = p.int("MaxResult", 10)
        assert size is not None
        if not 1 <= size <= 100:
            raise errors.InvalidParameter("The specified parameter MaxResult is not valid.")
        token = p.get("NextToken")
        if token is not None and not token.isdigit():
            raise errors.InvalidParameter("The specified parameter NextToken is not valid.")
        if table_id not in {t.route_table_id for t in self.model.route_tables()}:
            raise errors.DynamicError(
                "InvalidRouteTableId.NotFound", 404, "The specified route table does not exist."
            )
        filters: dict[str, Callable[[RouteEntry], str]] = {
            "RouteEntryId": lambda e: e.route_entry_id,
            "RouteEntryName": lambda e: e.name,
            "DestinationCidrBlock": lambda e: e.destination_cidr_block,
            "NextHopId": lambda e: e.next_hop_id,
            "NextHopType": lambda e: e.next_hop_type,
            "RouteEntryType": lambda e: e.type,
        }
        wanted = {k: p.get(k) for k in filters}
        found = [
            e
            for e in self.model.route_entries()
            if e.route_table_id == table_id
            and all(v is None or filters[k](e) == v for k, v in wanted.items())
        ]
        start = int(token or 0)
        batch = found[start : start + size]
        more = start + size < len(found)
        return {
            "TotalCount": len(found),
            "NextToken": str(start + size) if more else "",
            "RouteEntrys": {"RouteEntry": [self._route_entry(e) for e in batch]},
        }
