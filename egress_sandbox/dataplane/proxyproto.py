"""PROXY protocol v1 (HAProxy): how the NAT tells the origin which public address it used.

Only the ``TCP4`` form is produced or accepted; the line is at most 107 bytes.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

MAX_LINE = 107


class ProxyHeaderError(Exception):
    """The connection did not start with a valid PROXY v1 line."""


@dataclass(frozen=True)
class ProxyHeader:
    src: str
    dst: str
    sport: int
    dport: int

    def encode(self) -> bytes:
        return f"PROXY TCP4 {self.src} {self.dst} {self.sport} {self.dport}\r\n".encode("ascii")


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise ProxyHeaderError(f"bad address {text!r}") from exc


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ProxyHeaderError(f"bad port {text!r}")
    return int(text)


def parse(line: bytes) -> ProxyHeader:
    parts = line.rstrip(b"\r\n").decode("ascii", "replace").split(" ")
    if len(parts) != 6 or parts[0] != "PROXY" or parts[1] != "TCP4":
        raise ProxyHeaderError("not a PROXY TCP4 line")
    return ProxyHeader(_ipv4(parts[2]), _ipv4(parts[3]), _port(parts[4]), _port(parts[5]))


def read_header(sock: socket.socket) -> ProxyHeader:
    """Read the PROXY line byte by byte, so not one byte of what follows (TLS) is consumed."""
    buf = bytearray()
    while len(buf) < MAX_LINE:
        b = sock.recv(1)
        if not b:
            raise ProxyHeaderError("connection closed before the PROXY line ended")
        buf += b
        if buf.endswith(b"\r\n"):
            return parse(bytes(buf))
        if len(buf) == 6 and bytes(buf) != b"PROXY ":
            raise ProxyHeaderError("no PROXY header")
    raise ProxyHeaderError("PROXY line too long")
