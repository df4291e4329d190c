"""Ingress ``spec.tls``: listener 443 on the gateway's CLB, TLS terminated with the Ingress's
secret (chosen by SNI), the sandbox CA's cert when the secret is missing, then the same routing
as port 80: the origin answers through the gateway's SNAT.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
from typing import Any

import pytest
import trustme

from egress_sandbox.aliyun.records import LoadBalancer

from .conftest import World, wait_for
from .helpers import echo, external_service, ingress, ingress_ip, listening_gateway
from .test_kubelet import finished, pod

Obj = dict[str, Any]
HOST = "www.aliyun.com"
PATH = "/product/aliware/mse"
SECRET = "aliyun-tls"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def tls_ingress(secret: str = SECRET, hosts: tuple[str, ...] = (HOST,)) -> Obj:
    obj = ingress()
    obj["spec"]["tls"] = [{"hosts": list(hosts), "secretName": secret}]
    return obj


def tls_secret(ca: trustme.CA, host: str = HOST, name: str = SECRET) -> Obj:
    cert = ca.issue_cert(host)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return {
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(chain).decode(),
            "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode(),
        },
    }


def listeners(w: World, lb: LoadBalancer) -> list[int]:
    with w.cloud_lock:
        return [int(e["port"]) for e in lb.listeners]


def https_port(w: World, lb: LoadBalancer) -> int:
    """Wait for listener 443 (SLB record and data plane); its real port."""
    wait_for(lambda: listeners(w, lb) == [80, 443] and 443 in lb.listen_ports, what="443")
    with w.cloud_lock:
        return lb.listen_ports[443]


def https_get(lb: LoadBalancer, port: int, cafile: str, sni: str = HOST) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((lb.address, port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as sock:
        conn = http.client.HTTPConnection(sni, port, timeout=10)
        conn.sock = sock
        conn.request("GET", PATH, headers={"Host": sni})
        resp = conn.getresponse()
        return resp.status, resp.read()


def gateway_with_snat(w: World) -> tuple[LoadBalancer, str]:
    lb = listening_gateway(w)
    eip = w.add_snat("gateway")
    w.store.create(w.services, external_service())
    return lb, eip


def secrets(w: World) -> Any:
    return w.rt("", "v1", "secrets")


def test_tls_secret_served_by_sni_and_routed_like_port_80(world: World) -> None:
    lb, eip = gateway_with_snat(world)
    customer = trustme.CA(organization_name="customer")
    world.store.create(secrets(world), tls_secret(customer))
    world.store.create(world.ingresses, tls_ingress())
    port = https_port(world, lb)
    cafile = str(world.home / "customer-ca.pem")
    customer.cert_pem.write_to_path(cafile)
    status, body = https_get(lb, port, cafile)
    assert status == 200, body
    seen = echo(body)
    assert (seen["source_ip"], seen["host"], seen["path"]) == (eip, HOST, PATH)
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert seen["tls"] is False  # the backend is plain HTTP: TLS ends at the gateway
    # An SNI no tls entry names gets the gateway's default certificate, not the secret's.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(lb, port, cafile, sni="other.example.com")


def test_missing_secret_serves_a_sandbox_ca_cert(world: World) -> None:
    lb, eip = gateway_with_snat(world)
    world.store.create(world.ingresses, tls_ingress(secret="absent"))
    port = https_port(world, lb)
    status, body = https_get(lb, port, str(world.home / "ca.pem"))
    assert status == 200 and echo(body)["source_ip"] == eip


def test_listener_443_goes_with_the_last_tls_ingress(world: World) -> None:
    lb, _ = gateway_with_snat(world)
    world.store.create(world.ingresses, tls_ingress())
    port = https_port(world, lb)
    ing = world.store.get(world.ingresses, "default", "mse-ingress")
    del ing["spec"]["tls"]
    world.store.update(world.ingresses, ing)
    wait_for(lambda: listeners(world, lb) == [80] and 443 not in lb.listen_ports, what="no 443")
    with pytest.raises(OSError), socket.create_connection((lb.address, port), timeout=2):
        pass


def test_443_port_carried_when_443_unavailable(world: World) -> None:
    blocker = socket.socket()
    blocker.bind(("127.16.2.10", 0))
    blocker.listen(1)
    try:
        world.dataplane.prefer_tls_port = blocker.getsockname()[1]
        lb, _ = gateway_with_snat(world)
        world.store.create(world.ingresses, tls_ingress())
        port = https_port(world, lb)
        assert port != blocker.getsockname()[1]

        def ports() -> list[Obj] | None:
            got: list[Obj] | None = ingress_ip(world).get("ports")
            return got if got and len(got) == 2 else None

        # Every listener's real port, listener 80 first.
        assert wait_for(ports, what="ports in status") == [
            {"port": lb.listen_port, "protocol": "TCP"},
            {"port": port, "protocol": "TCP"},
        ]
    finally:
        blocker.close()


def _host_curl(lb: LoadBalancer, port: int, cafile: str) -> Obj:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    out = subprocess.run(
        [
            "curl",
            "-q",
            "-sS",
            "--fail",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "--resolve",
            f"{HOST}:{port}:{lb.address}",
            "--cacert",
            cafile,
            f"https://{HOST}:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    data: Obj = json.loads(out.stdout)
    return data


@pytest.mark.curl
@needs_curl
def test_host_curl_https_with_sandbox_ca(world: World) -> None:
    lb, eip = gateway_with_snat(world)
    world.store.create(world.ingresses, tls_ingress(secret="absent"))
    seen = _host_curl(lb, https_port(world, lb), str(world.home / "ca.pem"))
    assert (seen["source_ip"], seen["host"], seen["path"]) == (eip, HOST, PATH)


@pytest.mark.curl
@needs_curl
def test_host_curl_https_with_the_ingress_secret(world: World) -> None:
    lb, eip = gateway_with_snat(world)
    sandbox_ca = trustme.CA.from_pem(
        (world.home / "ca.pem").read_bytes(), world.dataplane.pki.ca.private_key_pem.bytes()
    )
    world.store.create(secrets(world), tls_secret(sandbox_ca))
    world.store.create(world.ingresses, tls_ingress())
    seen = _host_curl(lb, https_port(world, lb), str(world.home / "ca.pem"))
    assert seen["source_ip"] == eip and seen["headers"]["x-forwarded-proto"] == "https"


@pytest.mark.curl
@needs_curl
def test_pod_curl_https_through_the_pod_network(world: World) -> None:
    """Pods dial CLB:443 whatever port the data plane bound (and trust the sandbox CA)."""
    lb, eip = gateway_with_snat(world)
    world.store.create(world.ingresses, tls_ingress(secret="absent"))
    https_port(world, lb)
    args = ["-sS", "--resolve", f"{HOST}:443:{lb.address}", f"https://{HOST}{PATH}"]
    world.store.create(world.pods, pod("curl-tls", args=args))
    p = finished(world, "curl-tls")
    log = world.kubelet.logs("default", "curl-tls")
    assert p["status"]["phase"] == "Succeeded", log
    assert json.loads(log)["source_ip"] == eip
