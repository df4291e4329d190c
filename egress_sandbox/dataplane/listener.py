"""A threaded TCP/UNIX listener: one daemon thread accepting, one daemon thread per connection.

``stop()`` closes the listening socket and every open connection, then joins the threads
within a deadline, so a stopped sandbox leaves no sockets or threads behind. With ``tls`` each
connection is wrapped (server side) on its own thread before the handler sees it, so a slow
handshake never holds up the accept loop; ``tls`` may be a function choosing the context per
connection (it may peek at the ClientHello, never consume it).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
Handler = Callable[[socket.socket], None]
TlsChoice = ssl.SSLContext | Callable[[socket.socket], ssl.SSLContext]
ACCEPT_POLL = 0.2  # how often the accept loop looks at the stop flag
CONN_TIMEOUT = 30.0  # idle limit per connection: every blocking read has a deadline


class Listener:
    def __init__(
        self,
        name: str,
        sock: socket.socket,
        handle: Handler,
        *,
        tls: TlsChoice | None = None,
    ) -> None:
        self.name = name
        self.sock = sock
        self._handle = handle
        self._tls = tls
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"{name}-accept", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self.sock.settimeout(ACCEPT_POLL)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listening socket was closed by stop()
            conn.settimeout(CONN_TIMEOUT)
            # A response's head and body are two writes; without it the body waits about
            # 40 ms for the client's delayed ACK of the head.
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(
                target=self._serve, args=(conn,), name=f"{self.name}-conn", daemon=True
            )
            with self._lock:
                if self._stopped.is_set():
                    conn.close()
                    return
                self._conns[conn] = t
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        sock: socket.socket | None = conn
        try:
            if self._tls is not None:
                sock = self._handshake(conn, self._tls)
            if sock is not None:
                self._handle(sock)
        except OSError:
            pass  # the peer went away or stop() closed the socket under us
        except Exception:
            log.exception("%s: connection handler failed", self.name)
        finally:
            with self._lock:
                self._conns.pop(conn, None)
                if sock is not None:
                    self._conns.pop(sock, None)
            if sock is not None:
                _close(sock)
            _close(conn)

    def _handshake(self, conn: socket.socket, tls: TlsChoice) -> ssl.SSLSocket | None:
        """The TLS socket over ``conn`` (which it takes over), or None when the handshake fails."""
        try:
            ctx = tls if isinstance(tls, ssl.SSLContext) else tls(conn)
            wrapped = ctx.wrap_socket(conn, server_side=True)  # bounded by CONN_TIMEOUT
        except (ssl.SSLError, OSError) as exc:
            log.info("%s: TLS handshake failed: %s", self.name, exc)
            return None
        with self._lock:
            # stop() must shut down the TLS socket now: ``conn`` gave its descriptor away.
            thread = self._conns.pop(conn, None)
            if thread is None:
                wrapped.close()
                return None
            self._conns[wrapped] = thread
        return wrapped

    def stop(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        self._stopped.set()
        with contextlib.suppress(OSError):
            # On Linux this wakes an accept() blocked in another thread at once; close() alone
            # would leave it waiting out its ACCEPT_POLL timeout.
            self.sock.shutdown(socket.SHUT_RDWR)
        _close(self.sock)
        with self._lock:
            conns = dict(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for t in conns.values():
            t.join(max(0.0, deadline - time.monotonic()))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
