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
class AccessKey:
    access_key_id: str
    access_key_secret: str
    principal: str
    read_only: bool = False


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
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    sts_tokens: dict[str, StsToken] = field(default_factory=dict)  # by STS AccessKey id
    bearer_tokens: dict[str, BearerToken] = field(default_factory=dict)  # by token
    client_tokens: dict[str, ClientTokenRecord] = field(default_factory=dict)  # "Action:token"

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
            access_keys=table("access_keys", AccessKey),
            sts_tokens=table("sts_tokens", StsToken),
            bearer_tokens=table("bearer_tokens", BearerToken),
            client_tokens=table("client_tokens", ClientTokenRecord),
        )

    # Queries the data plane and the controller share -------------------------------------

    def eips_of_nat(self, nat_gateway_id: str) -> list[Eip]:
        return [e for e in self.eips.values() if e.instance_id == nat_gateway_id]

    def snat_egress_ip(self, vswitch_id: str) -> str | None:
        """The public address traffic from ``vswitch_id`` leaves by, or None without SNAT.

        Traffic leaves only through an Available SNAT entry that names the vSwitch (or whose
        SourceCIDR contains the vSwitch's CIDR) on an Available Internet NAT gateway, and only
        when that gateway has the entry's EIP bound.
        """
        import ipaddress

        vsw = self.vswitches.get(vswitch_id)
        for entry in self.snat_entries.values():
            if entry.status != "Available":
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
