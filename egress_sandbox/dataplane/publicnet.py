"""The public addresses of the "internet" the origin stands in for.

Every public host name gets a fixed address of its own, so that a PROXY header's destination
names the host the sender dialled (as an IP does on the real internet) and the origin can tell
which host a TLS connection without SNI was meant for. The addresses are only ever written into
PROXY headers and echoes, never connected to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading

# 100.64.0.0/10 would be shared address space; 198.18.0.0/15 is for benchmarking (RFC 2544):
# neither is routed on the internet, so no echo can be mistaken for a real host's address.
_NET = ipaddress.IPv4Network("198.18.0.0/15")
_NAMES_LIMIT = 65536  # a long-lived sandbox must not grow without end
_lock = threading.Lock()
_names: dict[str, str] = {}  # address -> the name it was handed out for


def address_of(host: str) -> str:
    """The fixed public address of ``host`` (lower-cased, trailing dot ignored).

    The address is remembered, so that :func:`name_at` can answer for it: on the internet the
    machine at an address knows which host it is, and the origin plays every such machine.
    """
    name = host.rstrip(".").lower()
    n = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    offset = 1 + n % (_NET.num_addresses - 2)
    address = str(_NET.network_address + offset)
    with _lock:
        if address not in _names:
            if len(_names) >= _NAMES_LIMIT:
                _names.clear()
            _names[address] = name
    return address


def name_at(address: str) -> str | None:
    """The host whose address this is, if anyone in this process asked for it."""
    with _lock:
        return _names.get(address)


def host_of(address: str, candidates: list[str]) -> str | None:
    """Which of ``candidates`` has ``address`` (None: none of them)."""
    return next((h for h in candidates if address_of(h) == address), None)
