"""Read-only Alibaba Cloud look-ups (cluster, VPC, vSwitches, NAT, EIPs, SNAT, CLBs).

Results are the SDK bodies' ``to_map()`` dicts, i.e. the wire keys (CamelCase for VPC and
SLB, snake_case for CS). Every Describe* call is paged to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from egress_lib.cloud import Product, call
from egress_lib.errors import CloudApiError, EgressError

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


def vpcs(session: Session, vpc_id: str) -> list[Row]:
    from alibabacloud_vpc20160428 import models as m

    region = session.params.region_id
    return paged(
        "vpc",
        "DescribeVpcs",
        session.vpc.describe_vpcs,
        lambda n, s: m.DescribeVpcsRequest(
            region_id=region, vpc_id=vpc_id, page_number=n, page_size=s
        ),
        "Vpcs",
        "Vpc",
    )


def vswitches(session: Session, vpc_id: str) -> list[Row]:
    from alibabacloud_vpc20160428 import models as m

    region = session.params.region_id
    return paged(
        "vpc",
        "DescribeVSwitches",
        session.vpc.describe_vswitches,
        lambda n, s: m.DescribeVSwitchesRequest(
            region_id=region, vpc_id=vpc_id, page_number=n, page_size=s
        ),
        "VSwitches",
        "VSwitch",
    )


def nat_gateways(session: Session, vpc_id: str) -> list[Row]:
    """NAT gateways of the VPC (all types; callers filter NetworkType == internet)."""
    from alibabacloud_vpc20160428 import models as m

    region = session.params.region_id
    return paged(
        "vpc",
        "DescribeNatGateways",
        session.vpc.describe_nat_gateways,
        lambda n, s: m.DescribeNatGatewaysRequest(
            region_id=region, vpc_id=vpc_id, page_number=n, page_size=s
        ),
        "NatGateways",
        "NatGateway",
    )


def eips_of(session: Session, nat_gateway_id: str) -> list[Row]:
    """EIPs bound to the NAT gateway."""
    from alibabacloud_vpc20160428 import models as m

    region = session.params.region_id
    return paged(
        "vpc",
        "DescribeEipAddresses",
        session.vpc.describe_eip_addresses,
        lambda n, s: m.DescribeEipAddressesRequest(
            region_id=region,
            associated_instance_id=nat_gateway_id,
            associated_instance_type="Nat",
            page_number=n,
            page_size=s,
        ),
        "EipAddresses",
        "EipAddress",
    )


def snat_entries(session: Session, snat_table_id: str, **filters: str) -> list[Row]:
    """SNAT entries of the table; ``filters`` are request fields (snat_entry_id=...)."""
    from alibabacloud_vpc20160428 import models as m

    region = session.params.region_id
    return paged(
        "vpc",
        "DescribeSnatTableEntries",
        session.vpc.describe_snat_table_entries,
        lambda n, s: m.DescribeSnatTableEntriesRequest(
            region_id=region, snat_table_id=snat_table_id, page_number=n, page_size=s, **filters
        ),
        "SnatTableEntries",
        "SnatTableEntry",
    )


def load_balancers(session: Session, **filters: str) -> list[Row]:
    """CLBs in the region; ``filters`` are request fields (vpc_id=..., address_type=...)."""
    from alibabacloud_slb20140515 import models as m

    region = session.params.region_id
    return paged(
        "slb",
        "DescribeLoadBalancers",
        session.slb.describe_load_balancers,
        lambda n, s: m.DescribeLoadBalancersRequest(
            region_id=region, page_number=n, page_size=s, **filters
        ),
        "LoadBalancers",
        "LoadBalancer",
    )


def is_not_found(err: CloudApiError) -> bool:
    """True for 404s and *.NotFound codes (the resource is absent, not the call broken)."""
    return err.status_code == 404 or bool(err.code and err.code.endswith("NotFound"))
