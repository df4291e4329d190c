"""One threaded werkzeug server on a loopback port, served from a daemon thread.

The Kubernetes API, the cloud OpenAPI and the control endpoint all start and stop the same way;
this is that way, once, with the connection limits of :mod:`egress_sandbox.core.httpguard`.
``stop()`` returns within ``POLL_INTERVAL`` plus the in-flight requests (when ``daemon_threads``
is off): connections still reading their request are cut short, so a slow client cannot hold
it up, while requests already being handled finish and answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer

from egress_sandbox.core.httpguard import ErrorBody, GuardedHandler, HttpLimits

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

# serve_forever() checks for shutdown this often: stop() waits at most this long for it.
POLL_INTERVAL = 0.05

# Kept for callers that name the handler; every server uses the guarded one.
QuietHandler = GuardedHandler


def plain_error_body(status: int, message: str) -> bytes:
    """``{"error": message}``: the control endpoint's shape, and the default."""
    return json.dumps({"error": message}).encode()


class GuardedServer(ThreadedWSGIServer):
    """A threaded WSGI server with bounded connections, handshakes off the accept thread."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        *,
        limits: HttpLimits,
        error_body: ErrorBody,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, app, handler=GuardedHandler)
        self.limits = limits
        self.error_body = error_body
        if ssl_context is not None:
            # werkzeug wraps with do_handshake_on_connect: the handshake ran inside accept(),
            # so a client that connected and said nothing stopped every other client.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
            self.ssl_context = ssl_context
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("%s: too many connections; closing a new one", self.server_address)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def track(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(conn)

    def stop_reading(self) -> None:
        """End every connection's reads (its writes go on): slow clients let go at once."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            # socket.socket's own shutdown: SSLSocket.shutdown would drop its TLS state, and
            # a response still being written would then go out in the clear.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RD)


def _json_500(app: WSGIApplication, error_body: ErrorBody, name: str) -> WSGIApplication:
    """The app, answering a JSON 500 if it raises (werkzeug would send an HTML page)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except (ConnectionError, TimeoutError):
            raise  # the client is gone (or a fault resets the connection): nothing to answer
        except Exception:
            log.exception(
                "%s: %s %s failed", name, environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            body = error_body(500, "internal error")
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                sys.exc_info(),
            )
            return [body]

    return guarded


class ThreadedServer:
    """Binds on ``start()`` (returning once the socket listens) and serves until ``stop()``."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        host: str,
        port: int = 0,
        name: str,
        ssl_context: ssl.SSLContext | None = None,
        daemon_threads: bool = True,
        limits: HttpLimits | None = None,
        error_body: ErrorBody = plain_error_body,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"{name} binds loopback addresses only, not {host!r}")
        self.app = app
        self.host = host
        self._requested_port = port
        self._name = name
        self._ssl_context = ssl_context
        self.limits = limits or HttpLimits()
        self._error_body = error_body
        # True: request threads (long watches) never keep the process alive, and server_close()
        # does not wait for them. False: server_close() joins in-flight requests first.
        self._daemon_threads = daemon_threads
        self._server: GuardedServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self._server.server_port)

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = GuardedServer(
            self.host,
            self._requested_port,
            _json_500(self.app, self._error_body, self._name),
            limits=self.limits,
            error_body=self._error_body,
            ssl_context=self._ssl_context,
        )
        self._server.daemon_threads = self._daemon_threads
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"{self._name}:{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.stop_reading()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
