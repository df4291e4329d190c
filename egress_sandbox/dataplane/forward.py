"""One request towards an external upstream: attempts, retries, timeouts, Envoy's failures.

An attempt dials the upstream through the NAT (the data plane's ``dial``: a down host refuses
the connection), does TLS when the backend protocol says so, sends the request and waits for
the response head. Failures are classed as Envoy does (connect failure, reset before headers,
per-try timeout) for the retry policy; the route timeout (``mse.ingress.kubernetes.io/timeout``)
bounds every attempt and back-off together and ends in 504 ``upstream request timeout``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from egress_sandbox.dataplane.retry import CONNECT, RESET, TIMEOUT, RetryPolicy, backoff
from egress_sandbox.dataplane.routes import Upstream
from egress_sandbox.dataplane.upstream_tls import MissingSecret, tls_failure

CONNECT_TIMEOUT = 10.0  # Istio's default cluster connect timeout
# No route timeout: MSE waits as long as the upstream takes (Istio disables Envoy's 15 s
# default); the sandbox still gives up after this long, so that no wait is without end.
SAFETY_TIMEOUT = 60.0
UPSTREAM_TIMEOUT = b"upstream request timeout"
_PREFIX = "upstream connect error or disconnect/reset before headers. "
REFUSED = "remote connection failure, transport failure reason: delayed connect error: 111"

Dial = Callable[[str, str, int, float], socket.socket]  # (egress ip, host, port, timeout)
TlsFor = Callable[[Upstream], ssl.SSLContext]  # may raise MissingSecret


def reset_body(reason: str, retried: bool) -> bytes:
    """Envoy's 503 body for a request that never got response headers."""
    latest = "retried and the latest " if retried else ""
    return f"{_PREFIX}{latest}reset reason: {reason}".encode()


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Attempt:
    failure: str | None = None  # CONNECT, RESET or TIMEOUT; None: the upstream answered
    reason: str = ""  # Envoy's reset reason for the 503 body
    conn: http.client.HTTPConnection | None = None
    resp: http.client.HTTPResponse | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@dataclass
class Outcome:
    attempt: Attempt
    retried: bool
    timed_out: bool  # the route timeout (or a last per-try timeout) expired: 504
    deadline: float  # monotonic time by which the response body must be in, too


class Forwarder:
    def __init__(self, dial: Dial, tls_for: TlsFor, draw: Callable[[], float]) -> None:
        self._dial = dial
        self._tls_for = tls_for
        self._draw = draw

    def exchange(
        self,
        up: Upstream,
        egress_ip: str,
        req: Request,
        policy: RetryPolicy,
        timeout: float | None,
    ) -> Outcome:
        """Attempts until one answers for good, retries run out, or the route timeout ends."""
        deadline = time.monotonic() + (timeout or SAFETY_TIMEOUT)
        retries = 0
        while True:
            now = time.monotonic()
            try_deadline = deadline
            if policy.per_try_timeout is not None:
                try_deadline = min(deadline, now + policy.per_try_timeout)
            att = self._attempt(up, egress_ip, req, try_deadline)
            if time.monotonic() >= deadline and att.resp is None:
                att.close()
                return Outcome(att, retries > 0, True, deadline)
            status = att.resp.status if att.resp is not None else None
            if retries < policy.num_retries and policy.retries(att.failure, status):
                pause = backoff(retries + 1, self._draw())
                if time.monotonic() + pause < deadline:
                    att.close()
                    time.sleep(pause)
                    retries += 1
                    continue
            return Outcome(att, retries > 0, att.failure == TIMEOUT, deadline)

    def _attempt(self, up: Upstream, egress_ip: str, req: Request, deadline: float) -> Attempt:
        def left() -> float:
            return max(deadline - time.monotonic(), 0.001)

        try:
            sock = self._dial(egress_ip, up.host, up.port, min(CONNECT_TIMEOUT, left()))
        except ConnectionRefusedError:
            return Attempt(CONNECT, REFUSED)
        except TimeoutError:
            return Attempt(
                TIMEOUT if time.monotonic() >= deadline else CONNECT, "connection timeout"
            )
        except OSError:
            return Attempt(CONNECT, REFUSED)
        if up.tls:
            try:
                ctx = self._tls_for(up)
                sock.settimeout(left())
                sock = ctx.wrap_socket(sock, server_hostname=up.sni)
            except TimeoutError:
                sock.close()
                return Attempt(TIMEOUT, "connection timeout")
            except (MissingSecret, ssl.SSLError, OSError) as exc:
                sock.close()
                return Attempt(
                    CONNECT, "connection failure, transport failure reason: " + tls_failure(exc)
                )
        conn = http.client.HTTPConnection(up.host, up.port, timeout=left())
        conn.sock = sock
        try:
            sock.settimeout(left())
            conn.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
            for k, v in req.headers:
                conn.putheader(k, v)
            if req.body or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("content-length", str(len(req.body)))
            conn.putheader("connection", "close")
            conn.endheaders(req.body or None)
            resp = conn.getresponse()
        except TimeoutError:
            conn.close()
            return Attempt(TIMEOUT, "")
        except (OSError, http.client.HTTPException):
            conn.close()
            return Attempt(RESET, "connection termination")
        return Attempt(None, "", conn, resp)


__all__ = ["CONNECT", "RESET", "TIMEOUT", "Forwarder", "Outcome", "Request", "reset_body"]
