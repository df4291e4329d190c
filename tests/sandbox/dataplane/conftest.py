"""An in-process world: Store + CloudState + DataPlane + MseController + Kubelet, tiny delays."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from waiting import wait_for  # the tests import it from here

from egress_sandbox.aliyun.records import CloudState, SnatEntry
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.dataplane import DataPlane
from egress_sandbox.k8s.store import Store
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.kubelet import Kubelet
from egress_sandbox.mse.controller import MseController
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG
from egress_sandbox.topology import Topology, Transition, Transitions, build_cloud

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

Obj = dict[str, Any]


def add_snat(
    cloud: CloudState, cloud_lock: threading.RLock, ids: IdFactory, vswitch_id: str
) -> str:
    """Insert an Available SNAT entry for a vSwitch; returns the EIP it leaves by."""
    with cloud_lock:
        nat = next(iter(cloud.nat_gateways.values()))
        eip = cloud.eips_of_nat(nat.nat_gateway_id)[0]
        entry_id = ids.resource_id("snat")
        cloud.snat_entries[entry_id] = SnatEntry(
            entry_id,
            nat.snat_table_id,
            nat.nat_gateway_id,
            eip.ip_address,
            source_vswitch_id=vswitch_id,
            status="Available",
        )
        return eip.ip_address


@dataclass
class World:
    store: Store
    cloud: CloudState
    cloud_lock: threading.RLock
    ids: IdFactory
    scheduler: Scheduler
    dataplane: DataPlane
    controller: MseController
    kubelet: Kubelet
    home: Path
    cluster_id: str

    @classmethod
    def of(cls, box: Sandbox) -> World:
        """A whole Sandbox's parts under these names."""
        return cls(
            box.store,
            box.cloud,
            box.cloud_lock,
            box.ids,
            box.scheduler,
            box.dataplane,
            box.mse,
            box.kubelet,
            box.home,
            box.cluster_id,
        )

    def rt(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.store.types.get(group, version, plural)
        assert rt is not None
        return rt

    @property
    def services(self) -> ResourceType:
        return self.rt("", "v1", "services")

    @property
    def ingresses(self) -> ResourceType:
        return self.rt("networking.k8s.io", "v1", "ingresses")

    @property
    def ingress_classes(self) -> ResourceType:
        return self.rt("networking.k8s.io", "v1", "ingressclasses")

    @property
    def pods(self) -> ResourceType:
        return self.rt("", "v1", "pods")

    def vswitch(self, name: str) -> str:
        return next(v.vswitch_id for v in self.cloud.vswitches.values() if v.vswitch_name == name)

    def install(self) -> None:
        self.controller.addon_installed(self.cluster_id, "mse-ingress-controller", "2.1.3", "")

    def config(self, name: str) -> Obj | None:
        return self.store.try_get(MSE_INGRESS_CONFIG, None, name)

    def phase(self, name: str) -> str | None:
        cfg = self.config(name)
        return (cfg.get("status") or {}).get("phase") if cfg else None

    def wait_phase(self, name: str, phase: str, timeout: float = 10.0) -> Obj:
        wait_for(lambda: self.phase(name) == phase, timeout, f"{name} phase {phase}")
        cfg = self.config(name)
        assert cfg is not None
        return cfg

    def add_snat(self, vswitch_name: str) -> str:
        """Insert an Available SNAT entry for a vSwitch; returns the EIP it leaves by."""
        return add_snat(self.cloud, self.cloud_lock, self.ids, self.vswitch(vswitch_name))

    def events(self, reason: str | None = None) -> list[Obj]:
        items, _ = self.store.list(self.rt("", "v1", "events"))
        items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))  # in creation order
        return [e for e in items if reason is None or e["reason"] == reason]


@pytest.fixture
def world() -> Iterator[World]:
    home = Path(tempfile.mkdtemp(prefix="sbx-"))  # short: UNIX socket paths are limited
    ids = IdFactory(20250108)
    fast = Transition(mode="timed", seconds=0.05)
    topo = Topology(
        transitions=Transitions(
            snat_entry=fast,
            nat_gateway=fast,
            addon_install=fast,
            mse_gateway=fast,
        )
    )
    cloud = build_cloud(topo, ids)
    store = Store(ids)
    lock = threading.RLock()
    scheduler = Scheduler()
    pki = SandboxPki(home)
    dataplane = DataPlane(
        store, cloud, cloud_lock=lock, ids=ids, pki=pki, podnet_socket=home / "podnet.sock"
    )
    controller = MseController(
        store,
        cloud,
        cloud_lock=lock,
        ids=ids,
        scheduler=scheduler,
        transitions=topo.transitions,
        dataplane=dataplane,
        kubeconfig=lambda: "apiVersion: v1\nkind: Config\n",
    )
    kubelet = Kubelet(
        store, podnet_socket=home / "podnet.sock", ids=ids, ca_bundle=pki.ca_path, max_runtime=20
    )
    ns_rt = store.types.get("", "v1", "namespaces")
    assert ns_rt is not None
    for ns in ("default", "kube-system"):
        store.create(ns_rt, {"metadata": {"name": ns}})
    dataplane.start()
    controller.start()
    kubelet.start()
    w = World(
        store,
        cloud,
        lock,
        ids,
        scheduler,
        dataplane,
        controller,
        kubelet,
        home,
        next(iter(cloud.clusters)),
    )
    try:
        yield w
    finally:
        kubelet.stop()
        controller.stop()
        scheduler.stop()
        dataplane.stop()
        shutil.rmtree(home, ignore_errors=True)
