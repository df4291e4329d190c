"""The MSE OpenAPI's view of the gateways the emulated controller keeps in CloudState.

The controller (egress_sandbox/mse) creates and deletes ``MseGateway`` records and their CLBs;
this module only reads them, under the cloud lock, into plain views the responses render.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from dataclasses import dataclass

from egress_sandbox.aliyun.records import CloudState, LoadBalancer, MseGateway

PUB_NET = "PUB_NET"
PRIVATE_NET = "PRIVATE_NET"
# MseIngressConfig instance specs and the MSE specification codes they buy
# [UNCONFIRMED: the codes follow the MSE_GTW_<cpu>_<memory>_200_c pattern seen in ListGateway].
SPEC_CODES = {
    "2c4g": "MSE_GTW_2_4_200_c",
    "4c8g": "MSE_GTW_4_8_200_c",
    "8c16g": "MSE_GTW_8_16_200_c",
    "16c32g": "MSE_GTW_16_32_200_c",
}


@dataclass(frozen=True)
class GatewaySlb:
    """One SLB in front of a gateway, as MSE reports it."""

    slb_id: str
    address: str
    type: str  # PUB_NET | PRIVATE_NET
    spec: str
    create_time: str


@dataclass(frozen=True)
class GatewayView:
    gateway: MseGateway
    vpc_id: str
    slbs: tuple[GatewaySlb, ...]

    @property
    def numeric_id(self) -> int:
        # MSE also numbers its gateways; derived from the unique ID so that it is stable.
        return int(hashlib.sha256(self.gateway.gateway_id.encode()).hexdigest()[:6], 16)


def _slb(lb: LoadBalancer) -> GatewaySlb:
    kind = PUB_NET if lb.address_type == "internet" else PRIVATE_NET
    return GatewaySlb(lb.load_balancer_id, lb.address, kind, lb.load_balancer_spec, lb.create_time)


class MseModel:
    def __init__(self, cloud: CloudState, lock: threading.RLock) -> None:
        self.cloud = cloud
        self.lock = lock

    def gateways(self) -> list[GatewayView]:
        """Every gateway of the account, in creation order."""
        with self.lock:
            return [self._view(gw) for gw in self.cloud.gateways.values()]

    def gateway(self, unique_id: str) -> GatewayView | None:
        with self.lock:
            gw = self.cloud.gateways.get(unique_id)
            return self._view(gw) if gw is not None else None

    def _view(self, gw: MseGateway) -> GatewayView:
        cluster = self.cloud.clusters.get(gw.cluster_id)
        vsw = self.cloud.vswitches.get(gw.vswitch_ids[0]) if gw.vswitch_ids else None
        vpc_id = cluster.vpc_id if cluster else (vsw.vpc_id if vsw else "")
        lbs = [
            self.cloud.load_balancers[i]
            for i in (gw.private_slb_id, gw.public_slb_id)
            if i and i in self.cloud.load_balancers
        ]
        return GatewayView(
            gateway=copy.deepcopy(gw),
            vpc_id=vpc_id,
            slbs=tuple(_slb(lb) for lb in lbs),
        )
