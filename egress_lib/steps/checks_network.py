"""Preflight's network facts and checks: which cluster, where its nodes live, a way out.

The kube context must reach the API server DescribeClusterDetail's ``master_url`` names, so
that Kubernetes objects and the SNAT entry never land in two different clusters.

The nodes' vSwitches come from the node pools, not from DescribeClusterDetail's
``vswitch_ids`` (the control plane's). SNAT alone does not open egress: the route table that
serves a vSwitch must also send ``0.0.0.0/0`` to the NAT gateway, and only the system table
gets that route when the NAT gateway is created. Nodes without SNAT pull images only from
ACR's VPC endpoints (docs/network-checks.md).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from egress_lib import inventory

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.steps.preflight import Check, Facts

Row = dict[str, Any]
DEFAULT_ROUTE = "0.0.0.0/0"
# ACR's VPC endpoints (Personal and Enterprise Edition): pulled without internet
# (https://www.alibabacloud.com/help/en/acr/user-guide/pull-images-over-a-vpc).
_VPC_REGISTRY = re.compile(
    r"^(registry-vpc\.[a-z0-9-]+\.aliyuncs\.com"
    r"|[a-z0-9-]+-registry-vpc\.[a-z0-9-]+\.cr\.aliyuncs\.com)$"
)


def gather(session: Session, vpc_id: str, gateway_vswitches: list[str]) -> dict[str, Any]:
    """The Facts fields this module fills: node pools, route tables, the gateway tables' routes."""
    tables = inventory.route_tables(session, vpc_id) if vpc_id else []
    wanted = {t for v in gateway_vswitches if (t := table_of(tables, v)) is not None}
    return {
        "node_pools": inventory.node_pools(session),
        "route_tables": tables,
        "route_entries": {t: inventory.route_entries(session, t) for t in sorted(wanted)},
    }


def table_of(tables: list[Row], vswitch_id: str) -> str | None:
    """The ID of the route table serving the vSwitch (a Custom one wins over the System one)."""
    serving = [t for t in tables if vswitch_id in _vswitches(t)]
    serving.sort(key=lambda t: t.get("RouteTableType") == "System")
    return str(serving[0]["RouteTableId"]) if serving else None


def _vswitches(table: Row) -> list[str]:
    return list((table.get("VSwitchIds") or {}).get("VSwitchId") or [])


def _hops(entry: Row) -> list[Row]:
    return list((entry.get("NextHops") or {}).get("NextHop") or [])


def _describe_default(entries: list[Row]) -> str:
    for e in entries:
        if e.get("DestinationCidrBlock") == DEFAULT_ROUTE:
            hops = ", ".join(f"{h.get('NextHopType')} {h.get('NextHopId')}" for h in _hops(e))
            return f"sends {DEFAULT_ROUTE} to {hops or 'no next hop'}"
    return f"has no {DEFAULT_ROUTE} route"


def checks(session: Session, f: Facts, nat_gateway_id: str | None) -> list[Check]:
    """The cluster-identity check, one route check per gateway vSwitch, the image check."""
    server = str(getattr(session.api_client.configuration, "host", "") or "")
    identity = identity_check(f.cluster, server, session.params.kube_context)
    image = image_check(f, session.params.verify.image)
    gateway = list(session.params.gateway.vswitches)
    return [identity, *route_checks(f, nat_gateway_id, gateway), image]


def registry_of(image: str) -> str:
    """The registry host of an image reference; ``docker.io`` when it names none."""
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _nodes_with_snat(f: Facts) -> list[str]:
    cidrs = {v.get("VSwitchId"): v.get("CidrBlock") for v in f.vswitches}
    out = []
    for vsw in f.node_vswitches:
        for s in f.snat_entries:
            if s.get("Status") != "Available":
                continue
            source, cidr = s.get("SourceCIDR"), cidrs.get(vsw)
            if s.get("SourceVSwitchId") == vsw or (
                source
                and cidr
                and ipaddress.IPv4Network(cidr).subnet_of(ipaddress.IPv4Network(source))
            ):
                out.append(vsw)
                break
    return out


def image_check(f: Facts, image: str) -> Check:
    """Nodes without SNAT pull only over the VPC: warn when verify.image needs internet."""
    from egress_lib.steps.preflight import Check

    registry = registry_of(image)
    vpc = bool(_VPC_REGISTRY.match(registry))
    with_snat = _nodes_with_snat(f)
    ok = vpc or bool(with_snat)
    if vpc:
        detail = f"{image} is pulled from {registry}, over the VPC"
    elif with_snat:
        detail = f"{registry} needs internet; the nodes' vSwitch {with_snat[0]} has SNAT"
    else:
        nodes = ", ".join(f.node_vswitches) or "no node vSwitch"
        detail = (
            f"{registry} needs internet, but the nodes' vSwitches ({nodes}) have no SNAT: "
            "the verify pod will fail to pull its image (ErrImagePull)"
        )
    return Check(
        "verify.image can be pulled by the nodes",
        ok,
        detail,
        level="warning",
        fix="push curl to an ACR namespace and set verify.image to its VPC path "
        "(registry-vpc.<region>.aliyuncs.com/<namespace>/curl:<tag>)",
    )


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return (parts.hostname or "").lower(), parts.port or (80 if parts.scheme == "http" else 443)


def identity_check(cluster: Row, server: str, context: str | None) -> Check:
    """The kube context's API server is one of the cluster's (public or intranet endpoint)."""
    from egress_lib.steps.preflight import AGAIN, Check

    cluster_id = cluster.get("cluster_id")
    try:
        master = json.loads(str(cluster.get("master_url") or "{}"))
    except ValueError:
        master = {}
    endpoints = sorted(
        str(v) for k, v in (master if isinstance(master, dict) else {}).items() if v and "api" in k
    )
    name = f"kube context {context or '(current)'} is cluster {cluster_id}"
    if not endpoints:
        return Check(
            name,
            False,
            f"DescribeClusterDetail gives no API server endpoint for {cluster_id}: cannot "
            f"confirm that {server} is this cluster",
            level="warning",
            fix=f"compare {server} with the API server in the ACK console (Cluster Information)",
        )
    ok = _endpoint(server) in {_endpoint(e) for e in endpoints}
    return Check(
        name,
        ok,
        f"{server} is {cluster_id}'s API server"
        if ok
        else f"the kube context talks to {server}, but {cluster_id}'s API server is "
        f"{' or '.join(endpoints)}: Kubernetes objects and SNAT would land in two clusters",
        fix=f"set kubeconfig/kube_context to {cluster_id}'s (ACK console, Connection "
        f"Information, or DescribeClusterUserKubeconfig), or cluster_id to the context's "
        f"cluster, then {AGAIN}",
    )


def route_checks(f: Facts, nat_gateway_id: str | None, gateway_vswitches: list[str]) -> list[Check]:
    """For each gateway vSwitch: its route table sends 0.0.0.0/0 to the NAT gateway."""
    from egress_lib.steps.preflight import AGAIN, Check

    if not nat_gateway_id:
        return []  # the NAT gateway check above already failed and says why
    out: list[Check] = []
    in_vpc = {v.get("VSwitchId") for v in f.vswitches}
    for vsw in gateway_vswitches:
        table_id = table_of(f.route_tables, vsw)
        if vsw not in in_vpc or table_id is None:
            continue  # "vSwitch ... in the cluster's VPC" reports it
        entries = f.route_entries.get(table_id, [])
        ok = any(
            e.get("DestinationCidrBlock") == DEFAULT_ROUTE
            and e.get("Status", "Available") == "Available"
            and any(
                h.get("NextHopType") == "NatGateway" and h.get("NextHopId") == nat_gateway_id
                for h in _hops(e)
            )
            for e in entries
        )
        kind = next(
            (t.get("RouteTableType") for t in f.route_tables if t.get("RouteTableId") == table_id),
            "",
        )
        out.append(
            Check(
                f"route {DEFAULT_ROUTE} of {vsw} to the NAT gateway",
                ok,
                f"route table {table_id} ({kind}) sends {DEFAULT_ROUTE} to {nat_gateway_id}"
                if ok
                else f"route table {table_id} ({kind}) serving {vsw} {_describe_default(entries)}:"
                " the gateway has no way out, whatever its SNAT entry",
                fix=f"add to route table {table_id} a route entry {DEFAULT_ROUTE} with next hop "
                f"NAT gateway {nat_gateway_id} (VPC console, Route Tables; or aliyun vpc "
                f"CreateRouteEntry --RouteTableId {table_id} --DestinationCidrBlock "
                f"{DEFAULT_ROUTE} --NextHopType NatGateway --NextHopId {nat_gateway_id}), "
                f"then {AGAIN}",
            )
        )
    return out
