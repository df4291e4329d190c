"""The world survives stop/start with the same home, as a real cluster survives a laptop reboot.

In process: objects, resourceVersion, cloud SNAT entries and the serving gateway come back; new
IDs and UIDs never repeat saved ones. The bearer tokens and AccessKey secrets are the home's
own: random, kept across stop/start, new after a reset. The CLI-level test runs
`egress-sandbox up/down/up/reset` as subprocesses (slow).
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
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from control_helpers import configmap, create_snat, install_mse_addon, kube, snat_status, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from egress_sandbox import persistence
from egress_sandbox.control.client import ControlClient
from egress_sandbox.core.ids import IdFactory
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
    lb = ing.status.load_balancer if ing.status else None  # no status until the gateway binds it
    entries = (lb.ingress or []) if lb else []
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


def _secrets(home: Path) -> dict[str, str]:
    """What a client of the home holds: the kubeconfig's tokens, sandbox.json's AccessKeys."""
    kubeconfig = yaml.safe_load((home / "kubeconfig").read_text())
    users = {u["name"]: u["user"]["token"] for u in kubeconfig["users"]}
    info = json.loads((home / "sandbox.json").read_text())
    return {
        "admin": users["sandbox-admin"],
        "readonly": users["sandbox-readonly"],
        "access_key_secret": info["access_key_secret"],
        "readonly_access_key_secret": info["readonly_access_key_secret"],
    }


def _cloud_accepts(home: Path, secret_key: str = "access_key_secret") -> bool:
    info = json.loads((home / "sandbox.json").read_text())
    key_id = "readonly_access_key_id" if secret_key.startswith("readonly") else "access_key_id"
    config = open_api_models.Config(
        access_key_id=info[key_id],
        access_key_secret=info[secret_key],
        endpoint=info["aliyun_endpoint"],
        protocol="http",
        region_id=info["region_id"],
    )
    vpcs = VpcClient(config).describe_vpcs(vpc_models.DescribeVpcsRequest(region_id="cn-hangzhou"))
    return bool(vpcs.body.total_count)


def _clients_work(home: Path) -> None:
    assert _core(home).list_namespace().items  # the admin token
    assert ControlClient.from_home(home).faults() is not None  # the control endpoint's too
    assert _cloud_accepts(home) and _cloud_accepts(home, "readonly_access_key_secret")


def test_secrets_are_random_per_home_and_kept_by_it(home: Path) -> None:
    """Before: tokens came from the fixed seed and the secrets from the topology's defaults,
    so every sandbox anywhere had the same admin token and AccessKey secret."""
    seeded = IdFactory(Topology().seed)
    published = {
        seeded.hex(40, stream="token-admin"),
        seeded.hex(40, stream="token-ro"),
        "sandbox-admin-secret-0000000000",
        "sandbox-readonly-secret-000000",
    }
    other = home / "other"
    seen = []
    for where in (home, other):
        with Sandbox(where, Topology.loopback(22)):
            _clients_work(where)
            seen.append(_secrets(where))
    first, second = seen
    assert len(set(first.values())) == 4
    assert all(first[k] != second[k] for k in first)  # another home, other secrets
    assert not published & (set(first.values()) | set(second.values()))
    state = (home / "state.json").read_text()
    assert (home / "state.json").stat().st_mode & 0o777 == 0o600
    assert all(secret in state for secret in first.values())

    with Sandbox(home, Topology.loopback(22)) as box:  # down/up: the same home, the same ones
        assert box.restored
        assert _secrets(home) == first
        assert box.topology.access_key_secret == first["access_key_secret"]
        _clients_work(home)
    persistence.wipe(home)  # what `egress-sandbox reset` does between down and up
    with Sandbox(home, Topology.loopback(22)):
        renewed = _secrets(home)
        assert all(renewed[k] != first[k] for k in first)
        _clients_work(home)


def test_a_world_saved_before_random_secrets_keeps_them(home: Path) -> None:
    with Sandbox(home, Topology.loopback(22)):
        pass
    # As an older sandbox saved it: seeded tokens, the AccessKey secrets of the old defaults.
    seeded = IdFactory(Topology().seed)
    old = {
        "admin": seeded.hex(40, stream="token-admin"),
        "readonly": seeded.hex(40, stream="token-ro"),
        "access_key_secret": "sandbox-admin-secret-0000000000",
        "readonly_access_key_secret": "sandbox-readonly-secret-000000",
    }
    state = json.loads((home / "state.json").read_text())
    state["tokens"] = {"admin": old["admin"], "readonly": old["readonly"]}
    for key in state["cloud"]["access_keys"].values():
        readonly = key["principal"] == "sandbox-readonly"
        key["access_key_secret"] = old[
            "readonly_access_key_secret" if readonly else "access_key_secret"
        ]
    (home / "state.json").write_text(json.dumps(state))
    with Sandbox(home, Topology.loopback(22)):
        assert _secrets(home) == old  # its clients' kubeconfig and AccessKey stay valid
        _clients_work(home)


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
        before = _secrets(home)
        _core(home).create_namespaced_config_map("default", configmap("survivor"))
        down = _egress(home, "down")
        assert "stopped" in down.stdout
        assert (home / "state.json").exists()
        assert _egress(home, "status", check=False).returncode == 3
        up = _egress(home, "up")
        assert "state loaded" in up.stdout
        status = _egress(home, "status").stdout
        assert "status: running" in status
        assert _secrets(home) == before  # the clients' kubeconfig and AccessKey stay valid
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
        after = _secrets(home)
        assert all(after[k] != before[k] for k in before)  # a new world, new secrets
        assert "no faults" in _egress(home, "fault", "list").stdout
        with pytest.raises(k8s.ApiException) as info_exc:
            _core(home).read_namespaced_config_map("survivor", "default")
        assert info_exc.value.status == 404
        audit = _egress(home, "audit", "--json", "--mutating").stdout
        assert "survivor" not in audit  # the audit log was wiped with the world
    finally:
        _egress(home, "down", check=False)
