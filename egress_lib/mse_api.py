"""The MSE OpenAPI's view of the gateway: ListGateway and ListGatewaySlb (MSE 2019-05-31).

MSE, not SLB tags, says which load balancers front a gateway and whether each is Internet
facing (``Type`` ``PUB_NET`` or ``PRIVATE_NET``; help: https://help.aliyun.com/document_detail/393726.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_lib.cloud import call
from egress_lib.errors import EgressError

if TYPE_CHECKING:
    from egress_lib.clients import Session

PUB_NET = "PUB_NET"
PRIVATE_NET = "PRIVATE_NET"
PAGE_SIZE = 50
MAX_PAGES = 100


def _s(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class MseGateway:
    """A gateway as ListGateway reports it."""

    unique_id: str
    name: str
    vpc_id: str
    status: str
    status_desc: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> MseGateway:
        return cls(
            unique_id=_s(row, "GatewayUniqueId"),
            name=_s(row, "Name"),
            vpc_id=_s(row, "VpcId"),
            status=_s(row, "Status"),
            status_desc=_s(row, "StatusDesc"),
        )


@dataclass(frozen=True)
class GatewaySlb:
    """One load balancer in front of a gateway (ListGatewaySlb)."""

    slb_id: str
    address: str
    type: str  # PUB_NET | PRIVATE_NET
    mode: str
    status: str

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> GatewaySlb:
        return cls(
            slb_id=_s(row, "SlbId"),
            address=_s(row, "SlbIp"),
            type=_s(row, "Type"),
            mode=_s(row, "GatewaySlbMode"),
            status=_s(row, "GatewaySlbStatus"),
        )

    @property
    def public(self) -> bool:
        return self.type == PUB_NET


def list_gateways(session: Session, *, name: str, vpc_id: str) -> list[MseGateway]:
    """Gateways called exactly ``name`` in ``vpc_id`` (MSE's Name filter also matches parts)."""
    from alibabacloud_mse20190531 import models as m

    filters = m.ListGatewayRequestFilterParams(name=name, vpc=vpc_id)
    rows: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        request = m.ListGatewayRequest(filter_params=filters, page_number=page, page_size=PAGE_SIZE)
        body = call("mse", "ListGateway", session.mse.list_gateway, request)
        data = (body.to_map() if hasattr(body, "to_map") else body).get("Data") or {}
        batch = data.get("Result") or []
        rows.extend(batch)
        if not batch or len(rows) >= int(data.get("TotalSize") or 0):
            break
    else:
        raise EgressError(f"mse:ListGateway returned more than {MAX_PAGES} pages")
    found = [MseGateway.from_wire(r) for r in rows]
    return [g for g in found if g.name == name and (not g.vpc_id or g.vpc_id == vpc_id)]


def gateway_slbs(session: Session, unique_id: str) -> list[GatewaySlb]:
    """The load balancers of the gateway ``unique_id``."""
    from alibabacloud_mse20190531 import models as m

    request = m.ListGatewaySlbRequest(gateway_unique_id=unique_id)
    body = call("mse", "ListGatewaySlb", session.mse.list_gateway_slb, request)
    rows = (body.to_map() if hasattr(body, "to_map") else body).get("Data") or []
    return [GatewaySlb.from_wire(r) for r in rows if isinstance(r, dict)]
