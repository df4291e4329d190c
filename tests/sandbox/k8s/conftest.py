"""Shared fixtures: a bootstrapped store behind a TLS KubeApiServer, and kubeconfig/clients."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, config

from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.bootstrap import bootstrap_cluster
from egress_sandbox.k8s.server import KubeApiServer
from egress_sandbox.k8s.store import Store

ADMIN_TOKEN = "admin-token-0123456789"
READONLY_TOKEN = "readonly-token-0123456789"


@dataclass
class Cluster:
    store: Store
    server: KubeApiServer
    audit: AuditLog
    kubeconfig: Path
    ca_path: Path
    logs: dict[tuple[str, str, str | None], str]
    admin_token: str = ADMIN_TOKEN

    def api(self, context: str = "admin") -> client.ApiClient:
        return config.new_client_from_config(str(self.kubeconfig), context=context)

    def http(self, token: str | None = ADMIN_TOKEN) -> requests.Session:
        """A raw HTTPS session (for what the typed clients cannot send), with a bearer token."""
        s = requests.Session()
        s.verify = str(self.ca_path)
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        if token:
            s.headers["Authorization"] = f"Bearer {token}"
        return s

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def kubectl(
        self,
        *args: str,
        context: str = "admin",
        input: str | None = None,
        check: bool = True,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("kubectl")
        assert exe is not None
        proc = subprocess.run(
            [exe, "--kubeconfig", str(self.kubeconfig), "--context", context, *args],
            input=input,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"HOME": str(self.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc

    @contextlib.contextmanager
    def kubectl_stream(
        self, *args: str, context: str = "admin", timeout: float = 10
    ) -> Iterator[Iterator[str]]:
        """The stdout lines of a kubectl that never ends by itself (``get -w``), as they come.

        Stop reading once the line you wait for came; kubectl is killed on leaving, or after
        ``timeout`` seconds (the lines then end), so a missing line fails instead of hanging.
        """
        exe = shutil.which("kubectl")
        assert exe is not None
        proc = subprocess.Popen(
            [exe, "--kubeconfig", str(self.kubeconfig), "--context", context, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={"HOME": str(self.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            assert proc.stdout is not None
            yield iter(proc.stdout)
        finally:
            killer.cancel()
            proc.kill()
            proc.communicate()


def _kubeconfig(path: Path, url: str, ca: Path) -> None:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "sandbox", "cluster": {"server": url, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": "sandbox-admin", "user": {"token": ADMIN_TOKEN}},
            {"name": "sandbox-readonly", "user": {"token": READONLY_TOKEN}},
        ],
        "contexts": [
            {
                "name": "admin",
                "context": {"cluster": "sandbox", "user": "sandbox-admin", "namespace": "default"},
            },
            {
                "name": "readonly",
                "context": {
                    "cluster": "sandbox",
                    "user": "sandbox-readonly",
                    "namespace": "default",
                },
            },
        ],
        "current-context": "admin",
    }
    path.write_text(yaml.safe_dump(cfg))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    pki = SandboxPki(tmp_path)
    store = Store(IdFactory(7))
    bootstrap_cluster(store)
    audit = AuditLog()
    logs: dict[tuple[str, str, str | None], str] = {}
    server = KubeApiServer(
        store,
        ssl_context=pki.server_context("127.0.0.1", "localhost"),
        users={
            ADMIN_TOKEN: User("sandbox-admin", ("system:masters", "system:authenticated")),
            READONLY_TOKEN: User("sandbox-readonly", ("system:authenticated",), read_only=True),
        },
        audit=audit,
        pod_logs=lambda ns, name, c: logs.get((ns, name, c), f"log of {ns}/{name}\n"),
    )
    server.bookmark_interval = 0.3
    server.start()
    kc = tmp_path / "kubeconfig"
    _kubeconfig(kc, server.url, pki.ca_path)
    try:
        yield Cluster(store, server, audit, kc, pki.ca_path, logs)
    finally:
        server.stop()


@pytest.fixture
def kubectl_available() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
