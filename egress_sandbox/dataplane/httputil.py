"""Small HTTP/1.1 helpers shared by the origin and the gateway proxy."""

from __future__ import annotations

from email.message import Message
from io import BufferedIOBase

MAX_BODY = 16 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)


class BodyError(Exception):
    pass


def read_body(rfile: BufferedIOBase, headers: Message) -> bytes:
    """The request body per Content-Length or chunked encoding (trailers discarded)."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            line = rfile.readline(1024)
            if not line:
                raise BodyError("truncated chunked body")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise BodyError("body too large")
            out += rfile.read(size)
            rfile.readline(8)
    length = headers.get("Content-Length")
    if not length:
        return b""
    n = int(length)
    if n < 0 or n > MAX_BODY:
        raise BodyError("bad Content-Length")
    return rfile.read(n)


def host_only(host: str) -> str:
    """``Host`` header without the port, lower-cased (IPv6 literals kept in brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
