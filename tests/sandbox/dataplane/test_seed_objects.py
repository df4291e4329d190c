"""What a fresh sandbox's cluster already has: TLS Secrets from the sandbox CA and the audit
echo server; and ``ready_endpoints``, which finds a Service's ready pods.

One sandbox on 127.43.0.0/16 (after test_echo_server's is gone); its last test restarts it.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sandbox_env import sandbox_home

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.k8s.bootstrap import bootstrap_cluster
from egress_sandbox.k8s.endpoints import ready_endpoints
from egress_sandbox.k8s.store import Store
from egress_sandbox.sandbox import Sandbox

from .conftest import wait_for

Obj = dict[str, Any]
BLOCK = 43


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_home(tmp_path_factory.mktemp("seeded"), BLOCK) as sandbox:
        yield sandbox


def _rt(store: Store, plural: str) -> Any:
    rt = store.types.get("", "v1", plural)
    assert rt is not None
    return rt


def _pem(secret: Obj, key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _audit_ready(box: Sandbox) -> Obj:
    def get() -> Obj | None:
        p = box.store.try_get(_rt(box.store, "pods"), "egress-audit", "audit-0")
        conds = {
            c["type"]: c["status"] for c in ((p or {}).get("status") or {}).get("conditions") or []
        }
        return p if conds.get("Ready") == "True" else None

    return wait_for(get, what="audit-0 to be Ready")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> str:
    """One TLS handshake over a socket pair (both sides closed after); the version agreed.

    Raises what the client saw, or an AssertionError with what the server saw.
    """
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(b, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)
        finally:
            b.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        a.settimeout(10)
        with client.wrap_socket(a, server_hostname=name) as tls:
            tls.sendall(b"x")
            version = str(tls.version())
            t.join(10)
    finally:
        a.close()
        t.join(10)
    assert not errors, errors
    return version


def test_seeded_tls_secrets(box: Sandbox) -> None:
    secrets = _rt(box.store, "secrets")
    client = box.store.get(secrets, "default", "egress-client-cert")
    server = box.store.get(secrets, "default", "payments-gateway-tls")
    assert client["type"] == server["type"] == "kubernetes.io/tls"
    ca = x509.load_pem_x509_certificate(box.pki.ca_path.read_bytes())
    certs = {}
    for name, secret in (("client", client), ("server", server)):
        cert = x509.load_pem_x509_certificate(_pem(secret, "tls.crt"))
        cert.verify_directly_issued_by(ca)
        certs[name] = cert
    cn = certs["client"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "egress-gateway"
    eku = {
        n: list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        for n, c in certs.items()
    }
    assert eku == {
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    }
    san = certs["server"].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["api.payments.example"]

    # Usable as they are: the server certificate for its host, the client one for mTLS.
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, secret in (("client", client), ("server", server)):
            crt, key = Path(tmp) / f"{name}.crt", Path(tmp) / f"{name}.key"
            crt.write_bytes(_pem(secret, "tls.crt"))
            key.write_bytes(_pem(secret, "tls.key"))
            paths[name] = (str(crt), str(key))
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(*paths["server"])
        server_ctx.load_verify_locations(str(box.pki.ca_path))
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        client_ctx = ssl.create_default_context(cafile=str(box.pki.ca_path))
        client_ctx.load_cert_chain(*paths["client"])
        assert _handshake(server_ctx, client_ctx, "api.payments.example") in (
            "TLSv1.2",
            "TLSv1.3",
        )
        # The server certificate does not pass for a client one (serverAuth only).
        wrong = ssl.create_default_context(cafile=str(box.pki.ca_path))
        wrong.load_cert_chain(*paths["server"])
        with pytest.raises((ssl.SSLError, OSError, AssertionError)):
            _handshake(server_ctx, wrong, "api.payments.example")


def test_audit_service_and_its_ready_endpoint(box: Sandbox) -> None:
    ns = box.store.get(_rt(box.store, "namespaces"), None, "egress-audit")
    assert ns["status"]["phase"] == "Active"
    pod = _audit_ready(box)
    assert pod["metadata"]["labels"] == {"app": "audit"}
    assert pod["spec"]["containers"][0]["image"] == (
        "registry-vpc.cn-hangzhou.aliyuncs.com/egress-runbook/http-https-echo:34"
    )
    svc = box.store.get(_rt(box.store, "services"), "egress-audit", "audit")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"].startswith("10.96.")
    assert svc["spec"]["selector"] == {"app": "audit"}
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(8080, 8080)]
    endpoints = ready_endpoints(box.store, "egress-audit", "audit", 8080)
    assert endpoints == [(pod["status"]["podIP"], 8080)]
    assert ready_endpoints(box.store, "egress-audit", "audit", 80) == []
    ip, port = endpoints[0]
    conn = http.client.HTTPConnection(ip, port, timeout=10)
    conn.request("GET", "/audit", headers={"Host": "audit.egress-audit.svc.cluster.local"})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["os"]["hostname"] == "audit-0"
    conn.close()


def _pod(name: str, labels: dict[str, str], ports: list[Obj] | None = None) -> Obj:
    container: Obj = {"name": "c", "image": "example/none:1"}
    if ports:
        container["ports"] = ports
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [container]},
    }


def _set_status(store: Store, name: str, ip: str, ready: bool) -> None:
    pods = _rt(store, "pods")
    p = store.get(pods, "default", name)
    p["status"] = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    store.update(pods, p, subresource="status")


def test_ready_endpoints_follow_the_selector_and_readiness() -> None:
    store = Store(IdFactory(3))
    bootstrap_cluster(store)
    named = [{"name": "web", "containerPort": 8081}]
    store.create(_rt(store, "pods"), _pod("b-ready", {"app": "w"}, named))
    store.create(_rt(store, "pods"), _pod("a-ready", {"app": "w", "x": "y"}, named))
    store.create(_rt(store, "pods"), _pod("unready", {"app": "w"}, named))
    store.create(_rt(store, "pods"), _pod("other", {"app": "v"}, named))
    store.create(_rt(store, "pods"), _pod("unnamed", {"app": "w"}))
    store.create(_rt(store, "pods"), _pod("pending", {"app": "w"}, named))
    for name, ip, ok in (
        ("b-ready", "127.244.9.3", True),
        ("a-ready", "127.244.9.2", True),
        ("unready", "127.244.9.4", False),
        ("other", "127.244.9.5", True),
        ("unnamed", "127.244.9.6", True),
    ):
        _set_status(store, name, ip, ok)
    services = _rt(store, "services")
    store.create(
        services,
        {
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {
                "selector": {"app": "w"},
                "ports": [
                    {"name": "a", "port": 80, "targetPort": "web"},
                    {"name": "b", "port": 90, "targetPort": 9090},
                ],
            },
        },
    )
    store.create(
        services,
        {
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "a.example", "ports": [{"port": 80}]},
        },
    )
    # Sorted by pod name; a pod without the named port is no endpoint of it.
    assert ready_endpoints(store, "default", "w", 80) == [
        ("127.244.9.2", 8081),
        ("127.244.9.3", 8081),
    ]
    assert ready_endpoints(store, "default", "w", 90) == [
        ("127.244.9.2", 9090),
        ("127.244.9.3", 9090),
        ("127.244.9.6", 9090),
    ]
    assert ready_endpoints(store, "default", "w", 81) == []
    assert ready_endpoints(store, "default", "ext", 80) == []
    assert ready_endpoints(store, "default", "missing", 80) == []
    assert ready_endpoints(store, "kube-system", "w", 80) == []


def test_a_restored_world_keeps_what_it_saved(box: Sandbox) -> None:
    """Last in the module: restarts the module's sandbox (same home, same block)."""
    before = _audit_ready(box)
    box.store.delete(_rt(box.store, "secrets"), "default", "egress-client-cert")
    box.stop()
    again = Sandbox(box.home, box.topology).start()
    try:
        assert again.restored
        secrets = _rt(again.store, "secrets")
        assert again.store.try_get(secrets, "default", "egress-client-cert") is None
        assert again.store.try_get(secrets, "default", "payments-gateway-tls") is not None
        # The reboot killed the echo server; under restartPolicy Always it came back.
        pod = _audit_ready(again)
        (cs,) = pod["status"]["containerStatuses"]
        assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 255
        assert pod["status"]["podIP"] == before["status"]["podIP"]
        assert ready_endpoints(again.store, "egress-audit", "audit", 8080) == [
            (pod["status"]["podIP"], 8080)
        ]
        ip = pod["status"]["podIP"]
        conn = http.client.HTTPConnection(ip, 8080, timeout=10)
        conn.request("GET", "/again")
        assert conn.getresponse().status == 200
        conn.close()
        assert json.loads(again.kubelet.logs("egress-audit", "audit-0"))["path"] == "/again"
    finally:
        again.stop()
