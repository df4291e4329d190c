"""MSE 2019-05-31 ListGateway and ListGatewaySlb, shaped as the SDK alibabacloud-mse20190531
models them (``ListGatewayResponseBody``, ``ListGatewaySlbResponseBody``).

MSE wraps results as ``{Code, HttpStatusCode, Success, Message, Data}`` (help:
document_detail/393726). ``FilterParams`` arrives as one JSON object in the query (the SDK
serialises the model with the 'json' style). Choices [UNCONFIRMED]: ``Name`` matches a part
of the gateway's name (the console's search does), so a client must compare names itself;
PageSize defaults to 10, at most 100; a gateway's SLB ports read "80".
"""

from __future__ import annotations

import json
from typing import Any

from egress_sandbox.aliyun.common.paging import page_request, paginate
from egress_sandbox.aliyun.common.params import Params
from egress_sandbox.aliyun.common.product_errors import GatewayNotFound, IllegalRequest
from egress_sandbox.aliyun.mse.models import (
    PUB_NET,
    SPEC_CODES,
    GatewaySlb,
    GatewayView,
    MseModel,
)
from egress_sandbox.mse.gateway import TAG_CLUSTER, TAG_CONFIG

ACTIONS: dict[str, tuple[str, bool]] = {
    "ListGateway": ("list_gateway", False),
    "ListGatewaySlb": ("list_gateway_slb", False),
}
_FILTERS = ("GatewayUniqueId", "InstanceId", "Name", "Vpc", "GatewayType", "MseTag")


def _ok(data: Any) -> dict[str, Any]:
    return {"Code": 200, "HttpStatusCode": 200, "Success": True, "Message": "", "Data": data}


def _filters(p: Params) -> dict[str, str]:
    raw = p.get("FilterParams")
    if raw is None:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise IllegalRequest("Invalid request:FilterParams is not a JSON object")
    return {k: str(v) for k, v in parsed.items() if k in _FILTERS and v not in (None, "")}


def _matches(view: GatewayView, wanted: dict[str, str]) -> bool:
    gw = view.gateway
    have = {
        "GatewayUniqueId": gw.gateway_id == wanted.get("GatewayUniqueId"),
        "InstanceId": gw.gateway_id == wanted.get("InstanceId"),
        "Name": wanted.get("Name", "") in gw.name,
        "Vpc": view.vpc_id == wanted.get("Vpc"),
        "GatewayType": wanted.get("GatewayType") == "Ingress",
        "MseTag": wanted.get("MseTag") in ("", "ingress"),
    }
    return all(have[k] for k in wanted)


def _slb_summary(slb: GatewaySlb) -> dict[str, Any]:
    return {
        "SlbId": slb.slb_id,
        "SlbIp": slb.address,
        "SlbPort": "80",
        "SlbSpec": slb.spec,
        "Type": slb.type,
        "GatewaySlbMode": "CREATE",
        "GatewaySlbStatus": "Ok",
        "StatusDesc": "",
    }


class MseResponses:
    def __init__(self, model: MseModel) -> None:
        self.model = model

    def _gateway(self, view: GatewayView) -> dict[str, Any]:
        gw = view.gateway
        private = [s for s in view.slbs if s.type != PUB_NET]
        public = [s for s in view.slbs if s.type == PUB_NET]
        tags = {TAG_CLUSTER: gw.cluster_id, TAG_CONFIG: gw.config_name}
        return {
            "Id": view.numeric_id,
            "GatewayUniqueId": gw.gateway_id,
            "InstanceId": gw.gateway_id,
            "Name": gw.name,
            "GatewayType": "Ingress",
            "MseTag": "ingress",
            "Tag": json.dumps(tags),
            "Region": self.model.cloud.region_id,
            "VpcId": view.vpc_id,
            "Vswitch2": gw.vswitch_ids[1] if len(gw.vswitch_ids) > 1 else "",
            "Spec": SPEC_CODES.get(gw.spec, gw.spec),
            "Replica": gw.replicas,
            "TotalReplica": gw.replicas,
            # 2 = running (SDK docstring of ListGatewayResponseBodyDataResult.status).
            "Status": 2,
            "StatusDesc": "Running",
            "ChargeType": "POSTPAY",
            "ResourceGroupId": "rg-acfmsandbox00000",
            "Slb": [_slb_summary(s) for s in private],
            "InternetSlb": [_slb_summary(s) for s in public],
        }

    def list_gateway(self, p: Params) -> dict[str, Any]:
        wanted = _filters(p)
        paging = page_request(p, default=10, maximum=100)
        found = [v for v in self.model.gateways() if _matches(v, wanted)]
        page = paginate(found, paging)
        return _ok(
            {
                "PageNumber": page.page_number,
                "PageSize": page.page_size,
                "TotalSize": page.total_count,
                "Result": [self._gateway(v) for v in page.items],
            }
        )

    def list_gateway_slb(self, p: Params) -> dict[str, Any]:
        unique_id = p.require("GatewayUniqueId")
        view = self.model.gateway(unique_id)
        if view is None:
            raise GatewayNotFound(f"The gateway {unique_id} does not exist.")
        return _ok(
            [
                {
                    **_slb_summary(slb),
                    "Id": str(view.numeric_id * 10 + n),
                    "GatewayId": str(view.numeric_id),
                    "SlbType": "CLB",
                    "GmtCreate": slb.create_time,
                    "HttpPort": 80,
                    "HttpsPort": 443,
                    "ServiceWeight": 100,
                    "EditEnable": True,
                    "VServerGroupId": "",
                    "HttpsVServerGroupId": "",
                    "VServiceList": [],
                    "VsMetaInfo": "",
                }
                for n, slb in enumerate(view.slbs, start=1)
            ]
        )
