"""The seeded world the sandbox starts with, and the YAML file that overrides it.

Default: one VPC on 127.16.0.0/16 (loopback, so every private address the sandbox hands out
is one this machine can reach), a node vSwitch, a separate gateway vSwitch, an Internet NAT
gateway with one EIP and no SNAT entries, the VPC's system route table with ``0.0.0.0/0`` to
that NAT gateway, and one ACK cluster whose control plane and default node pool share the node
vSwitch (``cluster_vswitch`` and ``node_pools`` set them apart). IDs come from the seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from egress_sandbox.aliyun.common.ram_policy import PolicyDocument
from egress_sandbox.aliyun.ram.models import seed_mse_roles
from egress_sandbox.aliyun.records import (
    AccessKey,
    CloudState,
    Cluster,
    Eip,
    NatGateway,
    NodePool,
    RouteEntry,
    RouteTable,
    SnatEntry,
    Vpc,
    VSwitch,
)
from egress_sandbox.core.credentials import random_secret
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.dataplane.origin_rules import OriginHost

TransitionMode = Literal["immediate", "timed", "manual"]
SECRET_FIELDS = ("access_key_secret", "readonly_access_key_secret")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Transition(_Strict):
    """How a kind of resource moves between states: at once, after N seconds, or when told."""

    mode: TransitionMode = "timed"
    seconds: float = 0.2


class Transitions(_Strict):
    snat_entry: Transition = Transition(seconds=0.3)
    # Creating -> Available, for NAT gateways listed with ``status: Creating``.
    nat_gateway: Transition = Transition(seconds=0.3)
    addon_install: Transition = Transition(seconds=0.5)
    # Each of Pending->Running and Running->Listening takes this long.
    mse_gateway: Transition = Transition(seconds=0.5)


class VSwitchSpec(_Strict):
    name: str
    cidr: str
    zone: str = "cn-hangzhou-k"
    id: str | None = None


class NatSpec(_Strict):
    name: str = "egress-nat"
    id: str | None = None
    vswitch: str = "nodes"  # name of the vSwitch the NAT gateway sits in
    eips: int = 1
    # Pre-existing SNAT entries: each names a vSwitch (by name) or a CIDR.
    snat_entries: list[dict[str, str]] = Field(default_factory=list)
    # "Creating": the gateway is still being created when the sandbox starts and becomes
    # Available after ``transitions.nat_gateway``.
    status: Literal["Creating", "Available"] = "Available"


class NodePoolSpec(_Strict):
    name: str = "default-nodepool"
    vswitches: list[str] = Field(default_factory=lambda: ["nodes"])  # vSwitch names


class RouteTableSpec(_Strict):
    """A Custom route table bound to vSwitches (by name); no routes but the VPC's own."""

    name: str
    vswitches: list[str]
    # True: add 0.0.0.0/0 -> the first NAT gateway, as an operator does by hand.
    default_route: bool = False


class TlsSecretSpec(_Strict):
    """A kubernetes.io/tls Secret the cluster already has, issued by the sandbox CA."""

    namespace: str = "default"
    name: str
    hosts: list[str] = Field(default_factory=list)  # a server certificate for these names
    client: bool = False  # a client certificate (CN = common_name) instead
    common_name: str = "egress-gateway"


def _default_origin_hosts() -> list[OriginHost]:
    # parameters/sandbox-policies.yaml's payment API: mTLS with SNI, as payment providers do.
    return [
        OriginHost(host="api.payments.example", require_sni=True, require_client_certificate=True)
    ]


def _default_secrets() -> list[TlsSecretSpec]:
    return [
        TlsSecretSpec(name="egress-client-cert", client=True),
        TlsSecretSpec(name="payments-gateway-tls", hosts=["api.payments.example"]),
    ]


class Topology(_Strict):
    seed: int = 20250108
    region_id: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    vpc_cidr: str = "127.16.0.0/16"
    vpc_name: str = "ack-egress-vpc"
    vswitches: list[VSwitchSpec] = Field(
        default_factory=lambda: [
            VSwitchSpec(name="nodes", cidr="127.16.1.0/24"),
            VSwitchSpec(name="gateway", cidr="127.16.2.0/24"),
        ]
    )
    nat_gateways: list[NatSpec] = Field(default_factory=lambda: [NatSpec()])
    extra_eips: int = 0  # unbound EIPs, for paging tests
    cluster_name: str = "egress-demo"
    # DescribeClusterDetail.vswitch_ids (the control plane's); the nodes' are node_pools'.
    cluster_vswitch: str = "nodes"
    node_pools: list[NodePoolSpec] = Field(default_factory=lambda: [NodePoolSpec()])
    # The first Internet NAT gateway adds 0.0.0.0/0 to the system route table only
    # (https://www.alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/enable-an-existing-ack-cluster-to-access-the-internet).
    system_default_route: bool = True
    route_tables: list[RouteTableSpec] = Field(default_factory=list)
    # True: the MSE controller writes Ingress status ``hostname`` (an NLB's DNS name), not ``ip``.
    ingress_status_hostname: bool = False
    cluster_id: str | None = None
    # The pods' addresses (Flannel-style, outside the VPC): the same for every loopback block,
    # so that the IP lists of a parameters file fit every sandbox. hostNetwork pods get the
    # node's address instead.
    pod_cidr: str = "127.244.0.0/16"
    # Hosts of the "internet" that require SNI or a client certificate, or are down.
    origin_hosts: list[OriginHost] = Field(default_factory=_default_origin_hosts)
    # Objects the cluster already has, as an operator's would: TLS Secrets from the sandbox
    # CA, and an audit echo server (namespace egress-audit, Service audit:8080) that traffic
    # can be mirrored to.
    seed_secrets: list[TlsSecretSpec] = Field(default_factory=_default_secrets)
    audit_service: bool = True
    transitions: Transitions = Transitions()
    # The RAM roles MSE Ingress needs (AliyunServiceRoleForMSE, AliyunCSManagedMseRole); false:
    # the account was never authorized, so MseIngressConfigs go Failed.
    mse_roles: bool = True
    # Every gateway also gets an Internet-facing SLB, as if the documented default
    # publicSLBSpec (slb.s2.small) applied to a config that names only privateSLBSpec.
    mse_public_slb: bool = False
    # AccessKeys: the admin key and a read-only one (for permission errors). The IDs are no
    # secret and stay fixed. The secrets are random: each Topology draws its own, and a Sandbox
    # draws new ones for each fresh home unless the topology names them (with_fresh_secrets);
    # they are never dumped (a dumped topology file must not pin them, nor leak them).
    access_key_id: str = "LTSANDBOXADMIN000000000"
    access_key_secret: str = Field(default_factory=random_secret, repr=False, exclude=True)
    readonly_access_key_id: str = "LTSANDBOXREADONLY000000"
    readonly_access_key_secret: str = Field(default_factory=random_secret, repr=False, exclude=True)
    # A RAM policy document for the admin key's identity (Allow/Deny per RAM action, with
    # wildcards); None allows every action.
    admin_ram_policy: PolicyDocument | None = None

    @classmethod
    def loopback(cls, second_octet: int, transition_seconds: float = 0.05) -> Topology:
        """The default world on ``127.<octet>.0.0/16`` with fast transitions.

        Tests and notebook runs each take their own block, so that their CLB addresses never
        collide with a ``make demo`` sandbox (127.16.0.0/16) running beside them. The IDs do not
        depend on the addresses, so parameters/sandbox.yaml fits every block.
        """
        fast = Transition(mode="timed", seconds=transition_seconds)
        return cls(
            vpc_cidr=f"127.{second_octet}.0.0/16",
            vswitches=[
                VSwitchSpec(name="nodes", cidr=f"127.{second_octet}.1.0/24"),
                VSwitchSpec(name="gateway", cidr=f"127.{second_octet}.2.0/24"),
            ],
            transitions=Transitions(
                snat_entry=fast, nat_gateway=fast, addon_install=fast, mse_gateway=fast
            ),
        )

    def with_fresh_secrets(self) -> Topology:
        """A copy whose AccessKey secrets are new random ones, but for those this topology names.

        Shallow: the copy shares ``transitions`` (which `egress-sandbox transition set` changes).
        """
        drawn = {f: random_secret() for f in SECRET_FIELDS if f not in self.model_fields_set}
        return self.model_copy(update=drawn)

    @classmethod
    def load(cls, path: str | Path | None) -> Topology:
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)


def build_cloud(topo: Topology, ids: IdFactory) -> CloudState:
    """Create the seeded cloud: deterministic for a given topology and seed."""
    cloud = CloudState(account_id=topo.account_id, region_id=topo.region_id)
    cloud.status_hostnames = topo.ingress_status_hostname
    vpc = Vpc(ids.resource_id("vpc"), topo.vpc_name, topo.vpc_cidr, topo.region_id)
    cloud.vpcs[vpc.vpc_id] = vpc
    by_name: dict[str, VSwitch] = {}
    for spec in topo.vswitches:
        vsw = VSwitch(
            spec.id or ids.resource_id("vsw"), spec.name, vpc.vpc_id, spec.zone, spec.cidr
        )
        cloud.vswitches[vsw.vswitch_id] = vsw
        by_name[spec.name] = vsw
    eip_n = 0

    def new_eip() -> Eip:
        nonlocal eip_n
        eip_n += 1
        # 47.96.0.0/16 is an Alibaba Cloud hangzhou range; these addresses are only ever
        # reported, never connected to.
        ip = f"47.96.{eip_n // 250}.{10 + eip_n % 250}"
        return Eip(ids.resource_id("eip"), ip, topo.region_id, name=f"eip-{eip_n}")

    for nat_spec in topo.nat_gateways:
        nat = NatGateway(
            nat_gateway_id=nat_spec.id or ids.resource_id("ngw"),
            name=nat_spec.name,
            vpc_id=vpc.vpc_id,
            region_id=topo.region_id,
            vswitch_id=by_name[nat_spec.vswitch].vswitch_id,
            snat_table_id=ids.resource_id("stb"),
            forward_table_id=ids.resource_id("ftb"),
            status=nat_spec.status,
        )
        cloud.nat_gateways[nat.nat_gateway_id] = nat
        bound = []
        for _ in range(nat_spec.eips):
            eip = new_eip()
            eip.status, eip.instance_id, eip.instance_type = "InUse", nat.nat_gateway_id, "Nat"
            cloud.eips[eip.allocation_id] = eip
            bound.append(eip)
        for raw in nat_spec.snat_entries:
            entry = SnatEntry(
                snat_entry_id=ids.resource_id("snat"),
                snat_table_id=nat.snat_table_id,
                nat_gateway_id=nat.nat_gateway_id,
                snat_ip=raw.get("snat_ip") or bound[0].ip_address,
                source_vswitch_id=by_name[raw["vswitch"]].vswitch_id if "vswitch" in raw else "",
                source_cidr=raw.get("cidr", ""),
                snat_entry_name=raw.get("name", ""),
                status="Available",
            )
            cloud.snat_entries[entry.snat_entry_id] = entry
    for _ in range(topo.extra_eips):
        eip = new_eip()
        cloud.eips[eip.allocation_id] = eip
    cluster = Cluster(
        cluster_id=topo.cluster_id or ids.cluster_id(),
        name=topo.cluster_name,
        region_id=topo.region_id,
        vpc_id=vpc.vpc_id,
        vswitch_ids=[by_name[topo.cluster_vswitch].vswitch_id],
        security_group_id=ids.resource_id("sg"),
    )
    cloud.clusters[cluster.cluster_id] = cluster
    _build_network(topo, ids, cloud, vpc, by_name, cluster.cluster_id)
    for ak in (
        AccessKey(
            topo.access_key_id,
            topo.access_key_secret,
            "sandbox-admin",
            policy=topo.admin_ram_policy,
        ),
        AccessKey(
            topo.readonly_access_key_id,
            topo.readonly_access_key_secret,
            "sandbox-readonly",
            read_only=True,
        ),
    ):
        cloud.access_keys[ak.access_key_id] = ak
    if topo.mse_roles:
        seed_mse_roles(cloud, ids)
    return cloud


def _build_network(
    topo: Topology,
    ids: IdFactory,
    cloud: CloudState,
    vpc: Vpc,
    by_name: dict[str, VSwitch],
    cluster_id: str,
) -> None:
    """Node pools and route tables; their IDs have streams of their own, so adding them
    leaves every other seeded ID as it was."""
    for n, spec in enumerate(topo.node_pools):
        pool = NodePool(
            nodepool_id="np" + ids.hex(32, stream="nodepool"),
            name=spec.name,
            cluster_id=cluster_id,
            vswitch_ids=[by_name[v].vswitch_id for v in spec.vswitches],
            is_default=n == 0,
        )
        cloud.node_pools[pool.nodepool_id] = pool
    # The system table's ID is the one DescribeVpcs has always reported for the VPC.
    system = RouteTable("vtb-" + vpc.vpc_id.split("-", 1)[1], "", vpc.vpc_id, "System")
    internet = [n for n in cloud.nat_gateways.values() if n.network_type == "internet"]
    tables: list[tuple[RouteTable, bool]] = [(system, topo.system_default_route)]
    for rt in topo.route_tables:
        custom = RouteTable(
            ids.resource_id("vtb"),
            rt.name,
            vpc.vpc_id,
            "Custom",
            [by_name[v].vswitch_id for v in rt.vswitches],
        )
        tables.append((custom, rt.default_route))
    for table, default_route in tables:
        cloud.route_tables[table.route_table_id] = table
        # Every table routes the VPC's own CIDR locally, as the real one does.
        local = RouteEntry(
            ids.resource_id("rte"), table.route_table_id, vpc.cidr_block, "local", type="System"
        )
        cloud.route_entries[local.route_entry_id] = local
        if default_route and internet:
            entry = RouteEntry(
                ids.resource_id("rte"),
                table.route_table_id,
                "0.0.0.0/0",
                "NatGateway",
                internet[0].nat_gateway_id,
            )
            cloud.route_entries[entry.route_entry_id] = entry
