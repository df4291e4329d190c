"""Assembles the whole sandbox: cloud, cluster, controller, kubelet, data plane, and their servers.

``Sandbox(home).start()`` runs everything on daemon threads in this process; the CLI runs it in
a background process of its own. The home folder receives what clients need to connect:
``sandbox.json`` (endpoints and the sandbox's AccessKey, mode 0600) and ``kubeconfig``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.aliyun.server import OpenApiServer
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.dataplane import DataPlane
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.bootstrap import bootstrap_cluster
from egress_sandbox.k8s.server import KubeApiServer
from egress_sandbox.k8s.store import Store
from egress_sandbox.kubelet import Kubelet
from egress_sandbox.mse.controller import MseController
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
        clb_port: int = 80,
    ) -> None:
        self.home = Path(home).resolve()
        self.topology = topology or Topology()
        self._k8s_port = k8s_port
        self._aliyun_port = aliyun_port
        self._clb_port = clb_port
        self._started = False
        self.cloud_lock = threading.RLock()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self.home.mkdir(parents=True, exist_ok=True)
        topo = self.topology
        self.ids = IdFactory(topo.seed)
        self.cloud: CloudState = build_cloud(topo, self.ids)
        self.pki = SandboxPki(self.home)
        self.audit = AuditLog(self.home / "audit.jsonl")
        self.audit.clear()
        self.scheduler = Scheduler()
        self.store = Store(self.ids)
        bootstrap_cluster(self.store)
        self.tokens = Tokens(
            self.ids.hex(40, stream="token-admin"), self.ids.hex(40, stream="token-ro")
        )

        self.dataplane = DataPlane(
            self.store,
            self.cloud,
            cloud_lock=self.cloud_lock,
            ids=self.ids,
            pki=self.pki,
            prefer_port=self._clb_port,
            podnet_socket=self.podnet_socket,
        )
        self.mse = MseController(
            self.store,
            self.cloud,
            cloud_lock=self.cloud_lock,
            ids=self.ids,
            scheduler=self.scheduler,
            transitions=topo.transitions,
            dataplane=self.dataplane,
            kubeconfig=self.kubeconfig_text,
        )
        node_ip = str(next(iter(ipaddress.ip_network(self._node_cidr()).hosts())) + 9)
        self.kubelet = Kubelet(
            self.store,
            podnet_socket=self.podnet_socket,
            ids=self.ids,
            node_name=f"{topo.region_id}.{node_ip}",
            host_ip=node_ip,
            ca_bundle=self.pki.ca_path,
        )
        self.k8s = KubeApiServer(
            self.store,
            port=self._k8s_port,
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
            port=self._aliyun_port,
        )
        self.dataplane.start()
        self.mse.start()
        self.kubelet.start()
        self.k8s.start()
        self.aliyun.start()
        self._started = True
        self._write_home()
        log.info("sandbox up: k8s %s, aliyun %s", self.k8s.url, self.aliyun.endpoint)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for part in (self.aliyun, self.k8s, self.kubelet, self.mse, self.dataplane):
            try:
                part.stop()
            except Exception:  # stopping must go on: a half-stopped sandbox holds ports
                log.exception("stopping %s failed", type(part).__name__)
        self.scheduler.stop()
        (self.home / SANDBOX_FILE).unlink(missing_ok=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what clients need -------------------------------------------------------------------

    def _node_cidr(self) -> str:
        topo = self.topology
        by_name = {v.name: v.cidr for v in topo.vswitches}
        return by_name[topo.cluster_vswitch]

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


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds the sandbox's tokens and AccessKey."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
