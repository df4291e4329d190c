"""The "internet": one server that answers any host, reachable only through a NAT.

Two ports on 127.0.0.1 (HTTP and HTTPS with a per-SNI certificate from the sandbox CA). Every
connection must start with a PROXY v1 line naming the public source address; connections
without one are dropped, because nothing reaches the internet except through a NAT gateway.
The PROXY destination is the address of the host the sender dialled
(:func:`publicnet.address_of`), which is how the origin knows which host it plays, even for TLS
without SNI. Per host (:class:`OriginRules`): a down host resets the connection, a
``require_sni`` host refuses a handshake without its name, a ``require_client_certificate`` host
one without a client certificate from the sandbox CA.

Answers are httpbin-like: ``/status/<code>`` answers that code (empty body), ``/delay/<s>``
answers after ``s`` seconds (at most 30), anything else 200 with a JSON echo of the request:
``source_ip`` (the EIP), ``upstream_host`` (the host dialled), ``sni``, ``tls``,
``tls_version``, ``client_certificate`` (subject CN or null), ``headers`` and the rest.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.dataplane import proxyproto, publicnet
from egress_sandbox.dataplane.httputil import BodyError, read_body
from egress_sandbox.dataplane.listener import Listener
from egress_sandbox.dataplane.origin_rules import OriginHost, OriginRules

log = logging.getLogger(__name__)
MAX_DELAY = 30.0  # seconds /delay/<s> may ask for
LOG_LIMIT = 2000  # requests the origin remembers, for tests and the control API
CACHE_LIMIT = 256  # TLS contexts kept; a long-lived sandbox must not grow without end
_state = threading.local()  # the SNI callback runs on the handshake's own thread


class _Conn:
    """What the handler knows about its connection beyond the socket."""

    def __init__(
        self,
        header: proxyproto.ProxyHeader,
        host: str | None,
        tls: ssl.SSLSocket | None,
        sni: str | None,
    ) -> None:
        self.header = header
        self.host = host
        self.tls = tls is not None
        self.sni = sni
        self.tls_version = tls.version() if tls is not None else None
        self.client_cn = _common_name(tls.getpeercert()) if tls is not None else None


def _common_name(cert: Any) -> str | None:
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-origin"
    sys_version = ""
    conn_info: _Conn

    def __init__(self, sock: socket.socket, info: _Conn, origin: OriginServer) -> None:
        self.conn_info = info
        self.origin = origin
        super().__init__(sock, (info.header.src, info.header.sport), None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("origin: " + format, *args)

    def _headers(self) -> dict[str, str]:
        # Repeated headers are shown joined, as a proxy folding them would send them.
        out: dict[str, str] = {}
        for k, v in self.headers.items():
            key = k.lower()
            out[key] = f"{out[key]},{v}" if key in out else v
        return out

    def _echo(self) -> None:
        try:
            body = read_body(self.rfile, self.headers)
        except (BodyError, ValueError):
            self.send_error(400)
            return
        url = urlsplit(self.path)
        info = self.conn_info
        host = info.host or info.sni or (self.headers.get("Host") or "").split(":")[0].lower()
        self.origin.remember(host, self.command, url.path, self._headers())
        parts = url.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "status":
            self._status(parts[1])
            return
        if len(parts) == 2 and parts[0] == "delay":
            try:
                delay = min(max(float(parts[1]), 0.0), MAX_DELAY)
            except ValueError:
                self._send(400, b"invalid delay\n", "text/plain")
                return
            if self.origin.stopping.wait(delay):
                self.close_connection = True
                return
        payload = {
            "method": self.command,
            "host": self.headers.get("Host", ""),
            "path": url.path,
            "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()},
            "raw_query": url.query,
            "headers": self._headers(),
            "body": body.decode("utf-8", "replace"),
            "tls": info.tls,
            "sni": info.sni,
            "tls_version": info.tls_version,
            "client_certificate": info.client_cn,
            "upstream_host": info.host,
            "source_ip": info.header.src,
            "source_port": info.header.sport,
            "destination_ip": info.header.dst,
            "destination_port": info.header.dport,
        }
        data = (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()
        self._send(200, data, "application/json")

    def _status(self, text: str) -> None:
        if not text.isdigit() or not 100 <= int(text) <= 599:
            self._send(400, b"invalid status code\n", "text/plain")
            return
        self._send(int(text), b"", None)

    def _send(self, code: int, data: bytes, ctype: str | None) -> None:
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _echo


class _Contexts:
    """Server contexts per (certificate name, client-certificate mode), issued on demand.

    The verify mode of a handshake is the one of the context it started with (OpenSSL keeps it
    when the SNI callback swaps contexts), and the trust store the one swapped in: every
    context therefore trusts the sandbox CA and carries the mode it was picked for.
    """

    def __init__(self, pki: SandboxPki, pick: Any) -> None:
        self._pki = pki
        self._pick = pick
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ssl.VerifyMode], ssl.SSLContext] = {}

    def get(self, name: str | None, mode: ssl.VerifyMode) -> ssl.SSLContext:
        key = (name or "", mode)
        with self._lock:
            ctx = self._cache.get(key)
        if ctx is not None:
            return ctx
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        names = (name,) if name else ("localhost", "127.0.0.1")
        self._pki.ca.issue_cert(*names).configure_cert(ctx)
        self._pki.ca.configure_trust(ctx)
        ctx.verify_mode = mode
        ctx.sni_callback = self._pick
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = ctx
        return ctx


class OriginServer:
    """HTTP and HTTPS echo servers on 127.0.0.1 behind a mandatory PROXY header."""

    def __init__(
        self, pki: SandboxPki, host: str = "127.0.0.1", rules: OriginRules | None = None
    ) -> None:
        self.rules = rules or OriginRules()
        self.stopping = threading.Event()
        self._contexts = _Contexts(pki, self._pick)
        self._log_lock = threading.Lock()
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_LIMIT)
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
        self.stopping.clear()
        for listener in self._listeners:
            listener.start()

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers sleeping in /delay
        for listener in self._listeners:
            listener.stop()

    # ---- what the origin saw -----------------------------------------------------------------

    def remember(self, host: str, method: str, path: str, headers: dict[str, str]) -> None:
        with self._log_lock:
            entry = {"time": time.time(), "host": host, "method": method, "path": path}
            self._log.append({**entry, "headers": headers})

    def requests(self, host: str | None = None) -> list[dict[str, Any]]:
        """The requests the origin answered (oldest first), optionally for one host only."""
        with self._log_lock:
            return [r for r in self._log if host is None or r["host"] == host]

    # ---- connections -------------------------------------------------------------------------

    def _serve(self, conn: socket.socket, *, tls: bool) -> None:
        try:
            header = proxyproto.read_header(conn)
        except proxyproto.ProxyHeaderError as exc:
            log.info("origin: refused a connection without NAT: %s", exc)
            return
        host = publicnet.name_at(header.dst)
        rule = self.rules.rule(host) if host else None
        if rule is not None and rule.down:
            _reset(conn)
            return
        if not tls:
            _EchoHandler(conn, _Conn(header, host, None, None), self)
            return
        wrapped = self._handshake(conn, host, rule)
        if wrapped is None:
            return
        sock, sni = wrapped
        try:
            _EchoHandler(sock, _Conn(header, host or sni, sock, sni), self)
        finally:
            sock.close()

    def _handshake(
        self, conn: socket.socket, host: str | None, rule: OriginHost | None
    ) -> tuple[ssl.SSLSocket, str | None] | None:
        # A host known from the PROXY line asks for a client certificate only when it needs
        # one; for an unknown one (a sender that did not name it) the SNI decides, afterwards.
        if rule is None:
            mode = ssl.CERT_OPTIONAL
        elif rule.require_client_certificate:
            mode = ssl.CERT_REQUIRED
        else:
            mode = ssl.CERT_NONE
        _state.host, _state.rule, _state.mode, _state.sni = host, rule, mode, None
        ctx = self._contexts.get(host, mode)
        try:
            sock = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("origin: TLS handshake for %s failed: %s", host or "?", exc)
            return None
        sni: str | None = _state.sni
        late = _state.rule
        required = rule is None and late is not None and late.require_client_certificate
        if required and not sock.getpeercert():
            log.info("origin: %s requires a client certificate; none was sent", sni)
            sock.close()
            return None
        return sock, sni

    def _pick(self, sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        sni = name.lower() if name else None
        _state.sni = sni
        host: str | None = _state.host
        rule: OriginHost | None = _state.rule
        if host is None and sni is not None:
            rule = _state.rule = self.rules.rule(sni)
            if rule.down:
                return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        if rule is not None and rule.require_sni and (sni is None or sni != (host or sni)):
            # Hosts behind shared front ends refuse a handshake without their name, as CDNs
            # do (the alert real ones send varies; handshake_failure is common).
            log.info("origin: %s requires SNI; got %r", host or sni, sni)
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        try:
            sock.context = self._contexts.get(sni or host, _state.mode)
        except Exception:  # an exception here would only abort the handshake, unexplained
            log.exception("origin: issuing a certificate for %s failed", sni)
        return None


def _reset(conn: socket.socket) -> None:
    """Close with RST, as a host with nothing listening answers a connection."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()


def _bind(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(64)
    return s
