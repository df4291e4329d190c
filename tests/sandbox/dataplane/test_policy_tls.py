"""TLS towards the upstream (SNI, mTLS), TLS offload with a version range, and mirroring.

The origin's hosts here require SNI (``sni.example``) or SNI and a client certificate from the
sandbox CA (``mtls.example``): each case fails when it is misconfigured. Mirror copies go to a
small echo server of the test's own on a pod address, behind a Service and a ready Pod object.
One sandbox on 127.38.0.0/16 for the module.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from sandbox_env import sandbox_home

from egress_sandbox.aliyun.records import LoadBalancer
from egress_sandbox.dataplane.origin_rules import OriginHost
from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

from .conftest import World, wait_for
from .helpers import external_service
from .test_policy_traffic import MSE, NGINX, POD, annotate, call, route, seen, world_of

Obj = dict[str, Any]
BLOCK = 38
HTTPS = {NGINX + "backend-protocol": "HTTPS"}
MIRROR_IP = "127.244.200.10"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    hosts = [
        OriginHost(host="sni.example", require_sni=True),
        OriginHost(host="mtls.example", require_sni=True, require_client_certificate=True),
    ]
    topo = Topology.loopback(BLOCK).model_copy(update={"origin_hosts": hosts})
    with sandbox_home(tmp_path_factory.mktemp("policy-tls"), BLOCK, topo) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def world(box: Sandbox) -> World:
    return world_of(box)


@pytest.fixture(scope="module")
def lb(world: World) -> LoadBalancer:
    from .helpers import listening_gateway

    clb = listening_gateway(world)
    world.add_snat("gateway")
    world.store.create(world.services, external_service())
    return clb


def tls_secret(name: str, cert: trustme.LeafCert) -> Obj:
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return {
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(chain).decode(),
            "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode(),
        },
    }


def secrets(w: World) -> Any:
    return w.rt("", "v1", "secrets")


def tls_body(status: int, body: bytes, reason: str) -> None:
    assert status == 503, body
    assert body.startswith(b"upstream connect error or disconnect/reset before headers. ")
    assert b"reset reason: connection failure, transport failure reason: TLS error: " in body
    assert reason.encode() in body, body


# ---- TLS origination -------------------------------------------------------------------------


def test_sni_only_with_the_name_and_the_switch(world: World, lb: LoadBalancer) -> None:
    world.store.create(world.services, external_service("sni-svc", "sni.example"))
    route(world, "sni", "sni.example", HTTPS, service="sni-svc")
    ingress = world.store.get(world.ingresses, "default", "sni")
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 443}
    world.store.update(world.ingresses, ingress)
    # No SNI (no proxy-ssl-* at all): the origin refuses the handshake.
    tls_body(*call(lb, "sni.example")[::2], "SSLV3_ALERT_HANDSHAKE_FAILURE")
    # The name without the switch still sends none (OSS Higress).
    annotate(world, "sni", {**HTTPS, NGINX + "proxy-ssl-name": "sni.example"})
    tls_body(*call(lb, "sni.example")[::2], "SSLV3_ALERT_HANDSHAKE_FAILURE")
    annotate(
        world,
        "sni",
        {**HTTPS, NGINX + "proxy-ssl-name": "sni.example", NGINX + "proxy-ssl-server-name": "on"},
    )
    status, _, body = call(lb, "sni.example")
    assert status == 200, body
    echo = seen(body)
    assert (echo["sni"], echo["upstream_host"], echo["tls"]) == ("sni.example", "sni.example", True)
    assert echo["client_certificate"] is None
    # Another name than the host's is refused as well.
    annotate(
        world,
        "sni",
        {
            **HTTPS,
            NGINX + "proxy-ssl-name": "www.sni.example",
            NGINX + "proxy-ssl-server-name": "on",
        },
    )
    assert call(lb, "sni.example")[0] == 503


def test_mutual_tls_with_the_secret_certificate(
    box: Sandbox, world: World, lb: LoadBalancer
) -> None:
    world.store.create(world.services, external_service("mtls-svc", "mtls.example"))
    sni = {**HTTPS, NGINX + "proxy-ssl-name": "mtls.example", NGINX + "proxy-ssl-server-name": "on"}
    route(world, "mtls", "mtls.example", sni, service="mtls-svc")
    ingress = world.store.get(world.ingresses, "default", "mtls")
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 443}
    world.store.update(world.ingresses, ingress)
    tls_body(*call(lb, "mtls.example")[::2], "SSLV3_ALERT_HANDSHAKE_FAILURE")  # no certificate
    client = box.pki.ca.issue_cert("gateway@egress.example", common_name="egress-gateway")
    world.store.create(secrets(world), tls_secret("gw-client", client))
    annotate(world, "mtls", {**sni, NGINX + "proxy-ssl-secret": "default/gw-client"})
    status, _, body = call(lb, "mtls.example")
    assert status == 200, body
    assert seen(body)["client_certificate"] == "egress-gateway"
    assert seen(body)["tls_version"] == "TLSv1.2"
    annotate(world, "mtls", {**sni, NGINX + "proxy-ssl-secret": "gw-client"})  # the Ingress's ns
    assert call(lb, "mtls.example")[0] == 200
    # A Secret that does not exist: Envoy waits for SDS, every connection fails.
    annotate(world, "mtls", {**sni, NGINX + "proxy-ssl-secret": "default/absent"})
    tls_body(*call(lb, "mtls.example")[::2], "Secret is not supplied by SDS")
    # A certificate from another CA is refused by the origin.
    other = trustme.CA().issue_cert("gateway@egress.example", common_name="egress-gateway")
    world.store.create(secrets(world), tls_secret("other-ca", other))
    annotate(world, "mtls", {**sni, NGINX + "proxy-ssl-secret": "other-ca"})
    tls_body(*call(lb, "mtls.example")[::2], "TLSV1_ALERT_UNKNOWN_CA")


# ---- TLS offload -----------------------------------------------------------------------------


def https_port(w: World, lb: LoadBalancer) -> int:
    wait_for(lambda: 443 in lb.listen_ports, what="listener 443")
    with w.cloud_lock:
        return lb.listen_ports[443]


def https_get(
    box: Sandbox,
    lb: LoadBalancer,
    port: int,
    host: str,
    *,
    low: ssl.TLSVersion | None = None,
    high: ssl.TLSVersion | None = None,
) -> tuple[int, str, bytes]:
    ctx = ssl.create_default_context(cafile=str(box.pki.ca_path))
    if low is not None:
        ctx.minimum_version = low
    if high is not None:
        ctx.maximum_version = high
    raw = socket.create_connection((lb.address, port), timeout=10, source_address=(POD, 0))
    with ctx.wrap_socket(raw, server_hostname=host) as sock:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.sock = sock
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, str(sock.version()), resp.read()


def test_tls_offload_with_the_domain_version_range(
    box: Sandbox, world: World, lb: LoadBalancer
) -> None:
    world.store.create(
        secrets(world), tls_secret("offload-tls", box.pki.ca.issue_cert("offload.example"))
    )
    route(world, "offload", "offload.example", {MSE + "tls-min-protocol-version": "TLSv1.3"})
    ing = world.store.get(world.ingresses, "default", "offload")
    ing["spec"]["tls"] = [{"hosts": ["offload.example"], "secretName": "offload-tls"}]
    world.store.update(world.ingresses, ing)
    port = https_port(world, lb)
    status, version, body = https_get(box, lb, port, "offload.example")
    assert (status, version) == (200, "TLSv1.3")
    assert seen(body)["headers"]["x-forwarded-proto"] == "https"
    with pytest.raises(ssl.SSLError):  # a client limited below the minimum
        https_get(box, lb, port, "offload.example", high=ssl.TLSVersion.TLSv1_2)
    annotate(world, "offload", {MSE + "tls-max-protocol-version": "TLSv1.2"})
    status, version, _ = https_get(box, lb, port, "offload.example")
    assert (status, version) == (200, "TLSv1.2")
    with pytest.raises(ssl.SSLError):  # a client that insists on more than the maximum
        https_get(box, lb, port, "offload.example", low=ssl.TLSVersion.TLSv1_3)
    annotate(world, "offload", {MSE + "tls-max-protocol-version": "TLS1.2"})  # malformed
    assert https_get(box, lb, port, "offload.example")[1] == "TLSv1.3"
    # A maximum below TLSv1.2 leaves the sandbox no version to offer: every handshake fails.
    annotate(world, "offload", {MSE + "tls-max-protocol-version": "TLSv1.1"})
    with pytest.raises(ssl.SSLError):
        https_get(box, lb, port, "offload.example")


# ---- mirroring -------------------------------------------------------------------------------


class MirrorServer:
    """An echo server on a pod address that records what it gets; ``/slow`` waits for
    ``release`` before it answers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.startswith("/slow"):
                    outer.release.wait(10)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer((MIRROR_IP, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [p for p, _ in self.seen]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mirror_server(world: World) -> Iterator[MirrorServer]:
    server = MirrorServer()
    ns_rt = world.rt("", "v1", "namespaces")
    world.store.create(ns_rt, {"metadata": {"name": "egress-mirror"}})
    world.store.create(
        world.pods,
        {
            "metadata": {
                "name": "mirror-0",
                "namespace": "egress-mirror",
                "labels": {"app": "mirror"},
            },
            # Another node's: this sandbox's kubelet leaves it alone; the test serves for it.
            "spec": {
                "nodeName": "virtual-node",
                "containers": [
                    {"name": "echo", "image": "echo", "ports": [{"containerPort": server.port}]}
                ],
            },
            "status": {
                "phase": "Running",
                "podIP": MIRROR_IP,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    )
    for name, selector in (("mirror", {"app": "mirror"}), ("nobody", {"app": "none"})):
        world.store.create(
            world.services,
            {
                "metadata": {"name": name, "namespace": "egress-mirror"},
                "spec": {
                    "selector": selector,
                    "ports": [{"port": 8080, "targetPort": server.port}],
                },
            },
        )
    yield server
    server.close()


def test_mirror_copies_reach_the_target_with_shadow_host(
    world: World, lb: LoadBalancer, mirror_server: MirrorServer
) -> None:
    route(
        world,
        "mirrored",
        "mirrored.example",
        {MSE + "mirror-target-service": "egress-mirror/mirror:8080"},
    )
    status, _, body = call(lb, "mirrored.example", "/copy-me?x=1")
    assert status == 200 and seen(body)["host"] == "mirrored.example"
    wait_for(lambda: "/copy-me?x=1" in mirror_server.paths(), what="the mirror copy")
    headers = dict(mirror_server.seen)["/copy-me?x=1"]
    assert headers["host"] == "mirrored.example-shadow"
    assert headers["x-forwarded-for"] == POD  # a copy of what went upstream
    # A slow mirror never slows the client: the answer comes while the copy is still held.
    status, _, _ = call(lb, "mirrored.example", "/slow")
    assert status == 200
    wait_for(lambda: "/slow" in mirror_server.paths(), what="the slow copy")
    assert not mirror_server.release.is_set()
    mirror_server.release.set()


def test_mirror_percentage_and_no_ready_endpoint(
    box: Sandbox, world: World, lb: LoadBalancer, mirror_server: MirrorServer
) -> None:
    target = {MSE + "mirror-target-service": "egress-mirror/mirror"}  # the first port
    route(world, "sampled", "sampled.example", {**target, MSE + "mirror-percentage": "0"})
    assert call(lb, "sampled.example", "/never")[0] == 200
    annotate(world, "sampled", target)
    assert call(lb, "sampled.example", "/always")[0] == 200
    wait_for(lambda: "/always" in mirror_server.paths(), what="the copy at 100%")
    assert "/never" not in mirror_server.paths()
    dropped = box.dataplane.mirror.stats.dropped
    annotate(world, "sampled", {MSE + "mirror-target-service": "egress-mirror/nobody:8080"})
    assert call(lb, "sampled.example", "/nobody")[0] == 200  # the client is not affected
    wait_for(lambda: box.dataplane.mirror.stats.dropped > dropped, what="the copy dropped")
