from __future__ import annotations

import socket

from egress_sandbox.dataplane import DataPlane
from egress_sandbox.dataplane.gateway import CONNECT_FAILURE
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG

from .conftest import World, wait_for
from .helpers import (
    GATEWAY,
    echo,
    egress_config,
    external_service,
    ingress,
    ingress_ip,
    listening_gateway,
    mse_class,
    request,
)

HOST = "www.aliyun.com"
PATH = "/product/aliware/mse"


def test_ingress_status_carries_internal_clb(world: World) -> None:
    lb = listening_gateway(world)
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    entry = ingress_ip(world)
    assert entry["ip"] == lb.address
    assert ("ports" in entry) == (lb.listen_port != 80)
    assert world.events("Sync")[0]["message"].startswith("Ingress synced to gateway gw-")
    # A legacy class annotation takes precedence over ingressClassName: no longer bound.
    ing = world.store.get(world.ingresses, "default", "mse-ingress")
    ing["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    world.store.update(world.ingresses, ing)
    wait_for(
        lambda: (
            not world.store.get(world.ingresses, "default", "mse-ingress")
            .get("status", {})
            .get("loadBalancer")
        ),
        what="status cleared",
    )


def test_unbound_before_listening(world: World) -> None:
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    world.store.create(MSE_INGRESS_CONFIG, egress_config(world))
    world.wait_phase(GATEWAY, "Running")
    ing = world.store.get(world.ingresses, "default", "mse-ingress")
    assert not (ing.get("status") or {}).get("loadBalancer")
    world.wait_phase(GATEWAY, "Listening")
    ingress_ip(world)


def test_503_without_snat_then_origin_with_eip(world: World) -> None:
    lb = listening_gateway(world)
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    ingress_ip(world)
    status, headers, body = request(lb, HOST, PATH)
    assert (status, body) == (503, CONNECT_FAILURE)
    assert headers["server"] == "istio-envoy"
    eip = world.add_snat("gateway")
    status, headers, body = request(lb, HOST, PATH + "/sub?x=1")
    assert status == 200, body
    seen = echo(body)
    assert seen["source_ip"] == eip
    assert seen["host"] == HOST and seen["path"] == PATH + "/sub" and seen["query"] == {"x": "1"}
    assert seen["tls"] is False and seen["destination_port"] == 80
    for h in (
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-request-id",
        "req-start-time",
        "x-envoy-original-host",
    ):
        assert h in seen["headers"], h
    assert headers["server"] == "istio-envoy" and "x-envoy-upstream-service-time" in headers


def test_node_snat_does_not_help_the_gateway(world: World) -> None:
    lb = listening_gateway(world)
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    ingress_ip(world)
    world.add_snat("nodes")
    assert request(lb, HOST, PATH)[0] == 503


def test_https_backend_reaches_origin_over_tls(world: World) -> None:
    lb = listening_gateway(world)
    world.add_snat("gateway")
    world.store.create(world.services, external_service())
    https = {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
    world.store.create(world.ingresses, ingress(port=443, annotations=https))
    ingress_ip(world)
    status, _, body = request(lb, HOST, PATH)
    assert status == 200, body
    seen = echo(body)
    assert seen["tls"] is True and seen["destination_port"] == 443
    # As OSS Higress: no SNI unless proxy-ssl-server-name is on and proxy-ssl-name is set
    # (not even the ExternalName); the origin still knows which host was dialled.
    assert seen["sni"] is None and seen["upstream_host"] == HOST
    assert seen["tls_version"] == "TLSv1.2"  # Envoy's upstream default maximum
    ing = world.store.get(world.ingresses, "default", "mse-ingress")
    ing["metadata"]["annotations"] = {
        **https,
        "nginx.ingress.kubernetes.io/proxy-ssl-name": HOST,
        "nginx.ingress.kubernetes.io/proxy-ssl-server-name": "on",
    }
    world.store.update(world.ingresses, ing)
    status, _, body = request(lb, HOST, PATH)
    assert status == 200 and echo(body)["sni"] == HOST


def test_routing_prefix_exact_and_404(world: World) -> None:
    lb = listening_gateway(world)
    world.add_snat("gateway")
    world.store.create(world.services, external_service())
    world.store.create(world.services, external_service("other", "example.com"))
    world.store.create(
        world.services,
        {
            "metadata": {"name": "in-cluster", "namespace": "default"},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]},
        },
    )
    world.store.create(world.ingresses, ingress())
    world.store.create(
        world.ingresses,
        ingress("exact", path=PATH + "/exact", path_type="Exact", service="other", port="port1"),
    )
    world.store.create(world.ingresses, ingress("cluster", path="/internal", service="in-cluster"))
    world.store.create(world.ingresses, ingress("wild", host="*.example.org", path="/"))
    wait_for(
        lambda: all(
            (i.get("status") or {}).get("loadBalancer")
            for i in world.store.list(world.ingresses)[0]
        ),
        what="all bound",
    )
    assert request(lb, HOST, PATH)[0] == 200
    assert request(lb, HOST, PATH + "/")[0] == 200
    assert request(lb, HOST, PATH + "x")[0] == 404  # Prefix matches whole path elements
    status, _, body = request(lb, HOST, PATH + "/exact")
    assert status == 200 and echo(body)["destination_port"] == 80
    assert request(lb, HOST, "/other")[0] == 404
    status, headers, body = request(lb, "unknown.example.net", PATH)
    assert (status, body, headers["server"]) == (404, b"", "istio-envoy")
    assert request(lb, "a.example.org", "/anything")[0] == 200
    assert request(lb, "a.b.example.org", "/anything")[0] == 404  # one label only
    assert request(lb, HOST, "/internal") == (
        503,
        request(lb, HOST, "/internal")[1],
        b"no healthy upstream",
    )


def test_port_carried_when_80_unavailable(world: World) -> None:
    """With port 80 taken (or unprivileged), the CLB listens elsewhere and says so."""
    blocker = socket.socket()
    blocker.bind(("127.16.2.10", 0))
    taken = blocker.getsockname()[1]
    blocker.listen(1)
    try:
        world.dataplane.prefer_port = taken
        lb = listening_gateway(world)
        assert lb.listen_port not in (taken, 80)
        world.add_snat("gateway")
        world.store.create(world.services, external_service())
        world.store.create(world.ingresses, ingress())
        assert ingress_ip(world)["ports"] == [{"port": lb.listen_port, "protocol": "TCP"}]
        assert request(lb, HOST, PATH)[0] == 200
    finally:
        blocker.close()


def test_origin_refuses_connections_without_proxy_header(world: World) -> None:
    assert isinstance(world.dataplane, DataPlane)
    http_port, _ = world.dataplane.origin_ports
    with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""  # closed with our request unread: a reset
        assert data == b""
