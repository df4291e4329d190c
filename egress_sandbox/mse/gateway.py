"""The cloud side of a MseIngressConfig: the MseGateway record and its CLB(s).

Callers hold ``cloud_lock``. CLB records are made through the SLB product's models, so CLBs
made by the controller look exactly like ones the SLB API reports.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from egress_sandbox.aliyun.records import CloudState, LoadBalancer, MseGateway
from egress_sandbox.aliyun.slb import models as slb
from egress_sandbox.core.ids import IdFactory

DEFAULT_SLB_SPEC = "slb.s2.small"
# Public CLBs get loopback addresses from their own block so the data plane can bind them;
# they stand in for Internet addresses and are never used as an egress source.
PUBLIC_CLB_BLOCK = "127.100.0.0/24"
TAG_CLUSTER = "ack.aliyun.com"
TAG_CONFIG = "ingress.k8s.alibaba/MseIngressConfig"
TAG_REUSED = "kubernetes.reused.by.user"


class GatewayError(Exception):
    """A semantic error that puts the MseIngressConfig into phase Failed."""


# The help page an unauthorized account is sent to (its RAM Quick Authorization link).
AUTHORIZATION_HELP = (
    "https://www.alibabacloud.com/help/en/mse/user-guide/"
    "grant-permissions-to-mse-ingress-controller-in-ack-or-ask-clusters"
)


def unauthorized_message(missing: list[str]) -> str:
    """The Failed message of a config whose account lacks MSE roles.

    [UNCONFIRMED] The real controller's wording is not documented; this one names what is
    missing and where it is granted (docs/aliyun-emulation.md).
    """
    return (
        f"Failed to pass the precheck: RAM role(s) {', '.join(missing)} not found; "
        f"grant them with RAM Quick Authorization ({AUTHORIZATION_HELP})"
    )


def _next_free_address(cloud: CloudState, cidr: str, start: int = 10) -> str:
    net = ipaddress.ip_network(cidr)
    used = {lb.address for lb in cloud.load_balancers.values()}
    for offset in range(start, net.num_addresses - 1):
        addr = str(net.network_address + offset)
        if addr not in used:
            return addr
    raise GatewayError(f"no free address left in {cidr}")


def _new_lb(cloud: CloudState, ids: IdFactory, **fields: Any) -> LoadBalancer:
    lb = slb.create_load_balancer(cloud, ids, **fields)
    slb.add_listener(cloud, lb.load_balancer_id, port=80, protocol="http")
    return lb


def gateway_vswitches(cloud: CloudState, spec: dict[str, Any], cluster_id: str) -> list[str]:
    """The vSwitches a config asks for, validated; default: the cluster's node vSwitch."""
    cluster = cloud.clusters.get(cluster_id)
    if cluster is None:
        raise GatewayError(f"cluster {cluster_id} not found")
    network = ((spec.get("common") or {}).get("network")) or {}
    wanted = list(network.get("vSwitches") or [])
    if not wanted:
        # Documented default: the vSwitch of the node running the controller pod.
        return [cluster.vswitch_ids[0]]
    for vsw_id in wanted:
        vsw = cloud.vswitches.get(vsw_id)
        if vsw is None:
            raise GatewayError(f"vswitch {vsw_id} not found")
        if vsw.vpc_id != cluster.vpc_id:
            raise GatewayError(
                f"vswitch {vsw_id} belongs to vpc {vsw.vpc_id}, "
                f"not the cluster vpc {cluster.vpc_id}"
            )
    return wanted


def find_gateway(cloud: CloudState, gateway_id: str) -> MseGateway | None:
    return cloud.gateways.get(gateway_id)


def gateway_of_config(cloud: CloudState, config_name: str) -> MseGateway | None:
    for gw in cloud.gateways.values():
        if gw.config_name == config_name:
            return gw
    return None


def provision(
    cloud: CloudState,
    ids: IdFactory,
    *,
    config_name: str,
    spec: dict[str, Any],
    cluster_id: str,
    public_by_default: bool = False,
) -> tuple[MseGateway, list[LoadBalancer]]:
    """Create (or, with ``spec.id``, adopt) the gateway; return it and the CLBs to open.

    ``public_by_default``: a config without publicSLBSpec still gets a public CLB, as the
    documented default of publicSLBSpec would give (topology ``mse_public_slb``).
    """
    vswitches = gateway_vswitches(cloud, spec, cluster_id)
    instance = ((spec.get("common") or {}).get("instance")) or {}
    network = ((spec.get("common") or {}).get("network")) or {}
    if spec.get("id"):
        gw = cloud.gateways.get(spec["id"])
        if gw is None:
            raise GatewayError(f"gateway {spec['id']} not found")
        gw.config_name = config_name
        gw.cluster_id = cluster_id
        lbs = [
            cloud.load_balancers[i]
            for i in (gw.private_slb_id, gw.public_slb_id)
            if i and i in cloud.load_balancers
        ]
        for lb in lbs:
            lb.tags[TAG_REUSED] = "true"
        return gw, lbs
    cluster = cloud.clusters[cluster_id]
    gw = MseGateway(
        # UNCONFIRMED: real ids read gw- + hex; the length is a guess.
        gateway_id="gw-" + ids.hex(32),
        name=spec.get("name") or "mse-ingress",
        config_name=config_name,
        cluster_id=cluster_id,
        vswitch_ids=vswitches,
        spec=instance.get("spec") or "4c8g",
        replicas=int(instance.get("replicas", 3)),
    )
    primary = cloud.vswitches[vswitches[0]]

    def clb(kind: str, spec: str, address_type: str, block: str) -> LoadBalancer:
        return _new_lb(
            cloud,
            ids,
            name=f"{gw.name}-{kind}",
            vpc_id=cluster.vpc_id,
            vswitch_id=primary.vswitch_id,
            spec=spec,
            address_type=address_type,
            address=_next_free_address(cloud, block),
            tags={TAG_CLUSTER: cluster_id, TAG_CONFIG: config_name},
        )

    private = clb(
        "private",
        network.get("privateSLBSpec") or DEFAULT_SLB_SPEC,
        "intranet",
        primary.cidr_block,
    )
    gw.private_slb_id = private.load_balancer_id
    lbs = [private]
    # Only an explicit publicSLBSpec makes a public CLB: this is what the egress procedure
    # relies on, though the docs leave it UNCONFIRMED (reference 1.2, gap 2).
    public_spec = network.get("publicSLBSpec") or (DEFAULT_SLB_SPEC if public_by_default else "")
    if public_spec:
        public = clb("public", public_spec, "internet", PUBLIC_CLB_BLOCK)
        gw.public_slb_id = public.load_balancer_id
        lbs.append(public)
    cloud.gateways[gw.gateway_id] = gw
    return gw, lbs


def release(cloud: CloudState, gw: MseGateway, *, reused: bool) -> list[str]:
    """Delete an auto-created gateway and its CLBs; a reused one (``spec.id``) is retained.

    Returns the ids of the CLBs the data plane must close: a retained gateway stops serving
    this cluster's Ingresses either way.
    """
    lb_ids = [i for i in (gw.private_slb_id, gw.public_slb_id) if i]
    if reused:
        gw.config_name = ""
        for i in lb_ids:
            if i in cloud.load_balancers:
                cloud.load_balancers[i].tags.pop(TAG_REUSED, None)
        return lb_ids
    for i in lb_ids:
        slb.delete_load_balancer(cloud, i)
    cloud.gateways.pop(gw.gateway_id, None)
    return lb_ids


def update_instance(gw: MseGateway, spec: dict[str, Any]) -> bool:
    """Apply instance spec/replicas changes; True when something changed."""
    instance = ((spec.get("common") or {}).get("instance")) or {}
    new_spec = instance.get("spec") or gw.spec
    new_replicas = int(instance.get("replicas", gw.replicas))
    changed = (new_spec, new_replicas) != (gw.spec, gw.replicas)
    gw.spec, gw.replicas = new_spec, new_replicas
    return changed
