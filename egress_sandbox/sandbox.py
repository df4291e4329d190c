"""Assembles the whole sandbox: cloud, cluster, controller, kubelet, data plane, and their servers.

``Sandbox(home).start()`` runs everything on daemon threads in this process; the CLI runs it in
a background process of its own. The home folder receives what clients need to connect:
``sandbox.json`` (endpoints and the sandbox's AccessKey, mode 0600) and ``kubeconfig``.
``stop()`` saves the world to ``state.json`` and the next ``start()`` with the same home loads
it (see ``persistence.py``); ``persist=False`` opts out (a throw-away sandbox). A home has one
sandbox at a time: ``start()`` takes the home's lock first (``homelock.py``) and refuses,
naming the owner's pid, when another sandbox holds it.

The bearer tokens and AccessKey secrets are random per home (``core/credentials.py``) and kept
in ``state.json``; the IDs come from the topology's seed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from typing_extensions import Self

from egress_sandbox import persistence
from egress_sandbox.aliyun.ram.models import restore_legacy_roles
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.aliyun.server import OpenApiServer
from egress_sandbox.control.actions import SandboxControls
from egress_sandbox.control.server import ControlApp, ControlServer
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.credentials import bearer_token
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.core.stuck import StuckRegistry
from egress_sandbox.dataplane import DataPlane
from egress_sandbox.homelock import HomeLock
from egress_sandbox.k8s import persist as k8s_persist
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.bootstrap import bootstrap_cluster
from egress_sandbox.k8s.server import KubeApiServer
from egress_sandbox.k8s.store import Store
from egress_sandbox.kubelet import Kubelet
from egress_sandbox.kubelet.podips import node_pod_subnet
from egress_sandbox.mse.controller import MseController
from egress_sandbox.seed_objects import seed_objects
from egress_sandbox.topology import Topology, build_cloud

log = logging.getLogger(__name__)

SANDBOX_FILE = "sandbox.json"
KUBECONFIG_FILE = "kubeconfig"


def default_home() -> Path:
    """``$EGRESS_SANDBOX_HOME``, else ``$XDG_STATE_HOME/egress-sandbox``."""
    env = os.environ.get("EGRESS_SANDBOX_HOME")
    if env:
        return Path(env).expanduser().resolve()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "egress-sandbox"


@dataclass(frozen=True)
class Tokens:
    admin: str
    readonly: str


class Sandbox:
    """One emulated ACK cluster in one VPC, with its cloud APIs and gateway data plane."""

    def __init__(
        self,
        home: Path,
        topology: Topology | None = None,
        *,
        k8s_port: int = 0,
        aliyun_port: int = 0,
        control_port: int = 0,
        clb_port: int = 80,
        persist: bool = True,
        topology_path: Path | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.topology = topology or Topology()
        self.topology_path = topology_path  # recorded in sandbox.json, for `reset` to reuse
        self._ports = {"k8s": k8s_port, "aliyun": aliyun_port, "control": control_port}
        self._clb_port = clb_port
        self._persist = persist
        self._started = False
        self._home_lock = HomeLock(self.home)
        self._running: list[_Stoppable] = []  # what runs, in start order
        self.restored = False  # whether start() loaded a saved world
        self.cloud_lock = threading.RLock()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start everything; HomeInUse (naming the owner's pid) when the home has a sandbox."""
        if self._started:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        # Before anything in the home is read or written (a fresh world clears the audit log).
        self._home_lock.acquire()
        try:
            self._start()
        except BaseException:
            self._abort()
            raise
        return self

    def _start(self) -> None:
        saved = persistence.load(self.home) if self._persist else None
        self.restored = saved is not None
        topo = self.topology
        self.ids = IdFactory(topo.seed)
        self.audit = AuditLog(self.home / "audit.jsonl")
        self.scheduler = Scheduler()
        self._running = [self.scheduler]
        self.stuck = StuckRegistry()
        self.store = Store(self.ids)
        if saved is not None:
            # The saved world wins over the topology file, which only seeds a fresh world.
            self.ids.restore(saved.ids)
            self.cloud: CloudState = CloudState.from_dict(saved.cloud)
            restore_legacy_roles(self.cloud, saved.cloud)
            topo = self.topology = _with_saved_keys(topo, self.cloud)
            self.pki = SandboxPki(self.home, SandboxPki.ca_from_pems(saved.ca))
            k8s_persist.restore(self.store, saved.k8s)
            self.tokens = Tokens(saved.tokens["admin"], saved.tokens["readonly"])
            self.audit.load()
            for name, port in saved.ports.items():
                if self._ports.get(name) == 0 and _port_free(port):
                    self._ports[name] = port
        else:
            topo = self.topology = topo.with_fresh_secrets()  # this home's own
            self.cloud = build_cloud(topo, self.ids)
            self.pki = SandboxPki(self.home)
            self.audit.clear()
        node_ip = str(next(iter(ipaddress.ip_network(self._node_cidr()).hosts())) + 9)
        node_name = f"{topo.region_id}.{node_ip}"
        bootstrap_cluster(  # creates only what is missing
            self.store,
            node_name=node_name,
            node_ip=node_ip,
            pod_cidr=str(node_pod_subnet(topo.pod_cidr, node_ip)),
            region=topo.region_id,
        )
        if saved is None:
            # Random, not from the seed: with seeded tokens every sandbox had the same admin.
            self.tokens = Tokens(bearer_token(), bearer_token())
            seed_objects(self.store, topo, self.pki)  # a restored world keeps what it saved

        self.dataplane = DataPlane(
            self.store,
            self.cloud,
            cloud_lock=self.cloud_lock,
            ids=self.ids,
            pki=self.pki,
            prefer_port=self._clb_port,
            podnet_socket=self.podnet_socket,
            origin_hosts=list(topo.origin_hosts),
        )
        if self.dataplane.podnet is not None:
            self.dataplane.podnet.node_ip = node_ip  # the node's own socket leaves from here
        self.mse = MseController(
            self.store,
            self.cloud,
            cloud_lock=self.cloud_lock,
            ids=self.ids,
            scheduler=self.scheduler,
            transitions=topo.transitions,
            dataplane=self.dataplane,
            kubeconfig=self.kubeconfig_text,
            stuck=self.stuck,
            public_slb_by_default=topo.mse_public_slb,
        )
        self.kubelet = Kubelet(
            self.store,
            podnet_socket=self.podnet_socket,
            ids=self.ids,
            node_name=node_name,
            host_ip=node_ip,
            ca_bundle=self.pki.ca_path,
            pod_dns=self._pod_dns,
            internet=self._nodes_reach_internet,
            pod_cidr=topo.pod_cidr,
        )
        self.k8s = KubeApiServer(
            self.store,
            port=self._ports["k8s"],
            ssl_context=self.pki.server_context("127.0.0.1", "localhost"),
            users={
                self.tokens.admin: User("sandbox-admin", ("system:masters",), read_only=False),
                self.tokens.readonly: User(
                    "sandbox-readonly", ("system:authenticated",), read_only=True
                ),
            },
            audit=self.audit,
            pod_logs=self.kubelet.logs,
        )
        self.aliyun = OpenApiServer(
            self.cloud,
            lock=self.cloud_lock,
            ids=self.ids,
            scheduler=self.scheduler,
            transitions=topo.transitions,
            hooks=self.mse,
            audit=self.audit,
            port=self._ports["aliyun"],
            stuck=self.stuck,
        )
        self.controls = SandboxControls(self)
        self.control = ControlServer(
            ControlApp(
                self.controls,
                admin_token=self.tokens.admin,
                readonly_token=self.tokens.readonly,
                audit=self.audit,
                ids=self.ids,
            ),
            port=self._ports["control"],
        )
        self._run(self.dataplane)
        self._run(self.mse)  # its first resync reopens saved CLBs and resumes saved phases
        # Saved worlds stopped mid-transition, and a fresh topology may seed a NAT gateway
        # Creating: both need their next steps scheduled.
        self.aliyun.resume()
        self._run(self.kubelet)
        self._run(self.k8s)
        with self.cloud_lock:
            # master_url names this API server, as ACK's names the cluster's own.
            for cluster in self.cloud.clusters.values():
                cluster.api_server_endpoint = self.k8s.url
        self._run(self.aliyun)
        self._run(self.control)
        self._started = True
        self._write_home()
        log.info(
            "sandbox up%s: k8s %s, aliyun %s, control %s",
            " (saved state loaded)" if saved is not None else "",
            self.k8s.url,
            self.aliyun.endpoint,
            self.control.url,
        )

    def _run(self, part: _Part) -> None:
        part.start()
        self._running.append(part)

    def _stop_parts(self) -> None:
        # Servers first, then what they call into; the scheduler (started first) last.
        while self._running:
            part = self._running.pop()
            try:
                part.stop()
            except Exception:  # stopping must go on: a half-stopped sandbox holds ports
                log.exception("stopping %s failed", type(part).__name__)

    def _abort(self) -> None:
        """A failed start: stop what runs, save nothing, give the home back."""
        self._stop_parts()
        self._home_lock.release()

    def stop(self) -> None:
        if not self._started:
            return  # never started, or refused the home: it owns nothing, it saves nothing
        self._started = False
        ports = {"k8s": self.k8s.port, "aliyun": self.aliyun.port, "control": self.control.port}
        self._stop_parts()
        try:
            if self._persist:
                self._save(ports)  # nothing writes any more: every server and thread has stopped
            (self.home / SANDBOX_FILE).unlink(missing_ok=True)
        finally:
            self._home_lock.release()  # last: until here a new owner would find our files

    def _save(self, ports: dict[str, int]) -> None:
        with self.cloud_lock, self.store.lock:
            state = persistence.SavedState(
                ids=self.ids.state(),
                tokens={"admin": self.tokens.admin, "readonly": self.tokens.readonly},
                ca=self.pki.ca_pems(),
                ports=ports,
                k8s=k8s_persist.snapshot(self.store),
                cloud=self.cloud.to_dict(),
            )
        path = persistence.save(self.home, state, self._home_lock)
        log.info("sandbox state saved to %s", path)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what clients need -------------------------------------------------------------------

    def _nodes_reach_internet(self) -> bool:
        with self.cloud_lock:
            cluster_id = next(iter(self.cloud.clusters))
            nodes = self.cloud.node_vswitch_ids(cluster_id)
            return bool(nodes) and self.cloud.snat_egress_ip(nodes[0]) is not None

    def _pod_dns(self) -> dict[str, str]:
        with self.cloud_lock:
            return self.cloud.pod_dns()

    def _node_cidr(self) -> str:
        # Nodes (and so pod addresses) live in the first node pool's vSwitch.
        with self.cloud_lock:
            cluster_id = next(iter(self.cloud.clusters))
            return self.cloud.vswitches[self.cloud.node_vswitch_ids(cluster_id)[0]].cidr_block

    @property
    def podnet_socket(self) -> Path:
        return self.home / "podnet.sock"

    @property
    def kubeconfig_path(self) -> Path:
        return self.home / KUBECONFIG_FILE

    @property
    def cluster_id(self) -> str:
        return next(iter(self.cloud.clusters))

    def kubeconfig_text(self) -> str:
        return yaml.safe_dump(self.kubeconfig(), sort_keys=False)

    def kubeconfig(self) -> dict[str, Any]:
        cluster = {
            "server": self.k8s.url,
            "certificate-authority": str(self.pki.ca_path),
        }
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": cluster}],
            "users": [
                {"name": "sandbox-admin", "user": {"token": self.tokens.admin}},
                {"name": "sandbox-readonly", "user": {"token": self.tokens.readonly}},
            ],
            "contexts": [
                {"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox-admin"}},
                {
                    "name": "sandbox-readonly",
                    "context": {"cluster": "sandbox", "user": "sandbox-readonly"},
                },
            ],
            "current-context": "sandbox",
            "preferences": {},
        }

    def info(self) -> dict[str, Any]:
        """The content of ``sandbox.json``."""
        topo = self.topology
        return {
            "pid": os.getpid(),
            "home": str(self.home),
            "k8s_url": self.k8s.url,
            "kubeconfig": str(self.kubeconfig_path),
            "aliyun_endpoint": self.aliyun.endpoint,
            "control_url": self.control.url,
            "topology": str(self.topology_path) if self.topology_path else None,
            "region_id": topo.region_id,
            "cluster_id": self.cluster_id,
            "access_key_id": topo.access_key_id,
            "access_key_secret": topo.access_key_secret,
            "readonly_access_key_id": topo.readonly_access_key_id,
            "readonly_access_key_secret": topo.readonly_access_key_secret,
            "ca": str(self.pki.ca_path),
            "podnet_socket": str(self.podnet_socket),
            "origin_ports": list(self.dataplane.origin_ports),
        }

    def _write_home(self) -> None:
        _write_private(self.kubeconfig_path, self.kubeconfig_text())
        _write_private(self.home / SANDBOX_FILE, json.dumps(self.info(), indent=2) + "\n")


class _Stoppable(Protocol):
    def stop(self) -> object: ...


class _Part(_Stoppable, Protocol):
    def start(self) -> object: ...


def _with_saved_keys(topo: Topology, cloud: CloudState) -> Topology:
    """``topo`` naming the AccessKeys a loaded world holds: ``info()`` hands out these."""
    update: dict[str, str] = {}
    for key in cloud.access_keys.values():
        if key.principal == "sandbox-admin":
            update |= {
                "access_key_id": key.access_key_id,
                "access_key_secret": key.access_key_secret,
            }
        elif key.principal == "sandbox-readonly":
            update |= {
                "readonly_access_key_id": key.access_key_id,
                "readonly_access_key_secret": key.access_key_secret,
            }
    return topo.model_copy(update=update)


def _port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now (a saved port is reused only when it is)."""
    if port <= 0:
        return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds the sandbox's tokens and AccessKey."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
