"""Read-only Alibaba Cloud look-ups (cluster, node pools, VPC, routes, NAT, EIPs, SNAT, CLBs).

Results are the SDK bodies' ``to_map()`` dicts, i.e. the wire keys (CamelCase for VPC and
SLB, snake_case for CS). Every list (Describe*s) call is paged to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from egress_lib.cloud import Product, call
from egress_lib.errors import CloudApiError, EgressError
from egress_lib.resources import Clb, Eip, NatGateway, SnatEntry, VSwitch

if TYPE_CHECKING:
    from egress_lib.clients import Session

Row = dict[str, Any]
PAGE_SIZE = 50  # the largest page VPC Describe* actions accept
MAX_PAGES = 200  # a guard against a server that keeps reporting a larger TotalCount


def _to_map(body: Any) -> Any:
    return body.to_map() if hasattr(body, "to_map") else body


def paged(
    product: Product,
    action: str,
    fn: Callable[[Any], Any],
    make_request: Callable[[int, int], Any],
    wrapper: str,
    item: str,
) -> list[Row]:
    """All items of a paged Describe* action (``{wrapper: {item: [...]}}`` in the body)."""
    rows: list[Row] = []
    for page in range(1, MAX_PAGES + 1):
        body = _to_map(call(product, action, fn, make_request(page, PAGE_SIZE)))
        batch = (body.get(wrapper) or {}).get(item) or []
        rows.extend(batch)
        total = int(body.get("TotalCount") or 0)
        if not batch or len(rows) >= total:
            return rows
    raise EgressError(f"{product}:{action} returned more than {MAX_PAGES} pages")


def cluster_detail(session: Session) -> Row:
    """CS DescribeClusterDetail for ``params.cluster_id``."""
    p = session.params
    body = call("cs", "DescribeClusterDetail", session.cs.describe_cluster_detail, p.cluster_id)
    detail: Row = _to_map(body)
    return detail


# Paged list actions: action -> (product = Session attribute, SDK method, wrapper, item).
LIST_ACTIONS: dict[str, tuple[Product, str, str, str]] = {
    "DescribeVpcs": ("vpc", "describe_vpcs", "Vpcs", "Vpc"),
    "DescribeVSwitches": ("vpc", "describe_vswitches", "VSwitches", "VSwitch"),
    "DescribeNatGateways": ("vpc", "describe_nat_gateways", "NatGateways", "NatGateway"),
    "DescribeEipAddresses": ("vpc", "describe_eip_addresses", "EipAddresses", "EipAddress"),
    "DescribeSnatTableEntries": (
        "vpc",
        "describe_snat_table_entries",
        "SnatTableEntries",
        "SnatTableEntry",
    ),
    "DescribeLoadBalancers": ("slb", "describe_load_balancers", "LoadBalancers", "LoadBalancer"),
    "DescribeRouteTableList": (
        "vpc",
        "describe_route_table_list",
        "RouterTableList",
        "RouterTableListType",
    ),
}


def describe_all(
    session: Session, action: str, request: Callable[..., Any], **fields: str
) -> list[Row]:
    """Every item of a :data:`LIST_ACTIONS` action in ``params.region_id``.

    ``request`` is the SDK request model; ``fields`` are its filters (vpc_id=...).
    """
    product, method, wrapper, item = LIST_ACTIONS[action]
    fn = getattr(getattr(session, product), method)
    region = session.params.region_id
    return paged(
        product,
        action,
        fn,
        lambda n, s: request(region_id=region, page_number=n, page_size=s, **fields),
        wrapper,
        item,
    )


def vpcs(session: Session, vpc_id: str) -> list[Row]:
    """The VPC ``vpc_id`` as a list (empty when it does not exist)."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(session, "DescribeVpcs", m.DescribeVpcsRequest, vpc_id=vpc_id)


def vswitches(session: Session, vpc_id: str) -> list[Row]:
    """The vSwitches of the VPC."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(session, "DescribeVSwitches", m.DescribeVSwitchesRequest, vpc_id=vpc_id)


def nat_gateways(session: Session, vpc_id: str) -> list[Row]:
    """NAT gateways of the VPC (all types; callers filter NetworkType == internet)."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(session, "DescribeNatGateways", m.DescribeNatGatewaysRequest, vpc_id=vpc_id)


def eips_of(session: Session, nat_gateway_id: str) -> list[Row]:
    """EIPs bound to the NAT gateway."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(
        session,
        "DescribeEipAddresses",
        m.DescribeEipAddressesRequest,
        associated_instance_id=nat_gateway_id,
        associated_instance_type="Nat",
    )


def snat_entries(session: Session, snat_table_id: str, **filters: str) -> list[Row]:
    """SNAT entries of the table; ``filters`` are request fields (snat_entry_id=...)."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(
        session,
        "DescribeSnatTableEntries",
        m.DescribeSnatTableEntriesRequest,
        snat_table_id=snat_table_id,
        **filters,
    )


def load_balancers(session: Session, **filters: str) -> list[Row]:
    """CLBs in the region; ``filters`` are request fields (vpc_id=..., address_type=...)."""
    from alibabacloud_slb20140515 import models as m

    return describe_all(session, "DescribeLoadBalancers", m.DescribeLoadBalancersRequest, **filters)


def node_pools(session: Session) -> list[Row]:
    """CS DescribeClusterNodePools for ``params.cluster_id`` (snake_case rows)."""
    from alibabacloud_cs20151215 import models as m

    body = call(
        "cs",
        "DescribeClusterNodePools",
        session.cs.describe_cluster_node_pools,
        session.params.cluster_id,
        m.DescribeClusterNodePoolsRequest(),
    )
    return list(_to_map(body).get("nodepools") or [])


def node_vswitch_ids(pools: list[Row]) -> list[str]:
    """The nodes' vSwitches: every node pool's ``scaling_group.vswitch_ids``, in order."""
    out: list[str] = []
    for pool in pools:
        for vsw in (pool.get("scaling_group") or {}).get("vswitch_ids") or []:
            if vsw not in out:
                out.append(str(vsw))
    return out


def route_tables(session: Session, vpc_id: str) -> list[Row]:
    """The VPC's route tables (System and Custom), each with the vSwitches it serves."""
    from alibabacloud_vpc20160428 import models as m

    return describe_all(
        session, "DescribeRouteTableList", m.DescribeRouteTableListRequest, vpc_id=vpc_id
    )


def route_entries(session: Session, route_table_id: str, **filters: str) -> list[Row]:
    """The table's routes; this action pages by NextToken, not by page number."""
    from alibabacloud_vpc20160428 import models as m

    rows: list[Row] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        request = m.DescribeRouteEntryListRequest(
            region_id=session.params.region_id,
            route_table_id=route_table_id,
            max_result=100,
            next_token=token,
            **filters,
        )
        body = _to_map(
            call("vpc", "DescribeRouteEntryList", session.vpc.describe_route_entry_list, request)
        )
        rows.extend((body.get("RouteEntrys") or {}).get("RouteEntry") or [])
        token = body.get("NextToken") or None
        if token is None:
            return rows
    raise EgressError(f"vpc:DescribeRouteEntryList returned more than {MAX_PAGES} pages")


def is_not_found(err: CloudApiError) -> bool:
    """True for 404s and *.NotFound codes (the resource is absent, not the call broken)."""
    return err.status_code == 404 or bool(err.code and err.code.endswith("NotFound"))


# --- typed look-ups: what the steps work on ------------------------------------------------


def snat_table(session: Session, snat_table_id: str, **filters: str) -> list[SnatEntry]:
    """The SNAT table's entries as :class:`SnatEntry` records."""
    return [SnatEntry.from_wire(r) for r in snat_entries(session, snat_table_id, **filters)]


def nat_gateway_records(session: Session, vpc_id: str) -> list[NatGateway]:
    """The VPC's NAT gateways as :class:`NatGateway` records."""
    return [NatGateway.from_wire(r) for r in nat_gateways(session, vpc_id)]


def eip_records(session: Session, nat_gateway_id: str) -> list[Eip]:
    """EIPs bound to the NAT gateway as :class:`Eip` records."""
    return [Eip.from_wire(r) for r in eips_of(session, nat_gateway_id)]


def vswitch_records(session: Session, vpc_id: str) -> list[VSwitch]:
    """The VPC's vSwitches as :class:`VSwitch` records."""
    return [VSwitch.from_wire(r) for r in vswitches(session, vpc_id)]


def clbs(session: Session, **filters: str) -> list[Clb]:
    """CLBs in the region as :class:`Clb` records."""
    return [Clb.from_wire(r) for r in load_balancers(session, **filters)]
