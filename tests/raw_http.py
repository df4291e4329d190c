"""HTTP/1.1 over a bare socket, for requests no client library will send (garbage, lies, drips).

``exchange`` writes bytes exactly as given and reads until the server closes (every sandbox
server closes after one answer). ``None`` means the connection closed, or was reset, without
an answer. Loopback only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, *, ca: str | None = None, timeout: float = 10.0) -> socket.socket:
    """A connected socket to 127.0.0.1:port; TLS (verified against ``ca``) when ``ca`` is given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ca is None:
        return sock
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the certificate names 127.0.0.1 and localhost; either is fine
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def read_reply(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> Reply | None:
    data = bytearray()
    with contextlib.suppress(OSError):
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return parse(bytes(data))


def parse(data: bytes) -> Reply | None:
    if not data:
        return None
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise AssertionError(f"not an HTTP status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    # 100 Continue comes first when the client asked for it; the answer follows.
    if code == "100":
        return parse(body)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Reply(int(code), reason, headers, body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def exchange(
    port: int,
    request: bytes | Iterable[bytes],
    *,
    ca: str | None = None,
    timeout: float = 10.0,
    half_close: bool = False,
) -> Reply | None:
    """Send ``request`` (bytes, or pieces sent one by one) and read the answer, if any.

    ``half_close`` (plain sockets only) shuts the sending side afterwards, so a server waiting
    for the rest of an incomplete request sees its end at once instead of waiting it out.
    """
    sock = connect(port, ca=ca, timeout=timeout)
    try:
        pieces = [request] if isinstance(request, bytes) else request
        with contextlib.suppress(OSError):  # a server may answer and close before the end
            for piece in pieces:
                sock.sendall(piece)
            if half_close and ca is None:
                sock.shutdown(socket.SHUT_WR)
        return read_reply(sock)
    finally:
        sock.close()


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    chunked: bool = False,
) -> bytes:
    """A well-formed request (Content-Length, or chunked in one chunk)."""
    headers = headers or {}
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(k.lower() == "host" for k in headers):
        lines.append("Host: 127.0.0.1")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
