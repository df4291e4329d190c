"""The seeded world the sandbox starts with, and the YAML file that overrides it.

Default: one VPC on 127.16.0.0/16 (loopback, so every private address the sandbox hands out
is one this machine can reach), a node vSwitch, a separate gateway vSwitch, an Internet NAT
gateway with one EIP and no SNAT entries, and one ACK cluster. IDs come from the seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from egress_sandbox.aliyun.records import (
    AccessKey,
    CloudState,
    Cluster,
    Eip,
    NatGateway,
    SnatEntry,
    Vpc,
    VSwitch,
)
from egress_sandbox.core.ids import IdFactory

TransitionMode = Literal["immediate", "timed", "manual"]


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
    cluster_vswitch: str = "nodes"
    cluster_id: str | None = None
    transitions: Transitions = Transitions()
    # AccessKeys: the admin key and a read-only one (for permission errors).
    access_key_id: str = "LTSANDBOXADMIN000000000"
    access_key_secret: str = "sandbox-admin-secret-0000000000"
    readonly_access_key_id: str = "LTSANDBOXREADONLY000000"
    readonly_access_key_secret: str = "sandbox-readonly-secret-000000"

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

    @classmethod
    def load(cls, path: str | Path | None) -> Topology:
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)


def build_cloud(topo: Topology, ids: IdFactory) -> CloudState:
    """Create the seeded cloud: deterministic for a given topology and seed."""
    cloud = CloudState(account_id=topo.account_id, region_id=topo.region_id)
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
    for ak in (
        AccessKey(topo.access_key_id, topo.access_key_secret, "sandbox-admin"),
        AccessKey(
            topo.readonly_access_key_id,
            topo.readonly_access_key_secret,
            "sandbox-readonly",
            read_only=True,
        ),
    ):
        cloud.access_keys[ak.access_key_id] = ak
    return cloud
