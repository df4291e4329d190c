"""An echo-server container, served in-process: what mendhak/http-https-echo answers and logs.

Every request gets 200 with a JSON echo in that image's shape (index.js: Express 4 with
``trust proxy`` set to loopback, linklocal and uniquelocal, ``json spaces`` 2), and one JSON
line in the container log, as the image writes with ``LOG_WITHOUT_NEWLINE`` set (without it
the image pretty-prints each echo over many lines). The image's headers
``x-set-response-status-code`` and ``x-set-response-delay-ms`` (or the same query parameters)
work as there. Deviations, on purpose:
- every declared containerPort serves plain HTTP (the image serves HTTPS on 8443);
- the delay is capped at ``MAX_DELAY_MS`` so a pod's threads stay bounded, and a status
  code below 200 is ignored (Node would send it as an interim response);
- the query is parsed flat (repeated keys become lists, ``a[b]=1`` stays a key ``a[b]``),
  where Express's ``qs`` parser would nest it;
- no "Listening on ports" line at start, so that every log line is a JSON echo, and each
  line is written just before the answer (the image writes it just after), so whoever got
  the answer finds it in the log.
The same answer serves every echo image (ealen/echo-server, registry.k8s.io/echoserver), whose
real shapes differ.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from egress_sandbox.dataplane.httputil import BodyError, read_body
from egress_sandbox.dataplane.listener import Listener

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DEFAULT_PORT = 8080
MAX_DELAY_MS = 30_000
KEEP_ALIVE_SECONDS = 5  # Node's http.Server keepAliveTimeout
# Node keeps the first of these when a request repeats them (IncomingMessage._addHeaderLine).
_SINGLE = frozenset(
    [
        "age",
        "authorization",
        "content-length",
        "content-type",
        "etag",
        "expires",
        "from",
        "host",
        "if-modified-since",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "proxy-authorization",
        "referer",
        "retry-after",
        "server",
        "user-agent",
    ]
)
# Express's "trust proxy" names the image sets: loopback, linklocal, uniquelocal.
_TRUSTED = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )
]


def _trusted(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False  # proxy-addr trusts nothing that is not an address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in _TRUSTED)


def node_headers(pairs: list[tuple[str, str]]) -> Obj:
    """Header names lower-cased and repeats merged, as Node's ``req.headers`` has them."""
    out: Obj = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name not in out:
            out[name] = [value] if name == "set-cookie" else value
        elif name == "set-cookie":
            out[name].append(value)
        elif name == "cookie":
            out[name] += "; " + value
        elif name not in _SINGLE:
            out[name] += ", " + value
    return out


def _query(raw: str) -> Obj:
    return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw, keep_blank_values=True).items()}


def echo_of(*, method: str, target: str, headers: Obj, body: str, peer: str, hostname: str) -> Obj:
    """The image's echo for one request; ``peer`` is the TCP peer's IPv4 address."""
    url = urlsplit(target)
    socket_addr = f"::ffff:{peer}"  # Node listens on :: and sees IPv4 peers as mapped
    forwarded = [a.strip() for a in str(headers.get("x-forwarded-for", "")).split(",")]
    addrs = [socket_addr, *reversed([a for a in forwarded if a])]
    for i in range(len(addrs) - 1):
        if not _trusted(addrs[i]):
            addrs = addrs[: i + 1]
            break
    peer_trusted = _trusted(socket_addr)
    host = headers.get("x-forwarded-host") if peer_trusted else None
    host = str(host).split(",")[0].strip() if host else headers.get("host")
    host_name = None
    if host:
        host_name = host.split("]")[0] + "]" if host.startswith("[") else host.split(":")[0]
    proto = "http"
    if peer_trusted and headers.get("x-forwarded-proto"):
        proto = str(headers["x-forwarded-proto"]).split(",")[0].strip()
    is_ip = False
    if host_name:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host_name.strip("[]"))
            is_ip = True
    echo: Obj = {
        "path": url.path or "/",
        "headers": headers,
        "method": method,
        "body": body,
        "fresh": False,  # the echo sets no validators before it answers
        "hostname": host_name,
        "ip": addrs[-1],
        "ips": list(reversed(addrs))[:-1],
        "protocol": proto,
        "query": _query(url.query),
        "subdomains": [] if is_ip or not host_name else host_name.split(".")[::-1][2:],
        "xhr": str(headers.get("x-requested-with", "")).lower() == "xmlhttprequest",
        "os": {"hostname": hostname},
        "connection": {},  # servername is set for TLS only, which these ports do not serve
    }
    if echo["hostname"] is None:
        del echo["hostname"]  # undefined in JavaScript: JSON.stringify leaves it out
    return echo


def _etag(data: bytes) -> str:
    """Express's weak ETag: length in hex and the first 27 base64 chars of the SHA-1."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = KEEP_ALIVE_SECONDS

    def __init__(self, sock: socket.socket, server: EchoServer) -> None:
        self.echo_server = server
        peer = sock.getpeername()
        super().__init__(sock, (str(peer[0]), int(peer[1])), None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("echo-server: " + format, *args)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._echo  # app.all('*'): every method is echoed
        raise AttributeError(name)

    def _echo(self) -> None:
        try:
            raw = read_body(self.rfile, self.headers)
        except (BodyError, ValueError):
            self.send_error(400)
            return
        headers = node_headers(list(self.headers.items()))
        echo = echo_of(
            method=self.command,
            target=self.path,
            headers=headers,
            body=raw.decode("utf-8", "replace"),
            peer=self.client_address[0],
            hostname=self.echo_server.hostname,
        )
        if str(headers.get("content-type", "")).split(";")[0].strip() == "application/json":
            try:
                echo["json"] = json.loads(echo["body"])
            except ValueError:
                self._reply(500, b"SyntaxError: Unexpected token in JSON\n", "text/html")
                return  # Express's error handler answers; the image logs nothing
        query = echo["query"]
        status = _int(
            headers.get("x-set-response-status-code") or query.get("x-set-response-status-code")
        )
        delay = _int(headers.get("x-set-response-delay-ms") or query.get("x-set-response-delay-ms"))
        if delay and delay > 0:
            time.sleep(min(delay, MAX_DELAY_MS) / 1000)
        code = status if status is not None and 200 <= status < 600 else 200
        data = (json.dumps(echo, indent=2, ensure_ascii=False)).encode()
        # Logged before the answer goes out (the image logs right after it): whoever got the
        # answer finds the line in the log already.
        self.echo_server.log_line(json.dumps(echo, ensure_ascii=False, separators=(",", ":")))
        self._reply(code, data, "application/json; charset=utf-8", etag=True)

    def _reply(self, code: int, data: bytes, ctype: str, *, etag: bool = False) -> None:
        self.send_response_only(code)
        self.send_header("X-Powered-By", "Express")
        if code not in (204, 304):  # Express strips the body and its headers for these
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if etag:
                self.send_header("ETag", _etag(data))
        self.send_header("Date", formatdate(usegmt=True))
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Connection", "keep-alive")
            self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE_SECONDS}")
        self.end_headers()
        if self.command != "HEAD" and code not in (204, 304):
            self.wfile.write(data)


def _int(raw: object) -> int | None:
    """JavaScript's parseInt for these headers: leading digits, else nothing."""
    text = str(raw).strip() if raw is not None else ""
    digits = text[1:] if text[:1] in "+-" else text
    n = len(digits) - len(digits.lstrip("0123456789"))
    if n == 0:
        return None
    value = int(digits[:n])
    return -value if text.startswith("-") else value


class EchoServer:
    """The container's servers on ``address``, one per port; ``log_line`` gets each echo."""

    def __init__(
        self, address: str, ports: list[int], hostname: str, log_line: Callable[[str], None]
    ) -> None:
        self.address = address
        self.ports = ports or [DEFAULT_PORT]
        self.hostname = hostname
        self.log_line = log_line
        self._listeners: list[Listener] = []

    def start(self) -> None:
        """Bind every port (an OSError, e.g. address in use, leaves nothing bound), then serve."""
        socks: list[socket.socket] = []
        try:
            for port in self.ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.address, port))
                except OSError as exc:
                    # Node's words: "listen EADDRINUSE: address already in use 1.2.3.4:8080".
                    code = errno.errorcode.get(exc.errno or 0, "EUNKNOWN")
                    text = (exc.strerror or "").lower()
                    raise OSError(
                        exc.errno, f"listen {code}: {text} {self.address}:{port}"
                    ) from exc
                s.listen(64)
        except OSError:
            for s in socks:
                s.close()
            raise
        self._listeners = [
            Listener(f"echo-{self.address}:{port}", s, self._serve)
            for port, s in zip(self.ports, socks, strict=True)
        ]
        for listener in self._listeners:
            listener.start()

    def _serve(self, conn: socket.socket) -> None:
        _Handler(conn, self)

    def stop(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.stop()
