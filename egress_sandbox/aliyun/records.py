"""The cloud resources the sandbox holds, as plain records.

These are state only. The rules that change them live in each product's ``models.py``;
the HTTP shapes live in each product's ``responses.py``. Records are dataclasses so the
whole cloud can be dumped to JSON and loaded back (``CloudState.to_dict``/``from_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Vpc:
    vpc_id: str
    vpc_name: str
    cidr_block: str
    region_id: str
    status: str = "Available"
    creation_time: str = "2026-01-01T00:00:00Z"


@dataclass
class VSwitch:
    vswitch_id: str
    vswitch_name: str
    vpc_id: str
    zone_id: str
    cidr_block: str
    status: str = "Available"
    creation_time: str = "2026-01-01T00:00:00Z"
    available_ip_address_count: int = 250


@dataclass
class Eip:
    allocation_id: str
    ip_address: str
    region_id: str
    status: str = "Available"  # Available | InUse | Associating | Unassociating
    instance_id: str = ""  # the NAT gateway it is bound to, when InUse
    instance_type: str = ""  # "Nat" when bound to a NAT gateway
    bandwidth: str = "5"
    name: str = ""
    allocation_time: str = "2026-01-01T00:00:00Z"


@dataclass
class SnatEntry:
    snat_entry_id: str
    snat_table_id: str
    nat_gateway_id: str
    snat_ip: str  # comma-separated EIP addresses
    source_vswitch_id: str = ""
    source_cidr: str = ""
    snat_entry_name: str = ""
    status: str = "Pending"  # Pending | Available | Deleting
    eip_affinity: str = "0"


@dataclass
class NatGateway:
    nat_gateway_id: str
    name: str
    vpc_id: str
    region_id: str
    vswitch_id: str
    snat_table_id: str
    forward_table_id: str
    network_type: str = "internet"  # internet | intranet
    nat_type: str = "Enhanced"
    status: str = "Available"  # Creating | Available | Modifying | Deleting | Converting
    spec: str = "Small"
    creation_time: str = "2026-01-01T00:00:00Z"


@dataclass
class LoadBalancer:
    load_balancer_id: str
    load_balancer_name: str
    address: str
    address_type: str  # intranet | internet
    vpc_id: str
    vswitch_id: str
    region_id: str
    load_balancer_spec: str
    status: str = "active"  # inactive | active | locked
    network_type: str = "vpc"
    master_zone_id: str = ""
    create_time: str = "2026-01-01T00:00Z"
    listeners: list[dict[str, Any]] = field(default_factory=list)  # {port, protocol}
    tags: dict[str, str] = field(default_factory=dict)
    # Where the emulated data plane really listens, per open listener: listener port -> the
    # loopback port bound on ``address`` (the same number unless it could not be bound).
    listen_ports: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # state.json stores the map with string keys (JSON objects have no integer keys).
        self.listen_ports = {int(k): int(v) for k, v in self.listen_ports.items()}

    @property
    def listen_port(self) -> int:
        """The real port of listener 80 (what clients of a plain-HTTP Ingress dial)."""
        return self.real_port(80)

    def real_port(self, port: int) -> int:
        return self.listen_ports.get(port, port)


@dataclass
class Addon:
    name: str
    version: str
    state: str = "active"  # initial | active | updating | upgrading | deleting | deleted
    config: str = ""


@dataclass
class Task:
    task_id: str
    cluster_id: str
    task_type: str
    state: str = "running"  # running | success | fail
    created: str = ""
    updated: str = ""
    error: dict[str, str] = field(default_factory=dict)


@dataclass
class Cluster:
    cluster_id: str
    name: str
    region_id: str
    vpc_id: str
    vswitch_ids: list[str]  # control plane / nodes
    cluster_type: str = "ManagedKubernetes"
    cluster_spec: str = "ack.pro.small"
    current_version: str = "1.32.1-aliyun.1"
    state: str = "running"
    security_group_id: str = ""
    created: str = "2026-01-01T00:00:00+08:00"
    addons: dict[str, Addon] = field(default_factory=dict)
    # The API server's URL (DescribeClusterDetail.master_url); the sandbox sets it at start.
    api_server_endpoint: str = ""


@dataclass
class NodePool:
    """An ACK node pool: its nodes live in ``vswitch_ids`` (the scaling group's vSwitches)."""

    nodepool_id: str
    name: str
    cluster_id: str
    vswitch_ids: list[str]
    is_default: bool = False
    state: str = "active"  # active | scaling | removing | deleting | updating
    size: int = 2
    created: str = "2026-01-01T00:00:00+08:00"


@dataclass
class RouteTable:
    """A VPC route table; the System one serves every vSwitch no Custom table is bound to."""

    route_table_id: str
    name: str
    vpc_id: str
    route_table_type: str  # System | Custom
    vswitch_ids: list[str] = field(default_factory=list)  # Custom tables only
    status: str = "Available"
    creation_time: str = "2026-01-01T00:00:00Z"


@dataclass
class RouteEntry:
    route_entry_id: str
    route_table_id: str
    destination_cidr_block: str
    next_hop_type: str  # NatGateway | Instance | ... ; "local" for the VPC's own system routes
    next_hop_id: str = ""
    type: str = "Custom"  # System | Custom
    status: str = "Available"
    name: str = ""


@dataclass
class MseGateway:
    """An MSE cloud-native gateway created by the emulated controller for a MseIngressConfig."""

    gateway_id: str
    name: str
    config_name: str  # the owning MseIngressConfig
    cluster_id: str
    vswitch_ids: list[str]
    spec: str
    replicas: int
    private_slb_id: str = ""
    public_slb_id: str = ""


@dataclass
class RamRole:
    """A RAM role of the account (RAM GetRole); the sandbox seeds only the MSE roles."""

    role_name: str
    role_id: str
    description: str = ""
    is_service_linked_role: bool = False
    assume_role_policy_document: str = ""
    create_date: str = "2026-01-01T00:00:00Z"


@dataclass
class AccessKey:
    access_key_id: str
    access_key_secret: str
    principal: str
    read_only: bool = False
    # The RAM policy document attached to the key's identity; None allows every action.
    policy: dict[str, Any] | None = None


@dataclass
class StsToken:
    """Temporary credentials the sandbox issued (the AssumeRole result a client would hold).

    A request signed with ``access_key_id``/``access_key_secret`` must also carry
    ``security_token`` (header ``x-acs-security-token``) and arrive before ``expiration``.
    """

    access_key_id: str  # "STS." + ...
    access_key_secret: str
    security_token: str
    principal: str
    expiration: str  # RFC3339 UTC, e.g. 2026-01-01T00:00:00Z
    read_only: bool = False


@dataclass
class BearerToken:
    """A bearer token (``x-acs-bearer-token``) the sandbox issued."""

    token: str
    principal: str
    expiration: str
    read_only: bool = False


@dataclass
class ClientTokenRecord:
    """What an idempotent Create*/Delete* call with a ClientToken returned the first time."""

    action: str
    fingerprint: str  # the other parameters of the first call, to detect misuse of a token
    result: str  # e.g. the SnatEntryId


def _load_balancer(data: dict[str, Any]) -> LoadBalancer:
    data = dict(data)
    # States saved before listeners other than 80 existed hold one ``listen_port``.
    legacy = data.pop("listen_port", None)
    if legacy is not None and "listen_ports" not in data:
        data["listen_ports"] = {80: legacy}
    return LoadBalancer(**data)


# Addon versions the emulated CS offers (DescribeClusterAddonsVersion / ListAddons).
AVAILABLE_ADDONS: dict[str, str] = {
    "mse-ingress-controller": "2.1.3",
    "nginx-ingress-controller": "1.12.1-aliyun.1",
    "ack-node-problem-detector": "1.2.20",
}


@dataclass
class CloudState:
    """Everything the emulated cloud knows, keyed by ID."""

    account_id: str
    region_id: str
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    vswitches: dict[str, VSwitch] = field(default_factory=dict)
    eips: dict[str, Eip] = field(default_factory=dict)
    nat_gateways: dict[str, NatGateway] = field(default_factory=dict)
    snat_entries: dict[str, SnatEntry] = field(default_factory=dict)
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    gateways: dict[str, MseGateway] = field(default_factory=dict)
    node_pools: dict[str, NodePool] = field(default_factory=dict)
    route_tables: dict[str, RouteTable] = field(default_factory=dict)
    route_entries: dict[str, RouteEntry] = field(default_factory=dict)
    # True: Ingress statuses carry a host name (as for an NLB) instead of the CLB's IP.
    status_hostnames: bool = False
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    sts_tokens: dict[str, StsToken] = field(default_factory=dict)  # by STS AccessKey id
    bearer_tokens: dict[str, BearerToken] = field(default_factory=dict)  # by token
    client_tokens: dict[str, ClientTokenRecord] = field(default_factory=dict)  # "Action:token"
    ram_roles: dict[str, RamRole] = field(default_factory=dict)  # by RoleName

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CloudState:
        def table(name: str, typ: type[Any]) -> dict[str, Any]:
            return {k: typ(**v) for k, v in data.get(name, {}).items()}

        clusters = {}
        for k, v in data.get("clusters", {}).items():
            v = dict(v)
            v["addons"] = {n: Addon(**a) for n, a in v.get("addons", {}).items()}
            clusters[k] = Cluster(**v)
        return cls(
            account_id=data["account_id"],
            region_id=data["region_id"],
            vpcs=table("vpcs", Vpc),
            vswitches=table("vswitches", VSwitch),
            eips=table("eips", Eip),
            nat_gateways=table("nat_gateways", NatGateway),
            snat_entries=table("snat_entries", SnatEntry),
            load_balancers={
                k: _load_balancer(v) for k, v in data.get("load_balancers", {}).items()
            },
            clusters=clusters,
            tasks=table("tasks", Task),
            gateways=table("gateways", MseGateway),
            node_pools=table("node_pools", NodePool),
            route_tables=table("route_tables", RouteTable),
            route_entries=table("route_entries", RouteEntry),
            status_hostnames=bool(data.get("status_hostnames", False)),
            access_keys=table("access_keys", AccessKey),
            sts_tokens=table("sts_tokens", StsToken),
            bearer_tokens=table("bearer_tokens", BearerToken),
            client_tokens=table("client_tokens", ClientTokenRecord),
            ram_roles=table("ram_roles", RamRole),
        )

    # Queries the data plane and the controller share -------------------------------------

    def eips_of_nat(self, nat_gateway_id: str) -> list[Eip]:
        return [e for e in self.eips.values() if e.instance_id == nat_gateway_id]

    def lb_hostname(self, lb: LoadBalancer) -> str:
        """The DNS name an NLB-style status gives for ``lb`` (shaped like NLB's real names)."""
        return f"nlb-{lb.load_balancer_id.split('-', 1)[1]}.{self.region_id}.nlb.aliyuncsslb.com"

    def pod_dns(self) -> dict[str, str]:
        """Name -> address for the names pods resolve: each load balancer's host name."""
        if not self.status_hostnames:
            return {}
        return {self.lb_hostname(lb): lb.address for lb in self.load_balancers.values()}

    def node_vswitch_ids(self, cluster_id: str) -> list[str]:
        """The vSwitches of the cluster's node pools (where its nodes and pods live)."""
        out: list[str] = []
        for pool in self.node_pools.values():
            if pool.cluster_id == cluster_id:
                out.extend(v for v in pool.vswitch_ids if v not in out)
        if not out and cluster_id in self.clusters:
            # A state saved before node pools existed: its cluster vSwitch hosted the nodes.
            out = list(self.clusters[cluster_id].vswitch_ids[:1])
        return out

    def route_table_of(self, vswitch_id: str) -> RouteTable | None:
        """The Custom table bound to the vSwitch, else its VPC's System table."""
        vsw = self.vswitches.get(vswitch_id)
        if vsw is None:
            return None
        tables = [t for t in self.route_tables.values() if t.vpc_id == vsw.vpc_id]
        bound = next((t for t in tables if vswitch_id in t.vswitch_ids), None)
        return bound or next((t for t in tables if t.route_table_type == "System"), None)

    def default_route_nat(self, vswitch_id: str) -> str | None:
        """The NAT gateway the vSwitch's ``0.0.0.0/0`` route points at, or None."""
        table = self.route_table_of(vswitch_id)
        if table is None:
            # A state saved before route tables existed: the old rule (SNAT alone) applies.
            return "*" if not self.route_tables else None
        for entry in self.route_entries.values():
            if (
                entry.route_table_id == table.route_table_id
                and entry.destination_cidr_block == "0.0.0.0/0"
                and entry.next_hop_type == "NatGateway"
                and entry.status == "Available"
            ):
                return entry.next_hop_id
        return None

    def snat_egress_ip(self, vswitch_id: str) -> str | None:
        """The public address traffic from ``vswitch_id`` leaves by, or None without a way out.

        Traffic leaves only when the vSwitch's route table sends ``0.0.0.0/0`` to an Internet
        NAT gateway, and that gateway has an Available SNAT entry that names the vSwitch (or
        whose SourceCIDR contains the vSwitch's CIDR) with one of its bound EIPs.
        """
        import ipaddress

        vsw = self.vswitches.get(vswitch_id)
        next_hop = self.default_route_nat(vswitch_id)
        if next_hop is None:
            return None
        for entry in self.snat_entries.values():
            if entry.status != "Available":
                continue
            if next_hop not in ("*", entry.nat_gateway_id):
                continue
            covers = entry.source_vswitch_id == vswitch_id
            if not covers and entry.source_cidr and vsw is not None:
                covers = ipaddress.IPv4Network(vsw.cidr_block).subnet_of(
                    ipaddress.IPv4Network(entry.source_cidr)
                )
            if not covers:
                continue
            nat = self.nat_gateways.get(entry.nat_gateway_id)
            if nat is None or nat.status != "Available" or nat.network_type != "internet":
                continue
            bound = {e.ip_address for e in self.eips_of_nat(nat.nat_gateway_id)}
            for ip in entry.snat_ip.split(","):
                if ip.strip() in bound:
                    return ip.strip()
        return None
