"""SLB records over CloudState, for the MSE controller (which creates the CLBs of a gateway).

The controller owns address allocation (it passes ``address``) and must hold the cloud lock
while calling these functions, as for any other read-modify-write of CloudState.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from egress_sandbox.aliyun.records import CloudState, LoadBalancer
from egress_sandbox.core.ids import IdFactory

ADDRESS_TYPES = ("intranet", "internet")


def create_load_balancer(
    cloud: CloudState,
    ids: IdFactory,
    *,
    name: str,
    vpc_id: str,
    vswitch_id: str,
    spec: str,
    address_type: str,
    address: str,
    tags: dict[str, str] | None = None,
) -> LoadBalancer:
    """Insert an active CLB (``lb-...``) in the vSwitch's zone and return it."""
    if address_type not in ADDRESS_TYPES:
        raise ValueError(f"address_type must be one of {ADDRESS_TYPES}")
    vsw = cloud.vswitches.get(vswitch_id)
    if vsw is None or vsw.vpc_id != vpc_id:
        raise ValueError(f"vSwitch {vswitch_id} is not in VPC {vpc_id}")
    # An intranet CLB takes a private address of its vSwitch, one no other CLB holds.
    if address_type == "intranet" and ipaddress.ip_address(address) not in ipaddress.ip_network(
        vsw.cidr_block
    ):
        raise ValueError(f"address {address} is not in vSwitch {vswitch_id} ({vsw.cidr_block})")
    if any(other.address == address for other in cloud.load_balancers.values()):
        raise ValueError(f"address {address} is already used by another load balancer")
    lb = LoadBalancer(
        load_balancer_id=ids.resource_id("lb"),
        load_balancer_name=name,
        address=address,
        address_type=address_type,
        vpc_id=vpc_id,
        vswitch_id=vswitch_id,
        region_id=cloud.region_id,
        load_balancer_spec=spec,
        master_zone_id=vsw.zone_id,
        # SLB reports CreateTime to the minute, in UTC ("2026-01-01T00:00Z").
        create_time=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        tags=dict(tags or {}),
    )
    cloud.load_balancers[lb.load_balancer_id] = lb
    return lb


def add_listener(cloud: CloudState, lb_id: str, *, port: int, protocol: str) -> None:
    """Record a listener (``protocol`` is tcp | udp | http | https)."""
    lb = cloud.load_balancers[lb_id]
    lb.listeners = [entry for entry in lb.listeners if entry["port"] != port]
    lb.listeners.append({"port": port, "protocol": protocol})
    lb.listeners.sort(key=lambda entry: int(entry["port"]))


def remove_listener(cloud: CloudState, lb_id: str, *, port: int) -> bool:
    """Drop the listener on ``port``; False when there was none."""
    lb = cloud.load_balancers[lb_id]
    kept = [entry for entry in lb.listeners if int(entry["port"]) != port]
    changed = len(kept) != len(lb.listeners)
    lb.listeners = kept
    return changed


def delete_load_balancer(cloud: CloudState, lb_id: str) -> LoadBalancer | None:
    """Remove a CLB; returns it, or None when it did not exist (deleting twice is harmless)."""
    return cloud.load_balancers.pop(lb_id, None)
