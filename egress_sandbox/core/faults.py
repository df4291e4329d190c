"""The part of fault injection both APIs share: validation, a queue of counted faults, and
connection resets.

The cloud (``aliyun/faults.py``) and Kubernetes (``k8s/faults.py``) registries differ only in
what a fault matches (an action of a product, a verb on a resource) and how its error renders;
counting uses down, ordering and thread safety are the same and live here, once.

A reset fault closes the client's connection without an answer, as a load balancer or a
crashing server does: ``before`` the action runs (the request is lost) or ``after`` it (the
action took effect, its answer is lost: what a client must never blindly repeat). The registry
marks the request's WSGI environ; the server's last word, :func:`reset_if_asked`, then swaps
its response for :class:`ConnectionReset`. Clients see the connection end with no status line
(http.client ``RemoteDisconnected``, urllib3 ``ProtocolError('Connection aborted.')``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BEFORE, AFTER = "before", "after"
RESETS = (BEFORE, AFTER)
# What the audit log records for a request reset before its action: no answer was ever sent.
RESET_CODE = "ConnectionReset"
RESET_STATUS = 503
_ENVIRON_KEY = "egress_sandbox.fault.reset"


class CountedFault(Protocol):
    """A dataclass with a ``count`` of remaining matches."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    count: int


F = TypeVar("F", bound=CountedFault)


def validate(
    *, error: str, status: int, count: int, latency_ms: int, error_name: str, reset: str = ""
) -> None:
    """Refuse a fault that could never fire, or fire as nothing an HTTP client would see."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if reset and reset not in RESETS:
        raise ValueError(f"reset must be one of {', '.join(RESETS)}")
    if reset and error:
        raise ValueError(f"a connection reset sends no answer: give it no {error_name}")
    if error and not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400..599)")
    if latency_ms < 0:
        raise ValueError("latency_ms must not be negative")
    if not error and not latency_ms and not reset:
        raise ValueError(f"a fault needs {error_name}, a latency, a reset, or a mix")


def mark_reset(environ: WSGIEnvironment | None, when: str) -> None:
    """Ask for this request's connection to be reset instead of answered."""
    if environ is not None and when:
        environ[_ENVIRON_KEY] = when


def drain(environ: WSGIEnvironment | None) -> None:
    """Read the body of a request that will not be handled (call it only before anyone has).

    Closing a socket with unread data makes the kernel send RST at once, and whether the
    client then fails while still sending or while reading (its HTTP library retries only the
    former for a POST) would be left to chance.
    """
    if environ is not None:
        with contextlib.suppress(Exception):
            Request(environ).get_data()


def reset_if_asked(environ: WSGIEnvironment, response: Response) -> Response:
    """``response``, or a :class:`ConnectionReset` when a fault marked the request."""
    return ConnectionReset() if environ.get(_ENVIRON_KEY) else response


class ConnectionReset(Response):
    """A "response" that closes the connection without sending a byte."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                # Linger 0: the final close sends RST, not a graceful FIN after buffered data.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Now, not when the server loop next reads: the client must not wait for it.
                sock.shutdown(socket.SHUT_RDWR)
        # The WSGI server treats ConnectionError as "the client went away": it writes nothing
        # and logs nothing (werkzeug's connection_dropped).
        raise ConnectionResetError("injected fault: connection reset without an answer")


class FaultQueue(Generic[F]):
    """Thread-safe list of pending faults (dataclasses), consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def push(self, fault: F) -> F:
        with self._lock:
            self._faults.append(fault)
        return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dataclasses.asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first fault ``matches`` accepts, with one use consumed (a copy: it may be gone)."""
        with self._lock:
            for fault in self._faults:
                if matches(fault):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return dataclasses.replace(fault)
        return None
