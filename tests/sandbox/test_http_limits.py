"""The sandbox's HTTP servers refuse what the real services refuse, and slow clients cannot stall
them: header deadline, idle limit, size limits checked before reading (and, on the OpenAPI and
control endpoints, before authentication), bounded connections, JSON errors in each service's
own shape. Each server runs alone here with short limits; the attacks are raw sockets.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from raw_http import Reply, connect, exchange, read_reply, request_bytes
from waiting import wait_for

from egress_sandbox.aliyun.app import MAX_BODY as OPENAPI_LIMIT
from egress_sandbox.aliyun.server import OpenApiServer
from egress_sandbox.control.server import MAX_BODY as CONTROL_LIMIT
from egress_sandbox.control.server import ControlApp, ControlServer
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.httpguard import HttpLimits
from egress_sandbox.core.httpserver import ThreadedServer
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.bodies import MAX_BODY as K8S_LIMIT
from egress_sandbox.k8s.bootstrap import bootstrap_cluster
from egress_sandbox.k8s.server import KubeApiServer
from egress_sandbox.k8s.store import Store
from egress_sandbox.topology import Topology, build_cloud

pytestmark = pytest.mark.timeout(60)

TOKEN = "admin-token-for-limits"
# Short enough to watch them act; the defaults (HttpLimits()) are 10 s and 30 s.
SHORT = {"header_timeout": 1.0, "idle_timeout": 2.0}
POP_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


class _NoHooks:
    def addon_installing(self, *_: Any) -> None: ...
    def addon_installed(self, *_: Any) -> None: ...
    def addon_uninstalled(self, *_: Any) -> None: ...
    def kubeconfig(self, cluster_id: str) -> str:
        return ""


@dataclass
class Servers:
    k8s: KubeApiServer
    openapi: OpenApiServer
    control: ControlServer
    ca: str
    audit: AuditLog


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    home = tmp_path_factory.mktemp("limits")
    pki = SandboxPki(home)
    store = Store(IdFactory(48))
    bootstrap_cluster(store)
    audit = AuditLog()
    k8s = KubeApiServer(
        store,
        ssl_context=pki.server_context("127.0.0.1", "localhost"),
        users={TOKEN: User("sandbox-admin", ("system:masters",))},
        audit=audit,
        limits=HttpLimits(max_body=K8S_LIMIT, **SHORT),
    )
    topology = Topology()
    ids = IdFactory(topology.seed)
    scheduler = Scheduler()
    openapi = OpenApiServer(
        build_cloud(topology, ids),
        lock=threading.RLock(),
        ids=ids,
        scheduler=scheduler,
        transitions=topology.transitions,
        hooks=_NoHooks(),
        audit=audit,
        limits=HttpLimits(max_body=OPENAPI_LIMIT, **SHORT),
    )
    # The controls are never reached: every request here is refused before routing.
    control = ControlServer(
        ControlApp(None, admin_token=TOKEN, readonly_token="ro", audit=audit, ids=ids),  # type: ignore[arg-type]
        limits=HttpLimits(max_body=CONTROL_LIMIT, **SHORT),
    )
    for s in (k8s, openapi, control):
        s.start()
    try:
        yield Servers(k8s, openapi, control, str(Path(pki.ca_path)), audit)
    finally:
        for s in (k8s, openapi, control):
            s.stop()
        scheduler.stop()


def _k8s_version(servers: Servers) -> Reply | None:
    return exchange(
        servers.k8s.port,
        request_bytes("GET", "/version", {"Authorization": f"Bearer {TOKEN}"}),
        ca=servers.ca,
        timeout=5,
    )


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the server closed (or reset) ``sock`` without sending anything."""
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


# ---- slow clients ------------------------------------------------------------------------


def test_a_silent_client_does_not_stop_the_kubernetes_api(servers: Servers) -> None:
    # TLS handshakes used to run inside accept(): one connection that sent nothing stopped
    # every other client of the Kubernetes API.
    silent = socket.create_connection(("127.0.0.1", servers.k8s.port))
    try:
        reply = _k8s_version(servers)
        assert reply is not None and reply.status == 200
        assert reply.json()["major"] == "1"
        assert _closed_within(silent, 10), "the silent client was never let go"
    finally:
        silent.close()


@pytest.mark.parametrize("which", ["k8s", "openapi", "control"])
def test_headers_sent_one_byte_at_a_time_are_cut_off(servers: Servers, which: str) -> None:
    port = getattr(servers, which).port
    sock = connect(port, ca=servers.ca if which == "k8s" else None)
    request = request_bytes("GET", "/version", {"X-Slow": "x" * 200})
    closed = False
    try:
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if _closed_within(sock, 0.05):
                closed = True
                break
    finally:
        sock.close()
    assert closed, "the whole request went through, one byte every 50 ms"


def test_a_body_that_stops_coming_is_answered_or_closed(servers: Servers) -> None:
    sock = connect(servers.openapi.port)
    try:
        head = request_bytes("POST", "/", {"x-acs-action": "DescribeVpcs"}, b"")
        sock.sendall(head.replace(b"Content-Length: 0", b"Content-Length: 100") + b"RegionId=")
        reply = read_reply(sock)  # the idle limit ends the wait for the other 91 bytes
    finally:
        sock.close()
    if reply is not None:
        assert reply.status == 400 and set(reply.json()) == POP_KEYS
        assert reply.json()["Code"] == "BadRequest"


def test_stop_does_not_wait_for_a_client_that_never_sends(tmp_path: Path) -> None:
    topology = Topology()
    ids = IdFactory(topology.seed)
    scheduler = Scheduler()
    server = OpenApiServer(
        build_cloud(topology, ids),
        lock=threading.RLock(),
        ids=ids,
        scheduler=scheduler,
        transitions=topology.transitions,
        hooks=_NoHooks(),
        limits=HttpLimits(header_timeout=600, idle_timeout=600),
    )
    server.start()
    silent = socket.create_connection(("127.0.0.1", server.port))
    try:
        time.sleep(0.2)  # the server's thread is now blocked reading it
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(20)  # the header deadline is 600 s: only cutting the read ends it
        assert not stopper.is_alive(), "stop() waited for the silent client"
    finally:
        silent.close()
        scheduler.stop()


def test_connections_beyond_the_limit_are_closed_and_later_ones_served(tmp_path: Path) -> None:
    app_calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        app_calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    server = ThreadedServer(
        app, host="127.0.0.1", name="limited", limits=HttpLimits(max_connections=2, **SHORT)
    )
    server.start()
    holders = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        time.sleep(0.2)  # both are accepted and hold their slots
        assert exchange(server.port, request_bytes("GET", "/third"), timeout=5) is None
        for h in holders:
            h.close()

        def served() -> Reply | None:
            reply = exchange(server.port, request_bytes("GET", "/later"), timeout=5)
            return reply if reply is not None and reply.status == 200 else None

        wait_for(served, 10, "a connection once the slots are free")
        assert "/third" not in app_calls
    finally:
        for h in holders:
            h.close()
        server.stop()


# ---- sizes -------------------------------------------------------------------------------


def test_openapi_refuses_a_declared_oversized_body_before_reading_it(servers: Servers) -> None:
    # Only the headers are sent: the answer must come without the 200 MB, unauthenticated.
    head = request_bytes(
        "POST", "/", {"x-acs-action": "DescribeVpcs", "x-acs-version": "2016-04-28"}, b""
    ).replace(b"Content-Length: 0", f"Content-Length: {200 * 2**20}".encode())
    reply = exchange(servers.openapi.port, head, timeout=5)
    assert reply is not None and reply.status == 413
    body = reply.json()
    assert set(body) == POP_KEYS and body["Code"] == "RequestEntityTooLarge"
    assert body["Message"] == f"The request body exceeds the limit of {OPENAPI_LIMIT} bytes."
    assert reply.headers["x-acs-request-id"] == body["RequestId"]
    record = next(r for r in servers.audit.records() if r.request_id == body["RequestId"])
    assert (record.principal, record.status, record.action) == (
        "anonymous",
        413,
        "DescribeVpcs",
    )


def _chunks(total: int) -> Iterator[bytes]:
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(total // len(piece)):
        yield chunk
    yield b"0\r\n\r\n"


def test_an_endless_chunked_body_is_refused_with_bounded_memory(servers: Servers) -> None:
    # 200 MB once took the OpenAPI endpoint to 493 MB; the body here is never held whole.
    process = psutil.Process()
    before = process.memory_info().rss
    head = request_bytes(
        "POST", "/", {"x-acs-action": "DescribeVpcs", "x-acs-version": "2016-04-28"}, b""
    )
    head = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    reply = exchange(servers.openapi.port, [head, *_chunks(64 * 2**20)], timeout=10)
    grown = process.memory_info().rss - before
    assert grown < 32 * 2**20, f"the server held the body: {grown // 2**20} MiB"
    if reply is not None:  # or the connection was closed mid-body: both refuse it
        assert reply.status == 413 and reply.json()["Code"] == "RequestEntityTooLarge"


def test_kubernetes_refuses_a_body_over_3_mib(servers: Servers) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    head = request_bytes("POST", "/api/v1/namespaces/default/configmaps", headers, b"")
    declared = head.replace(b"Content-Length: 0", f"Content-Length: {K8S_LIMIT + 1}".encode())
    reply = exchange(servers.k8s.port, declared, ca=servers.ca, timeout=5)
    assert reply is not None and reply.status == 413
    assert reply.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"Request entity too large: limit is {K8S_LIMIT}",
        "reason": "RequestEntityTooLarge",
        "code": 413,
    }
    chunked = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    reply = exchange(servers.k8s.port, [chunked, *_chunks(8 * 2**20)], ca=servers.ca)
    if reply is not None:
        assert reply.status == 413 and reply.json()["reason"] == "RequestEntityTooLarge"


def test_control_refuses_an_oversized_body_before_authentication(servers: Servers) -> None:
    head = request_bytes("POST", "/_sandbox/faults", {}, b"").replace(
        b"Content-Length: 0", f"Content-Length: {CONTROL_LIMIT + 1}".encode()
    )
    reply = exchange(servers.control.port, head, timeout=5)
    assert reply is not None and reply.status == 413
    assert reply.json() == {"error": f"the request body is larger than {CONTROL_LIMIT} bytes"}


def test_headers_over_1_mib_are_refused(servers: Servers) -> None:
    many = {f"X-Pad-{i}": "a" * 60000 for i in range(20)}
    reply = exchange(servers.k8s.port, request_bytes("GET", "/version", many), ca=servers.ca)
    if reply is not None:
        assert reply.status == 431 and reply.json()["kind"] == "Status"


# ---- malformed HTTP ------------------------------------------------------------------------

_POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
MALFORMED = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n\r\n",
    "unknown HTTP version": b"GET / HTTP/9.9\r\n\r\n",
    "bad Content-Length": _POST + b"Content-Length: ten\r\n\r\n",
    "two Content-Lengths": _POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "unknown Transfer-Encoding": _POST + b"Transfer-Encoding: gzip\r\n\r\n",
    "request line over 64 KiB": b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    "too many headers": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n"
    ),
}


def _shape(which: str, reply: Reply) -> None:
    body = reply.json()
    if which == "k8s":
        assert body["kind"] == "Status" and body["code"] == reply.status, body
        assert body["status"] == "Failure" and isinstance(body["message"], str), body
    elif which == "openapi":
        assert set(body) == POP_KEYS and body["Code"] == "BadRequest", body
    else:
        assert set(body) == {"error"}, body


@pytest.mark.parametrize("which", ["k8s", "openapi", "control"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_http_is_a_4xx_json_in_the_services_shape(
    servers: Servers, which: str, case: str
) -> None:
    port = getattr(servers, which).port
    reply = exchange(port, MALFORMED[case], ca=servers.ca if which == "k8s" else None)
    assert reply is not None, "answered by closing; these deserve an answer"
    assert 400 <= reply.status < 500, (reply.status, reply.body[:200])
    assert reply.headers["content-type"].startswith("application/json"), reply.body[:200]
    _shape(which, reply)
    # And the server is still there.
    assert _k8s_version(servers) is not None


def test_a_malformed_chunked_body_is_a_400_not_a_500(servers: Servers) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    head = request_bytes("POST", "/api/v1/namespaces/default/configmaps", headers, b"")
    head = head.replace(b"Content-Length: 0\r\n", b"")
    reply = exchange(servers.k8s.port, head + b"zz\r\n{}\r\n0\r\n\r\n", ca=servers.ca)
    assert reply is not None and reply.status == 400
    assert reply.json()["reason"] == "BadRequest"


def test_an_app_that_raises_answers_a_json_500_not_an_html_page() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("a bug")

    server = ThreadedServer(app, host="127.0.0.1", name="buggy")
    server.start()
    try:
        reply = exchange(server.port, request_bytes("GET", "/"))
        assert reply is not None and reply.status == 500
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {"error": "internal error"}
    finally:
        server.stop()


def test_the_defaults_are_bounded() -> None:
    limits = HttpLimits()
    assert 0 < limits.header_timeout <= 32  # kube-apiserver's ReadHeaderTimeout is 32 s
    assert 0 < limits.idle_timeout <= 90  # and its IdleTimeout 90 s
    assert limits.max_header_bytes == 1 << 20  # Go's DefaultMaxHeaderBytes
    assert 0 < limits.max_connections <= 1000
