"""The connection-level defences of the sandbox's HTTP servers (k8s API, OpenAPI, control).

What Go's ``net/http`` gives kube-apiserver, and werkzeug's server lacks:

* a header deadline (``ReadHeaderTimeout``): from accept to the end of the request headers,
  TLS handshake included. A client that sends nothing, or drips its headers, is closed;
* an idle limit: after the headers, every read or write must make progress in time;
* a header size limit (``MaxHeaderBytes``, 1 MiB): more is a 431;
* a body budget: a connection never reads more than twice ``max_body`` plus a small drain
  allowance, whatever the client sends or declares, and in 64 KiB pieces, so memory stays
  bounded (the apps themselves refuse a body over ``max_body``);
* the TLS handshake on the connection's own thread: werkzeug does it in ``accept()``, so one
  silent client used to stop the whole Kubernetes API;
* errors the HTTP layer itself answers (a garbage request line, a bad ``Content-Length``) are
  JSON in the service's own shape, never http.server's HTML page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler

if TYPE_CHECKING:
    from egress_sandbox.core.httpserver import GuardedServer

log = logging.getLogger(__name__)

# status, message -> the JSON body the service answers with.
ErrorBody = Callable[[int, str], bytes]


@dataclass(frozen=True)
class HttpLimits:
    """Per-server limits. The defaults follow kube-apiserver where it documents one."""

    # Go's ReadHeaderTimeout for kube-apiserver is 32 s; loopback clients never need that long.
    header_timeout: float = 10.0
    # Each blocking read or write after the headers (a stalled body, a client not reading).
    idle_timeout: float = 30.0
    max_header_bytes: int = 1 << 20  # Go's DefaultMaxHeaderBytes, kube-apiserver's setting
    max_body: int = 3 * 1024 * 1024  # the app refuses more; the server never reads far beyond
    # After the response, unread body up to this much is read and dropped (so the client sees
    # the answer), as Go's server does; beyond it the connection is closed.
    drain: int = 256 * 1024
    max_connections: int = 200  # more at once are closed on accept


class HeaderTooLarge(OSError):
    """The request line and headers exceeded ``max_header_bytes``."""


class _SocketReader(io.RawIOBase):
    """The socket as a raw stream, with the header deadline and the body budget applied."""

    def __init__(self, sock: socket.socket, limits: HttpLimits) -> None:
        super().__init__()
        self._sock = sock
        self._limits = limits
        self._deadline: float | None = time.monotonic() + limits.header_timeout
        self._header_bytes = 0
        # Twice the limit: a chunked body's framing counts here, and the app itself stops
        # reading at max_body; the budget only bounds what a connection can make us read.
        self._body_left = 2 * limits.max_body + limits.drain

    def readable(self) -> bool:
        return True

    def headers_done(self) -> None:
        self._deadline = None
        self._sock.settimeout(self._limits.idle_timeout)  # writes use it too

    def readinto(self, buf: Any) -> int:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request headers did not arrive in time")
            self._sock.settimeout(min(left, self._limits.idle_timeout))
            n = self._sock.recv_into(buf)
            self._header_bytes += n
            if self._header_bytes > self._limits.max_header_bytes + io.DEFAULT_BUFFER_SIZE:
                raise HeaderTooLarge("request headers too large")
            return n
        if self._body_left <= 0:
            return 0  # end of what this connection may read: the handler closes it
        view = memoryview(buf)[: self._body_left]
        n = self._sock.recv_into(view)
        self._body_left -= n
        return n


class _BufferedReader(io.BufferedReader):
    """``read(n)`` in pieces: CPython allocates ``n`` bytes up front, and werkzeug's drain asks
    for 10 MB at a time; the budget below already bounds how much a connection can return."""

    _PIECE = 64 * 1024

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and 0 <= size <= self._PIECE:
            return super().read(size)
        parts: list[bytes] = []
        want = size if size is not None and size >= 0 else None
        while want is None or want > 0:
            piece = super().read(self._PIECE if want is None else min(want, self._PIECE))
            if not piece:
                break
            parts.append(piece)
            if want is not None:
                want -= len(piece)
        return b"".join(parts)


class GuardedHandler(WSGIRequestHandler):
    """WSGIRequestHandler with the limits of :class:`HttpLimits`; no per-request log lines.

    Request lines are never logged: a query string may hold a security token.
    """

    server: GuardedServer
    # HTTP/1.1 responses (chunked watch streams); werkzeug still closes every connection.
    protocol_version = "HTTP/1.1"
    _reader: _SocketReader

    def setup(self) -> None:
        super().setup()
        # Without it a response waits behind Nagle for an ACK (the client's delayed ACK of an
        # earlier segment, or of TLS session tickets): about 10 ms a request.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)
        self._reader = _SocketReader(self.connection, self.server.limits)
        self.rfile = _BufferedReader(self._reader)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def handle(self) -> None:
        try:
            if self._handshake():
                super().handle()
        except HeaderTooLarge:
            with contextlib.suppress(OSError):
                self.send_error(431, "Request Header Fields Too Large")
        except OSError:  # ssl errors included: the peer went away or misbehaved; nothing to say
            pass

    def _handshake(self) -> bool:
        sock = self.connection
        if not isinstance(sock, ssl.SSLSocket):
            return True
        sock.settimeout(self.server.limits.header_timeout)
        try:
            sock.do_handshake()
        except (OSError, ValueError):
            return False
        return True

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self._reader.headers_done()
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if len(set(lengths)) > 1 or any(not v.strip().isdigit() for v in lengths):
            self.send_error(400, "bad Content-Length")
            return False
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding not in ("", "chunked", "identity"):
            self.send_error(400, f"unsupported transfer encoding: {encoding[:40]!r}")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The error the HTTP layer answers itself, as the service's JSON; then close.

        A request the server cannot parse is the client's fault: http.server's 505 for an
        unknown HTTP version is a 400 here, as Go's server answers it."""
        if code == 505:
            code = 400
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # else http.server would send no status line
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = self.server.error_body(code, message or phrase)
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        # Timeouts and aborted connections are the point of the limits, not errors.
        log.debug("%s: " + format, self.client_address, *args)

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            log.warning(message, *args)
