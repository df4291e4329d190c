"""SLB 2014-05-15 read actions and their response shapes (the SLB API reference, https://www.alibabacloud.com/help/en/slb/classic-load-balancer/developer-reference/api-slb-2014-05-15-describeloadbalancers).

Choices [UNCONFIRMED]: InvalidLoadBalancerId.NotFound is 404; an unknown RegionId is
404 InvalidRegionId.NotFound as for VPC; DescribeLoadBalancers pages 10 by default (max 100)
even without PageNumber; ``Tags`` (JSON) is accepted as an alternative to ``Tag.N``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from typing import Any

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.paging import page_request, paginate
from egress_sandbox.aliyun.common.params import Params, tags_match
from egress_sandbox.aliyun.records import CloudState, LoadBalancer

ACTIONS: dict[str, tuple[str, bool]] = {
    "DescribeLoadBalancers": ("describe_load_balancers", False),
    "DescribeLoadBalancerAttribute": ("describe_load_balancer_attribute", False),
}


def _timestamp_ms(create_time: str) -> int:
    # Records written by other parts of the sandbox may use seconds precision too.
    for fmt in ("%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            parsed = dt.datetime.strptime(create_time, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
        return int(parsed.timestamp() * 1000)
    return 0


class SlbResponses:
    def __init__(self, cloud: CloudState, lock: threading.RLock) -> None:
        self.cloud = cloud
        self.lock = lock

    def _region(self, p: Params, *, required: bool) -> None:
        p.region(self.cloud.region_id, required=required)

    def _lbs(self) -> list[LoadBalancer]:
        with self.lock:
            return [copy.deepcopy(lb) for lb in self.cloud.load_balancers.values()]

    def _summary(self, lb: LoadBalancer) -> dict[str, Any]:
        return {
            "LoadBalancerId": lb.load_balancer_id,
            "LoadBalancerName": lb.load_balancer_name,
            "LoadBalancerStatus": lb.status,
            "Address": lb.address,
            "AddressType": lb.address_type,
            "AddressIPVersion": "ipv4",
            "NetworkType": lb.network_type,
            "VpcId": lb.vpc_id,
            "VSwitchId": lb.vswitch_id,
            "RegionId": lb.region_id,
            "RegionIdAlias": lb.region_id,
            "MasterZoneId": lb.master_zone_id,
            "SlaveZoneId": "",
            "LoadBalancerSpec": lb.load_balancer_spec,
            "Bandwidth": 5120,
            "InternetChargeType": "paybytraffic",
            "InternetChargeTypeAlias": "paybytraffic",
            "InstanceChargeType": "PayBySpec",
            "PayType": "PayOnDemand",
            "CreateTime": lb.create_time,
            "CreateTimeStamp": _timestamp_ms(lb.create_time),
            "DeleteProtection": "off",
            "ModificationProtectionStatus": "NonProtection",
            "ModificationProtectionReason": "",
            "ResourceGroupId": "rg-acfmsandbox00000",
            "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in lb.tags.items()]},
        }

    def _wanted_tags(self, p: Params) -> dict[str, str]:
        wanted = p.tags()
        raw = p.get("Tags")
        if raw is not None:
            try:
                items = json.loads(raw)
                wanted.update({str(t["TagKey"]): str(t.get("TagValue", "")) for t in items})
            except (ValueError, TypeError, KeyError):
                raise errors.InvalidParameter(
                    "The specified parameter Tags is not valid."
                ) from None
        return wanted

    def describe_load_balancers(self, p: Params) -> dict[str, Any]:
        self._region(p, required=True)
        ids = p.csv("LoadBalancerId")
        if len(ids) > 10:
            raise errors.InvalidParameter("Up to 10 LoadBalancerId values are allowed.")
        filters = {
            "vpc_id": p.get("VpcId"),
            "vswitch_id": p.get("VSwitchId"),
            "address_type": p.get("AddressType"),
            "address": p.get("Address"),
            "load_balancer_name": p.get("LoadBalancerName"),
            "network_type": p.get("NetworkType"),
            "status": p.get("LoadBalancerStatus"),
            "master_zone_id": p.get("MasterZoneId"),
        }
        tags = self._wanted_tags(p)
        paging = page_request(p, maximum=100)
        found = [
            lb
            for lb in self._lbs()
            if (not ids or lb.load_balancer_id in ids)
            and all(v is None or getattr(lb, k) == v for k, v in filters.items())
            and tags_match(tags, lb.tags)
        ]
        page = paginate(found, paging)
        return {
            **page.envelope(),
            "LoadBalancers": {"LoadBalancer": [self._summary(lb) for lb in page.items]},
        }

    def describe_load_balancer_attribute(self, p: Params) -> dict[str, Any]:
        self._region(p, required=False)
        lb_id = p.require("LoadBalancerId")
        with self.lock:
            found = self.cloud.load_balancers.get(lb_id)
            lb = copy.deepcopy(found) if found else None
        if lb is None:
            raise errors.InvalidLoadBalancerIdNotFound()
        body = self._summary(lb)
        listeners = lb.listeners
        body.update(
            {
                "EndTime": "",
                "EndTimeStamp": 0,
                "AutoReleaseTime": 0,
                "RenewalStatus": "",
                "RenewalDuration": 0,
                "RenewalCycUnit": "",
                "ListenerPorts": {"ListenerPort": [int(entry["port"]) for entry in listeners]},
                # Both spellings are real: the older one is misspelt ("Protocal").
                "ListenerPortsAndProtocal": {
                    "ListenerPortAndProtocal": [
                        {"ListenerPort": int(e["port"]), "ListenerProtocal": e["protocol"]}
                        for e in listeners
                    ]
                },
                "ListenerPortsAndProtocol": {
                    "ListenerPortAndProtocol": [
                        {
                            "ListenerPort": int(e["port"]),
                            "ListenerProtocol": e["protocol"],
                            "ListenerForward": "off",
                            "ForwardPort": 0,
                            "Description": "",
                        }
                        for e in listeners
                    ]
                },
                "BackendServers": {"BackendServer": []},
            }
        )
        return body
