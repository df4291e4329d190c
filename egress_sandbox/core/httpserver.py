"""One threaded werkzeug server on a loopback port, served from a daemon thread.

The Kubernetes API, the cloud OpenAPI and the control endpoint all start and stop the same way;
this is that way, once. ``stop()`` returns within ``POLL_INTERVAL`` plus the in-flight requests
(when ``daemon_threads`` is off), so tests that start and stop servers often stay quick.
"""

from __future__ import annotations

import ssl
import threading
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# serve_forever() checks for shutdown this often: stop() waits at most this long for it.
POLL_INTERVAL = 0.05


class QuietHandler(WSGIRequestHandler):
    """No per-request log lines (a query string may hold a security token); errors still log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


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
        request_handler: type[WSGIRequestHandler] | None = None,
        daemon_threads: bool = True,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"{name} binds loopback addresses only, not {host!r}")
        self.app = app
        self.host = host
        self._requested_port = port
        self._name = name
        self._ssl_context = ssl_context
        # Quiet by default: every request is in the audit log, and the sandbox log stays readable.
        self._handler = request_handler or QuietHandler
        # True: request threads (long watches) never keep the process alive, and server_close()
        # does not wait for them. False: server_close() joins in-flight requests first.
        self._daemon_threads = daemon_threads
        self._server: BaseWSGIServer | None = None
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
        self._server = make_server(
            self.host,
            self._requested_port,
            self.app,
            threaded=True,
            request_handler=self._handler,
            ssl_context=self._ssl_context,
        )
        self._server.daemon_threads = self._daemon_threads  # type: ignore[attr-defined]
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
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
