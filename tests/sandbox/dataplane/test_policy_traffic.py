"""The gateway enforces the layer-7 policies, through a real CLB listener and the origin.

IP lists at the three levels, throttling per replica, header control, timeouts, retries and
weighted Services with a host taken down (also through the control API). Requests leave from
chosen loopback addresses, as pods do: 127.244.0.x (the pod CIDR) and the node's 127.37.1.10.
One sandbox on 127.37.0.0/16 for the module.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_sandbox.aliyun.records import LoadBalancer
from egress_sandbox.cli import main as cli_main
from egress_sandbox.control.client import ControlClient
from egress_sandbox.dataplane.forward import UPSTREAM_TIMEOUT
from egress_sandbox.dataplane.ipacl import DENIED
from egress_sandbox.dataplane.ratelimit import THROTTLED
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG
from egress_sandbox.sandbox import Sandbox

from .conftest import World
from .helpers import external_service, ingress, ingress_ip, listening_gateway

Obj = dict[str, Any]
BLOCK = 37
POD, POD_DENIED, POD_OTHER = "127.244.0.7", "127.244.0.8", "127.244.0.9"
NODE = f"127.{BLOCK}.1.10"
MSE, NGINX = "mse.ingress.kubernetes.io/", "nginx.ingress.kubernetes.io/"
ORIGIN = "www.aliyun.com"  # the ExternalName most routes here lead to


# ---- a sandbox and a client that leaves from a chosen address ----------------------------------


def world_of(box: Sandbox) -> World:
    """The sandbox's parts under the names the data-plane helpers use."""
    return World.of(box)


class Client:
    """One keep-alive HTTP connection to a CLB listener from ``source`` (one replica's)."""

    def __init__(self, address: str, port: int, source: str = POD) -> None:
        sock = socket.create_connection((address, port), timeout=15, source_address=(source, 0))
        self.conn = http.client.HTTPConnection(address, port, timeout=15)
        self.conn.sock = sock

    def get(
        self, host: str, path: str = "/", headers: dict[str, str] | None = None
    ) -> tuple[int, Obj, bytes]:
        self.conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def close(self) -> None:
        self.conn.close()


def call(
    lb: LoadBalancer, host: str, path: str = "/", *, source: str = POD, **kw: Any
) -> tuple[int, Obj, bytes]:
    """One request on a fresh connection."""
    client = Client(lb.address, lb.listen_port, source)
    try:
        return client.get(host, path, **kw)
    finally:
        client.close()


def route(
    w: World,
    name: str,
    host: str,
    annotations: dict[str, str] | None = None,
    *,
    service: str = "aliyun-svc-external",
    path: str = "/",
) -> None:
    """An Ingress ``name`` for ``host`` + ``path`` -> ``service``:80, bound to the gateway."""
    w.store.create(
        w.ingresses,
        ingress(name, host=host, path=path, service=service, annotations=annotations),
    )
    ingress_ip(w, name)


def annotate(w: World, name: str, annotations: dict[str, str]) -> None:
    ing = w.store.get(w.ingresses, "default", name)
    ing["metadata"]["annotations"] = annotations
    w.store.update(w.ingresses, ing)


def seen(body: bytes) -> Obj:
    data: Obj = json.loads(body)
    return data


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_home(tmp_path_factory.mktemp("policy-traffic"), BLOCK) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def world(box: Sandbox) -> World:
    return world_of(box)


@pytest.fixture(scope="module")
def lb(world: World) -> LoadBalancer:
    """A listening gateway (3 replicas) with SNAT and the ExternalName www.aliyun.com."""
    clb = listening_gateway(world)
    world.add_snat("gateway")
    world.store.create(world.services, external_service())
    return clb


# ---- IP allow and deny lists -------------------------------------------------------------------


def test_route_level_lists_deny_beats_allow(world: World, lb: LoadBalancer) -> None:
    allow, deny = NGINX + "whitelist-source-range", MSE + "blacklist-source-range"
    route(world, "acl-route", "acl.example", {allow: "127.244.0.0/16", deny: POD_DENIED})
    status, _, body = call(lb, "acl.example", source=POD)
    assert status == 200 and seen(body)["headers"]["x-forwarded-for"] == POD
    assert call(lb, "acl.example", source=POD_DENIED)[::2] == (403, DENIED)
    status, headers, body = call(lb, "acl.example", source=NODE)  # a hostNetwork pod
    assert (status, body, headers["server"]) == (403, DENIED, "istio-envoy")
    # The blacklist is MSE-exclusive: under the nginx prefix it is not read.
    annotate(world, "acl-route", {allow: "127.244.0.0/16", NGINX + "blacklist-source-range": POD})
    assert call(lb, "acl.example", source=POD)[0] == 200
    # A malformed allow list stays an allow list that admits nobody (never wider open).
    annotate(world, "acl-route", {allow: "127.244.0.0/33"})
    assert call(lb, "acl.example", source=POD)[0] == 403


def test_domain_lists_span_ingresses_and_route_lists_win(world: World, lb: LoadBalancer) -> None:
    domain_deny = MSE + "domain-blacklist-source-range"
    route(world, "dom-a", "dom.example", {domain_deny: f"127.{BLOCK}.1.0/24"}, path="/a")
    route(world, "dom-b", "dom.example", path="/b")  # no lists of its own
    route(world, "dom-c", "dom.example", {NGINX + "whitelist-source-range": NODE}, path="/c")
    for path in ("/a", "/b"):
        assert call(lb, "dom.example", path, source=NODE)[0] == 403, path
        assert call(lb, "dom.example", path, source=POD)[0] == 200, path
    # Route level wins over domain level: the domain's deny list is not consulted.
    assert call(lb, "dom.example", "/c", source=NODE)[0] == 200
    assert call(lb, "dom.example", "/c", source=POD)[0] == 403
    # Another host is not in that domain.
    route(world, "dom-other", "other-dom.example")
    assert call(lb, "other-dom.example", source=NODE)[0] == 200


def test_gateway_wide_lists_come_first(world: World, lb: LoadBalancer) -> None:
    route(world, "gw-acl", "gw-acl.example", {NGINX + "whitelist-source-range": NODE})
    cfg = world.store.get(MSE_INGRESS_CONFIG, None, "egress-gateway")
    cfg["spec"]["global"] = {"ipAccessControl": {"blacklist": [f"127.{BLOCK}.1.0/24"]}}
    world.store.update(MSE_INGRESS_CONFIG, cfg)
    try:
        # Denied gateway-wide: 403 even where the route allows it, and before routing (no 404).
        assert call(lb, "gw-acl.example", source=NODE)[::2] == (403, DENIED)
        assert call(lb, "no-such-route.example", source=NODE)[0] == 403
        assert call(lb, "no-such-route.example", source=POD)[0] == 404
        cfg = world.store.get(MSE_INGRESS_CONFIG, None, "egress-gateway")
        cfg["spec"]["global"] = {"ipAccessControl": {"whitelist": ["127.244.0.0/16"]}}
        world.store.update(MSE_INGRESS_CONFIG, cfg)
        assert call(lb, "dom.example", "/b", source=POD)[0] == 200
        assert call(lb, "other-dom.example", source=NODE)[0] == 403  # not in the whitelist
    finally:
        cfg = world.store.get(MSE_INGRESS_CONFIG, None, "egress-gateway")
        cfg["spec"].pop("global", None)
        world.store.update(MSE_INGRESS_CONFIG, cfg)
    assert call(lb, "gw-acl.example", source=NODE)[0] == 200


# ---- throttling ------------------------------------------------------------------------------


def test_throttling_is_per_replica(world: World, lb: LoadBalancer) -> None:
    # 1 per minute, burst 2: a replica passes two requests, then answers 429 for a minute.
    limits = {MSE + "route-limit-rpm": "1", MSE + "route-limit-burst-multiplier": "2"}
    route(world, "limited", "limited.example", limits)
    first = Client(lb.address, lb.listen_port)  # one connection: one replica
    try:
        assert [first.get("limited.example")[0] for _ in range(2)] == [200, 200]
        status, headers, body = first.get("limited.example")
        assert (status, body, headers["server"]) == (429, THROTTLED, "istio-envoy")
        # The CLB gives the next connection to the next of the 3 replicas: its own bucket.
        assert call(lb, "limited.example")[0] == 200
        assert first.get("limited.example")[0] == 429
    finally:
        first.close()
    # A malformed limit is ignored, as Higress ignores it: no throttling at all.
    route(world, "bad-limit", "bad-limit.example", {MSE + "route-limit-rps": "-1"})
    again = Client(lb.address, lb.listen_port)
    try:
        assert {again.get("bad-limit.example")[0] for _ in range(12)} == {200}
    finally:
        again.close()


# ---- header control --------------------------------------------------------------------------


def test_header_control_on_requests_and_responses(world: World, lb: LoadBalancer) -> None:
    route(
        world,
        "headers",
        "headers.example",
        {
            MSE + "request-header-control-add": "x-egress-cluster sandbox\nx-extra from-gateway",
            MSE + "request-header-control-update": "user-agent egress-gateway",
            MSE + "request-header-control-remove": "x-forwarded-for,x-request-id",
            MSE + "response-header-control-update": "x-egress-gateway mse",
            MSE + "response-header-control-add": "content-type charset=utf-8",
            MSE + "response-header-control-remove": "x-envoy-upstream-service-time",
            NGINX + "upstream-vhost": "vhost.example",
        },
    )
    status, headers, body = call(
        lb, "headers.example", headers={"x-extra": "from-pod", "user-agent": "curl/8.10.1"}
    )
    assert status == 200, body
    sent = seen(body)["headers"]
    assert sent["x-egress-cluster"] == "sandbox" and sent["x-extra"] == "from-pod,from-gateway"
    assert sent["user-agent"] == "egress-gateway" and sent["host"] == "vhost.example"
    # The gateway's own headers are in place before header control, so they can go.
    assert "x-forwarded-for" not in sent and "x-request-id" not in sent
    assert sent["x-forwarded-proto"] == "http" and POD not in json.dumps(sent)
    assert headers["x-egress-gateway"] == "mse"
    assert headers["content-type"] == "application/json,charset=utf-8"
    assert "x-envoy-upstream-service-time" not in headers
    # Without the policy the internal address leaks: x-forwarded-for names the pod.
    annotate(world, "headers", {})
    status, headers, body = call(lb, "headers.example")
    assert (
        seen(body)["headers"]["x-forwarded-for"] == POD and "x-request-id" in seen(body)["headers"]
    )
    assert "x-envoy-upstream-service-time" in headers and "x-egress-gateway" not in headers


# ---- timeouts and retries --------------------------------------------------------------------


def test_route_timeout_answers_504(world: World, lb: LoadBalancer) -> None:
    route(world, "slow", "slow.example", {MSE + "timeout": "1"})
    assert call(lb, "slow.example", "/delay/3")[::2] == (504, UPSTREAM_TIMEOUT)
    assert call(lb, "slow.example", "/delay/0")[0] == 200
    annotate(world, "slow", {MSE + "timeout": "1s"})  # malformed: no timeout
    assert call(lb, "slow.example", "/delay/2")[0] == 200


def test_retries_count_and_conditions(world: World, box: Sandbox, lb: LoadBalancer) -> None:
    def attempts(path: str) -> int:
        before = len(box.dataplane.origin.requests(ORIGIN))
        status, _, _ = call(lb, "retry.example", path)
        assert status >= 500, status
        return len(box.dataplane.origin.requests(ORIGIN)) - before

    retries = {NGINX + "proxy-next-upstream-tries": "2", NGINX + "proxy-next-upstream": "http_503"}
    route(world, "retry", "retry.example", retries)
    assert attempts("/status/503") == 3  # the first try and 2 retries
    assert attempts("/status/502") == 1  # not a condition given
    annotate(world, "retry", {**retries, NGINX + "proxy-next-upstream": "off"})
    assert attempts("/status/503") == 1
    annotate(world, "retry", {})  # Istio's default: 2 retries on 503 and connect failures
    assert attempts("/status/503") == 3
    # A per-try timeout of 1 s with a retry on timeouts: two tries, then 504.
    per_try = {
        NGINX + "proxy-next-upstream-tries": "1",
        NGINX + "proxy-next-upstream-timeout": "1",
        NGINX + "proxy-next-upstream": "timeout",
    }
    annotate(world, "retry", per_try)
    before = len(box.dataplane.origin.requests(ORIGIN))
    assert call(lb, "retry.example", "/delay/3")[::2] == (504, UPSTREAM_TIMEOUT)
    assert len(box.dataplane.origin.requests(ORIGIN)) - before == 2


# ---- load balancing over several Services, one of them down -----------------------------------


def test_weights_and_a_host_down(world: World, box: Sandbox, lb: LoadBalancer) -> None:
    world.store.create(world.services, external_service("lb-primary", "primary.lb.example"))
    world.store.create(world.services, external_service("lb-backup", "backup.lb.example"))
    lines = "\n".join(
        f"50% {name}.default.svc.cluster.local:80" for name in ("lb-primary", "lb-backup")
    )
    anns = {
        MSE + "destination": lines,
        NGINX + "load-balance": "round_robin",
        NGINX + "proxy-next-upstream-tries": "3",
        NGINX + "proxy-next-upstream": "error,timeout",
    }
    route(world, "balanced", "lb.example", anns, service="lb-primary")

    def hosts(n: int) -> list[str | int]:
        out: list[str | int] = []
        for _ in range(n):
            status, _, body = call(lb, "lb.example")
            out.append(seen(body)["upstream_host"] if status == 200 else status)
        return out

    both = hosts(40)
    assert set(both) == {"primary.lb.example", "backup.lb.example"}
    assert 8 <= both.count("backup.lb.example") <= 32  # about half, from the seeded draws
    control = ControlClient.from_home(box.home)
    assert control.origin_down("backup.lb.example")["down"] is True
    try:
        listed = {h["host"]: h["down"] for h in control.origin_hosts()}
        assert listed["backup.lb.example"] is True
        # Envoy keeps a retry in the Service the weighted pick chose: requests that went to
        # the backup fail even with 3 retries; the others reach the primary.
        results = hosts(30)
        assert "primary.lb.example" in results and 503 in results
        assert "backup.lb.example" not in results
        failed = [call(lb, "lb.example") for _ in range(20)]
        bodies = {b for s, _, b in failed if s == 503}
        assert bodies == {
            (
                b"upstream connect error or disconnect/reset before headers. retried and the "
                b"latest reset reason: remote connection failure, transport failure reason: "
                b"delayed connect error: 111"
            )
        }
        # Failing over is a change of weights: all of it to the primary, all succeed.
        weights = lines.replace("50% lb-primary", "100% lb-primary").replace("50%", "0%")
        annotate(world, "balanced", {**anns, MSE + "destination": weights})
        assert set(hosts(10)) == {"primary.lb.example"}
        # Weights that do not make 100 are ignored: the Ingress backend (the primary) serves.
        bad = lines.replace("50% lb-backup", "40% lb-backup")
        annotate(world, "balanced", {**anns, MSE + "destination": bad})
        assert set(hosts(10)) == {"primary.lb.example"}
    finally:
        assert cli_main(["--home", str(box.home), "origin", "up", "backup.lb.example"]) == 0
    assert not box.dataplane.origin_rules.rule("backup.lb.example").down


def test_down_host_refuses_and_status_paths(world: World, box: Sandbox, lb: LoadBalancer) -> None:
    world.store.create(world.services, external_service("flaky", "flaky.example"))
    route(world, "flaky", "flaky.example", {NGINX + "proxy-next-upstream": "off"}, service="flaky")
    assert call(lb, "flaky.example", "/status/418")[::2] == (418, b"")
    assert call(lb, "flaky.example", "/status/abc")[0] == 400
    box.dataplane.set_origin_down("flaky.example", True)
    try:
        status, _, body = call(lb, "flaky.example")
        assert status == 503 and body.endswith(
            b"remote connection failure, transport failure reason: delayed connect error: 111"
        )
        assert b"retried" not in body
    finally:
        box.dataplane.set_origin_down("flaky.example", False)
    assert call(lb, "flaky.example")[0] == 200
