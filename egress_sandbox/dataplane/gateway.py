"""The MSE gateway's data plane: a real HTTP reverse proxy on each CLB address.

It answers as Envoy (MSE is Higress, i.e. Envoy) does: lower-case headers, ``server:
istio-envoy``, an empty 404 when no route matches, 503 ``no healthy upstream`` for a backend
with no endpoints, and 503 ``upstream connect error ...`` when the upstream cannot be reached,
which is what happens when the gateway's vSwitch has no SNAT. With SNAT, the request goes to
the origin with a PROXY header whose source is the EIP.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from egress_sandbox.dataplane import proxyproto
from egress_sandbox.dataplane.httputil import HOP_BY_HOP, BodyError, host_only, read_body
from egress_sandbox.dataplane.routes import Upstream

log = logging.getLogger(__name__)
SERVER = "istio-envoy"
CONNECT_FAILURE = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)
CONNECT_TERMINATION = (
    b"upstream connect error or disconnect/reset before headers. "
    b"reset reason: connection termination"
)
NO_HEALTHY_UPSTREAM = b"no healthy upstream"
UPSTREAM_TIMEOUT = 15.0  # Envoy's default route timeout is 15 s


@dataclass(frozen=True)
class Decision:
    """What the control plane says about one request: where it goes and how it leaves."""

    upstream: Upstream | None
    egress_ip: str | None


@dataclass(frozen=True)
class GatewayContext:
    lb_id: str
    decide: Callable[[str, str], Decision]  # (host, path) -> Decision
    origin_host: str
    origin_http_port: Callable[[], int]
    origin_https_port: Callable[[], int]
    request_id: Callable[[], str]
    scheme: str = "http"  # "https" on listener 443, after TLS termination


def _tls_client_context() -> ssl.SSLContext:
    # Higress does not verify plain HTTPS upstream certificates by default (reference
    # section 3, commit 74c68180); whether MSE does is UNCONFIRMED.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS = _tls_client_context()


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, sock: socket.socket, peer: tuple[str, int], ctx: GatewayContext) -> None:
        self.ctx = ctx
        super().__init__(sock, peer, None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gateway %s: " + format, self.ctx.lb_id, *args)

    # ---- responses ---------------------------------------------------------------------------

    def _head(self, code: int, headers: list[tuple[str, str]]) -> None:
        self.send_response_only(code)
        self.send_header("date", self.date_time_string())
        self.send_header("server", SERVER)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()

    def _local_reply(self, code: int, body: bytes) -> None:
        headers = [("content-length", str(len(body)))]
        if body:
            headers.insert(0, ("content-type", "text/plain"))
        self._head(code, headers)
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    # ---- proxying ----------------------------------------------------------------------------

    def _proxy(self) -> None:
        started = time.monotonic()
        try:
            body = read_body(self.rfile, self.headers)
        except (BodyError, ValueError):
            self.close_connection = True
            self._local_reply(400, b"Bad Request")
            return
        url = urlsplit(self.path)
        host = host_only(url.netloc or self.headers.get("Host", ""))
        target = url.path or "/"
        decision = self.ctx.decide(host, target)
        up = decision.upstream
        if up is None:
            self._local_reply(404, b"")
            return
        if up.kind != "external":
            self._local_reply(503, NO_HEALTHY_UPSTREAM)
            return
        if decision.egress_ip is None:
            self._local_reply(503, CONNECT_FAILURE)
            return
        try:
            sock = self._connect(up, decision.egress_ip)
        except OSError:
            self._local_reply(503, CONNECT_FAILURE)
            return
        conn = http.client.HTTPConnection(up.host, up.port, timeout=UPSTREAM_TIMEOUT)
        conn.sock = sock
        try:
            self._forward(
                conn, up, body, url.path + (f"?{url.query}" if url.query else ""), started
            )
        finally:
            conn.close()

    def _connect(self, up: Upstream, egress_ip: str) -> socket.socket:
        port = self.ctx.origin_https_port() if up.tls else self.ctx.origin_http_port()
        sock = socket.create_connection((self.ctx.origin_host, port), timeout=UPSTREAM_TIMEOUT)
        try:
            sport = sock.getsockname()[1]
            # The origin stands for every public host; the PROXY line carries the EIP the NAT
            # used and the backend port the gateway dialled.
            sock.sendall(
                proxyproto.ProxyHeader(egress_ip, self.ctx.origin_host, sport, up.port).encode()
            )
            if up.tls:
                return _TLS.wrap_socket(sock, server_hostname=up.sni)
            return sock
        except (OSError, ssl.SSLError):
            sock.close()
            raise

    def _upstream_headers(self, up: Upstream) -> list[tuple[str, str]]:
        original_host = self.headers.get("Host", "")
        out = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "content-length")
        ]
        names = {k.lower() for k, _ in out}
        out.insert(0, ("host", up.host_header or original_host))
        xff = self.headers.get("x-forwarded-for")
        client = self.client_address[0]
        out = [(k, v) for k, v in out if k.lower() != "x-forwarded-for"]
        # Headers the FAQ says the gateway adds (reference section 5, "Host header").
        out.append(("x-forwarded-for", f"{xff}, {client}" if xff else client))
        if "x-forwarded-proto" not in names:
            out.append(("x-forwarded-proto", self.ctx.scheme))
        if "x-request-id" not in names:
            out.append(("x-request-id", self.ctx.request_id()))
        out.append(("req-start-time", str(int(time.time() * 1000))))
        out.append(("x-envoy-original-host", original_host))
        return out

    def _forward(
        self,
        conn: http.client.HTTPConnection,
        up: Upstream,
        body: bytes,
        target: str,
        started: float,
    ) -> None:
        try:
            conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for k, v in self._upstream_headers(up):
                conn.putheader(k, v)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("content-length", str(len(body)))
            conn.putheader("connection", "close")
            conn.endheaders(body or None)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            self._local_reply(503, CONNECT_TERMINATION)
            return
        headers = [
            (k.lower(), v)
            for k, v in resp.getheaders()
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")
        ]
        headers.append(
            ("x-envoy-upstream-service-time", str(int((time.monotonic() - started) * 1000)))
        )
        length = resp.getheader("content-length")
        chunked = length is None and self.command != "HEAD" and resp.status not in (204, 304)
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        self._head(resp.status, headers)
        if self.command == "HEAD":
            return
        while True:
            chunk = resp.read1(65536) if chunked else resp.read(65536)
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _proxy


def serve(conn: socket.socket, ctx: GatewayContext) -> None:
    """Handle one client connection (keep-alive included) on a CLB listener."""
    peer = conn.getpeername()
    GatewayHandler(conn, (str(peer[0]), int(peer[1])), ctx)
