"""The MSE gateway's data plane: a real HTTP reverse proxy on each CLB address.

It answers as Envoy (MSE is Higress, i.e. Envoy) does: lower-case headers, ``server:
istio-envoy``, an empty 404 when no route matches, 503 ``no healthy upstream`` for a backend
with no endpoints, and 503 ``upstream connect error ...`` when the upstream cannot be reached,
which is what happens when the gateway's vSwitch has no SNAT. With SNAT, the request goes to
the origin with a PROXY header whose source is the EIP and whose destination is the public
address of the host dialled.

Each request passes, in order: the gateway-wide IP lists, route matching, the route's (else
the domain's) IP lists (403), the route's token bucket on this connection's replica (429),
the weighted pick of a Service, header control, mirroring, then attempts with retries and the
route timeout (503/504), and response header control on the way back.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from egress_sandbox.dataplane import headers as hdrs
from egress_sandbox.dataplane import ipacl
from egress_sandbox.dataplane.decide import GatewayView, RouteDecision, pick
from egress_sandbox.dataplane.forward import (
    UPSTREAM_TIMEOUT,
    Forwarder,
    Outcome,
    Request,
    reset_body,
)
from egress_sandbox.dataplane.httputil import HOP_BY_HOP, BodyError, host_only, read_body
from egress_sandbox.dataplane.mirror import Mirror, MirrorCopy, shadow_host
from egress_sandbox.dataplane.ratelimit import THROTTLED, RateLimiter
from egress_sandbox.dataplane.routes import Upstream

log = logging.getLogger(__name__)
SERVER = "istio-envoy"
CONNECT_FAILURE = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)
CONNECT_TERMINATION = reset_body("connection termination", retried=False)
NO_HEALTHY_UPSTREAM = b"no healthy upstream"


@dataclass(frozen=True)
class GatewayContext:
    lb_id: str
    address: str  # the CLB's address: where mirror copies leave from
    view: Callable[[], GatewayView | None]  # None: no gateway behind the CLB
    decide: Callable[[str, str, str], RouteDecision | None]  # (config, host, path)
    forwarder: Forwarder
    limiter: RateLimiter
    mirror: Mirror
    draw: Callable[[], float]  # uniform in [0, 1), from the sandbox's seeded randomness
    request_id: Callable[[], str]
    assign_replica: Callable[[], int | None]  # the CLB's round-robin; None: no replica
    scheme: str = "http"  # "https" on listener 443, after TLS termination


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(
        self, sock: socket.socket, peer: tuple[str, int], ctx: GatewayContext, replica: int
    ) -> None:
        self.ctx = ctx
        self.replica = replica
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

    # ---- the filter chain --------------------------------------------------------------------

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
        view = self.ctx.view()
        if view is None:
            self._local_reply(404, b"")
            return
        source = self.client_address[0]
        if not ipacl.admitted(source, view.source, None, None):
            self._local_reply(403, ipacl.DENIED)
            return
        decision = self.ctx.decide(view.config_name, host, url.path or "/")
        if decision is None:
            self._local_reply(404, b"")
            return
        policy = decision.policy
        if not ipacl.admitted(source, None, policy.source, decision.domain_source):
            self._local_reply(403, ipacl.DENIED)
            return
        limit = policy.rate_limit
        route = (self.ctx.lb_id, *decision.match.route_key)
        if limit is not None and not self.ctx.limiter.take(self.replica, route, limit):
            self._local_reply(429, THROTTLED)
            return
        up = pick(decision.clusters, self.ctx.draw())
        target = url.path + (f"?{url.query}" if url.query else "")
        out = hdrs.apply(self._upstream_headers(up), policy.request_headers)
        req = Request(self.command, target or "/", out, body)
        self._mirror(decision, req)
        if up.kind != "external":
            self._local_reply(503, NO_HEALTHY_UPSTREAM)
            return
        if view.egress_ip is None:
            self._local_reply(503, CONNECT_FAILURE)
            return
        outcome = self.ctx.forwarder.exchange(up, view.egress_ip, req, policy.retry, policy.timeout)
        try:
            self._answer(outcome, decision, started)
        finally:
            outcome.attempt.close()

    def _mirror(self, decision: RouteDecision, req: Request) -> None:
        target = decision.policy.mirror
        if target is None or target.percentage <= 0:
            return
        if target.percentage < 100 and self.ctx.draw() * 100 >= target.percentage:
            return
        copy_headers = [(k, shadow_host(v) if k == "host" else v) for k, v in req.headers]
        self.ctx.mirror.submit(
            MirrorCopy(
                target.namespace,
                target.name,
                target.port,
                req.method,
                req.target,
                copy_headers,
                req.body,
                self.ctx.address,
                self.ctx.draw(),
            )
        )

    def _upstream_headers(self, up: Upstream) -> list[tuple[str, str]]:
        original_host = self.headers.get("Host", "")
        out = [
            (k.lower(), v)
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "content-length")
        ]
        names = {k for k, _ in out}
        out.insert(0, ("host", up.host_header or original_host))
        xff = self.headers.get("x-forwarded-for")
        client = self.client_address[0]
        out = [(k, v) for k, v in out if k != "x-forwarded-for"]
        # Headers the FAQ says the gateway adds (reference section 5, "Host header"); they are
        # in place before header control runs, so a policy can remove them.
        out.append(("x-forwarded-for", f"{xff}, {client}" if xff else client))
        if "x-forwarded-proto" not in names:
            out.append(("x-forwarded-proto", self.ctx.scheme))
        if "x-request-id" not in names:
            out.append(("x-request-id", self.ctx.request_id()))
        out.append(("req-start-time", str(int(time.time() * 1000))))
        out.append(("x-envoy-original-host", original_host))
        return out

    def _answer(self, outcome: Outcome, decision: RouteDecision, started: float) -> None:
        att = outcome.attempt
        if outcome.timed_out:
            self._local_reply(504, UPSTREAM_TIMEOUT)
            return
        resp = att.resp
        if resp is None:
            self._local_reply(503, reset_body(att.reason, outcome.retried))
            return
        headers = [
            (k.lower(), v)
            for k, v in resp.getheaders()
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")
        ]
        headers.append(
            ("x-envoy-upstream-service-time", str(int((time.monotonic() - started) * 1000)))
        )
        headers = hdrs.apply(headers, decision.policy.response_headers)
        length = resp.getheader("content-length")
        chunked = length is None and self.command != "HEAD" and resp.status not in (204, 304)
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        self._head(resp.status, headers)
        if self.command == "HEAD":
            return
        sock = att.conn.sock if att.conn is not None else None
        while True:
            left = outcome.deadline - time.monotonic()
            if left <= 0:
                self.close_connection = True  # the route timeout ends the stream, as a reset
                return
            if sock is not None:
                sock.settimeout(left)
            try:
                chunk = resp.read1(65536) if chunked else resp.read(65536)
            except (OSError, ValueError):
                self.close_connection = True
                return
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _proxy


def serve(conn: socket.socket, ctx: GatewayContext) -> None:
    """Handle one client connection (keep-alive included) on a CLB listener.

    The CLB hands each new connection to the next gateway replica (round robin); every request
    on it is then that replica's, for throttling. No replica: the connection is closed.
    """
    replica = ctx.assign_replica()
    if replica is None:
        return
    peer = conn.getpeername()
    GatewayHandler(conn, (str(peer[0]), int(peer[1])), ctx, replica)
