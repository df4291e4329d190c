"""A threaded TCP/UNIX listener: one daemon thread accepting, one daemon thread per connection.

``stop()`` closes the listening socket and every open connection, then joins the threads
within a deadline, so a stopped sandbox leaves no sockets or threads behind.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
Handler = Callable[[socket.socket], None]
ACCEPT_POLL = 0.2  # how often the accept loop looks at the stop flag
CONN_TIMEOUT = 30.0  # idle limit per connection: every blocking read has a deadline


class Listener:
    def __init__(self, name: str, sock: socket.socket, handle: Handler) -> None:
        self.name = name
        self.sock = sock
        self._handle = handle
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"{name}-accept", daemon=True
        )

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
        try:
            self._handle(conn)
        except OSError:
            pass  # the peer went away or stop() closed the socket under us
        except Exception:
            log.exception("%s: connection handler failed", self.name)
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            _close(conn)

    def stop(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        self._stopped.set()
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
