"""The "internet": one server that answers any host, reachable only through a NAT.

Two ports on 127.0.0.1 (HTTP and HTTPS with a per-SNI certificate from the sandbox CA). Every
connection must start with a PROXY v1 line naming the public source address; connections
without one are dropped, because nothing reaches the internet except through a NAT gateway.
The answer is 200 with a JSON echo of the request, including ``source_ip`` (the EIP).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.dataplane import proxyproto
from egress_sandbox.dataplane.httputil import BodyError, read_body
from egress_sandbox.dataplane.listener import Listener

log = logging.getLogger(__name__)
_sni = threading.local()  # the SNI callback and the handshake run on the same thread


class _Conn:
    """What the handler knows about its connection beyond the socket."""

    def __init__(self, header: proxyproto.ProxyHeader, tls: bool, sni: str | None) -> None:
        self.header = header
        self.tls = tls
        self.sni = sni


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-origin"
    sys_version = ""
    conn_info: _Conn

    def __init__(self, sock: socket.socket, info: _Conn) -> None:
        self.conn_info = info
        super().__init__(sock, (info.header.src, info.header.sport), None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("origin: " + format, *args)

    def _echo(self) -> None:
        try:
            body = read_body(self.rfile, self.headers)
        except (BodyError, ValueError):
            self.send_error(400)
            return
        url = urlsplit(self.path)
        info = self.conn_info
        payload = {
            "method": self.command,
            "host": self.headers.get("Host", ""),
            "path": url.path,
            "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()},
            "raw_query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "tls": info.tls,
            "sni": info.sni,
            "source_ip": info.header.src,
            "source_port": info.header.sport,
            "destination_ip": info.header.dst,
            "destination_port": info.header.dport,
        }
        data = (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _echo


class OriginServer:
    """HTTP and HTTPS echo servers on 127.0.0.1 behind a mandatory PROXY header."""

    def __init__(self, pki: SandboxPki, host: str = "127.0.0.1") -> None:
        self._ctx = pki.wildcard_context()
        pick = self._ctx.sni_callback

        def remember(sock: Any, name: str | None, ctx: ssl.SSLContext) -> None:
            _sni.name = name
            if pick is not None:
                pick(sock, name, ctx)  # type: ignore[arg-type]

        self._ctx.sni_callback = remember
        self._listeners = [
            Listener("origin-http", _bind(host), lambda c: self._serve(c, tls=False)),
            Listener("origin-https", _bind(host), lambda c: self._serve(c, tls=True)),
        ]

    @property
    def http_port(self) -> int:
        return int(self._listeners[0].sock.getsockname()[1])

    @property
    def https_port(self) -> int:
        return int(self._listeners[1].sock.getsockname()[1])

    def start(self) -> None:
        for listener in self._listeners:
            listener.start()

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()

    def _serve(self, conn: socket.socket, *, tls: bool) -> None:
        try:
            header = proxyproto.read_header(conn)
        except proxyproto.ProxyHeaderError as exc:
            log.info("origin: refused a connection without NAT: %s", exc)
            return
        sni: str | None = None
        sock: socket.socket = conn
        if tls:
            _sni.name = None
            try:
                sock = self._ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("origin: TLS handshake failed: %s", exc)
                return
            sni = getattr(_sni, "name", None)
        try:
            _EchoHandler(sock, _Conn(header, tls, sni))
        finally:
            if sock is not conn:
                sock.close()


def _bind(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(64)
    return s
