"""The world survives stop/start with the same home, as a real cluster survives a laptop reboot.

In process: objects, resourceVersion, cloud SNAT entries and the serving gateway come back; new
IDs and UIDs never repeat saved ones. The CLI-level test runs `egress-sandbox up/down/up/reset`
as subprocesses (slow).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_helpers import configmap, create_snat, install_mse_addon, kube, snat_status, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

HOST, PATH = "www.aliyun.com", "/product/aliware/mse"


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbxp-"))  # short: the pod network is a UNIX socket
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ingress_entry(box: Sandbox) -> dict[str, Any] | None:
    ing = k8s.NetworkingV1Api(kube(box)).read_namespaced_ingress("mse-ingress", "default")
    entries = (ing.status.load_balancer.ingress or []) if ing.status.load_balancer else []
    return entries[0].to_dict() if entries else None


def _through_gateway(entry: dict[str, Any]) -> dict[str, Any]:
    port = entry["ports"][0]["port"] if entry.get("ports") else 80
    conn = http.client.HTTPConnection(entry["ip"], port, timeout=10)
    try:
        conn.request("GET", PATH, headers={"Host": HOST})
        response = conn.getresponse()
        assert response.status == 200, response.read()
        data: dict[str, Any] = json.loads(response.read())
        return data
    finally:
        conn.close()


def _build_world(box: Sandbox) -> str:
    """Add-on, SNAT for the gateway's vSwitch, an ExternalName Service and its Ingress."""
    install_mse_addon(box)
    entry = create_snat(box, "nodes", name="egress")  # the default gateway sits in "nodes"
    wait_for(lambda: snat_status(box, entry) == "Available", 5, "SNAT entry")
    api = kube(box)
    k8s.CoreV1Api(api).create_namespaced_service(
        "default",
        {
            "metadata": {"name": "aliyun-svc-external"},
            "spec": {
                "type": "ExternalName",
                "externalName": HOST,
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}],
            },
        },
    )
    k8s.NetworkingV1Api(api).create_namespaced_ingress(
        "default",
        {
            "metadata": {"name": "mse-ingress"},
            "spec": {
                "ingressClassName": "mse",
                "rules": [
                    {
                        "host": HOST,
                        "http": {
                            "paths": [
                                {
                                    "path": PATH,
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {
                                            "name": "aliyun-svc-external",
                                            "port": {"number": 80},
                                        }
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    return entry


def test_stop_start_keeps_the_world(home: Path) -> None:
    box = Sandbox(home, Topology.loopback(22)).start()
    try:
        snat = _build_world(box)
        ip = wait_for(lambda: _ingress_entry(box), 15, "Ingress status")
        eip = _through_gateway(ip)["source_ip"]
        core = k8s.CoreV1Api(kube(box))
        saved_cm = core.create_namespaced_config_map("default", configmap("kept")).to_dict()
        saved_rv = int(box.store.resource_version)
        with box.cloud_lock:
            saved_snat = {k: v.status for k, v in box.cloud.snat_entries.items()}
        token, ca = box.tokens.admin, (home / "ca.pem").read_bytes()
    finally:
        box.stop()
    assert (home / "state.json").stat().st_mode & 0o777 == 0o600
    assert not (home / "sandbox.json").exists()

    box = Sandbox(home, Topology.loopback(22)).start()
    try:
        assert box.restored
        assert box.tokens.admin == token and (home / "ca.pem").read_bytes() == ca
        core = k8s.CoreV1Api(kube(box))  # the re-written kubeconfig, the same CA
        kept = core.read_namespaced_config_map("kept", "default").to_dict()
        assert kept["metadata"]["uid"] == saved_cm["metadata"]["uid"]
        assert kept["metadata"]["resource_version"] == saved_cm["metadata"]["resource_version"]
        assert int(box.store.resource_version) >= saved_rv
        fresh = core.create_namespaced_config_map("default", configmap("fresh")).to_dict()
        assert int(fresh["metadata"]["resource_version"]) > saved_rv  # monotonic across restart
        uids = {o["metadata"]["uid"] for _, o in box.store.iter_objects()}
        assert len(uids) == sum(1 for _ in box.store.iter_objects())  # no UID handed out twice
        with box.cloud_lock:
            assert {k: v.status for k, v in box.cloud.snat_entries.items()} == saved_snat
        assert snat in saved_snat
        second = create_snat(box, "gateway", name="after-restart")
        assert second not in saved_snat  # the ID stream went on, it did not start over
        # The controller's first resync reopened the CLB: the gateway serves again.
        entry = wait_for(lambda: _ingress_entry(box), 15, "Ingress status after restart")
        assert entry["ip"] == ip["ip"]
        assert _through_gateway(entry)["source_ip"] == eip
        # The audit log was reloaded: the pre-restart create is still in it.
        assert any(r.path.endswith("/configmaps") and r.mutating for r in box.audit.records())
    finally:
        box.stop()


def test_pending_snat_entry_resumes_after_restart(home: Path) -> None:
    topo = Topology.loopback(22)
    topo.transitions.snat_entry.mode = "manual"
    box = Sandbox(home, topo).start()
    try:
        entry = create_snat(box, "nodes")
        assert snat_status(box, entry) == "Pending"
    finally:
        box.stop()
    box = Sandbox(home, Topology.loopback(22)).start()  # timed again: it moves on by itself
    try:
        wait_for(lambda: snat_status(box, entry) == "Available", 5, "the resumed SNAT entry")
    finally:
        box.stop()


def _egress(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.run(
        [sys.executable, "-m", "egress_sandbox.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _core(home: Path) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(home / "kubeconfig")))


@pytest.mark.slow
def test_cli_up_down_up_status_reset(home: Path) -> None:
    topology = home / "topology.yaml"
    topology.write_text(yaml.safe_dump(Topology.loopback(23).model_dump()))
    try:
        _egress(home, "up", "--topology", str(topology))
        info = json.loads((home / "sandbox.json").read_text())
        _core(home).create_namespaced_config_map("default", configmap("survivor"))
        down = _egress(home, "down")
        assert "stopped" in down.stdout
        assert (home / "state.json").exists()
        assert _egress(home, "status", check=False).returncode == 3
        up = _egress(home, "up")
        assert "state loaded" in up.stdout
        status = _egress(home, "status").stdout
        assert "status: running" in status
        assert info["access_key_secret"] not in status + up.stdout + down.stdout
        assert _core(home).read_namespaced_config_map("survivor", "default")
        _egress(
            home,
            "fault",
            "add",
            "--api",
            "vpc",
            "--action",
            "DescribeVpcs",
            "--code",
            "X",
            "--status",
            "500",
        )
        reset = _egress(home, "reset")
        assert "wiped" in reset.stdout and "sandbox up" in reset.stdout
        assert "no faults" in _egress(home, "fault", "list").stdout
        with pytest.raises(k8s.ApiException) as info_exc:
            _core(home).read_namespaced_config_map("survivor", "default")
        assert info_exc.value.status == 404
        audit = _egress(home, "audit", "--json", "--mutating").stdout
        assert "survivor" not in audit  # the audit log was wiped with the world
    finally:
        _egress(home, "down", check=False)
