"""The server name of a TLS ClientHello, read without consuming it (``MSG_PEEK``).

The gateway must know the SNI before the handshake starts: the domain's TLS version range
(``tls-min/max-protocol-version``) is fixed when the handshake begins, and OpenSSL chooses
the version before the SNI callback runs, so the context is picked from the peeked name.
"""

from __future__ import annotations

import socket
import struct
import time

MAX_RECORD = 16384 + 5
PEEK_POLL = 0.005  # seconds between peeks while the ClientHello is still arriving


def parse_sni(data: bytes) -> str | None:
    """The host_name of the server_name extension in a ClientHello record, or None."""
    try:
        if len(data) < 5 or data[0] != 0x16:
            return None
        end = min(len(data), 5 + struct.unpack("!H", data[3:5])[0])
        i = 5
        if data[i] != 0x01:  # handshake type ClientHello
            return None
        i += 4 + 2 + 32  # handshake header, client_version, random
        i += 1 + data[i]  # session_id
        i += 2 + struct.unpack("!H", data[i : i + 2])[0]  # cipher_suites
        i += 1 + data[i]  # compression_methods
        ext_end = min(end, i + 2 + struct.unpack("!H", data[i : i + 2])[0])
        i += 2
        while i + 4 <= ext_end:
            etype, elen = struct.unpack("!HH", data[i : i + 4])
            i += 4
            if etype == 0:  # server_name: list length, then (type, length, name)
                j = i + 2
                while j + 3 <= i + elen:
                    ntype, nlen = data[j], struct.unpack("!H", data[j + 1 : j + 3])[0]
                    if ntype == 0:
                        return data[j + 3 : j + 3 + nlen].decode("ascii").lower() or None
                    j += 3 + nlen
                return None
            i += elen
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


def peek_sni(conn: socket.socket, timeout: float) -> str | None:
    """The SNI the client is sending on ``conn``, waiting at most ``timeout`` for the record."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        conn.settimeout(remaining)
        data = conn.recv(MAX_RECORD, socket.MSG_PEEK)
        if not data:
            return None
        if len(data) >= 5:
            if data[0] != 0x16:
                return None  # not TLS: the handshake will fail on its own
            if len(data) >= 5 + struct.unpack("!H", data[3:5])[0]:
                return parse_sni(data)
        time.sleep(PEEK_POLL)
