"""KubeApiServer: the emulated kube-apiserver over real HTTP(S) on loopback."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable

from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.httpguard import HttpLimits
from egress_sandbox.core.httpserver import ThreadedServer
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.bodies import MAX_BODY
from egress_sandbox.k8s.crds import install_crd_controller
from egress_sandbox.k8s.errors import ApiError
from egress_sandbox.k8s.routes import ApiApp
from egress_sandbox.k8s.store import Store
from egress_sandbox.k8s.validation import install_admission

# The Status reasons of the errors the HTTP layer answers itself (others: Unknown, "").
_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 500: "InternalError"}


def status_body(code: int, message: str) -> bytes:
    """A ``Status`` for errors answered below the API (malformed HTTP, oversized headers)."""
    err = ApiError(message, code=code, reason=_REASONS.get(code, ""))
    return json.dumps(err.status(), separators=(",", ":")).encode()


class KubeApiServer:
    """Serves ``store`` like kube-apiserver. Installs admission and the CRD controller itself."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        users: dict[str, User] | None = None,
        audit: AuditLog | None = None,
        pod_logs: Callable[[str, str, str | None], str] | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self._port = port
        self.ssl_context = ssl_context
        install_admission(store)
        install_crd_controller(store)
        self.app = ApiApp(
            store, dict(users or {}), audit, pod_logs, lambda: f"{self.host}:{self.port}"
        )
        # Watch streams are long requests: daemon threads, so stop() never waits for them.
        self._http = ThreadedServer(
            self.app,
            host=host,
            port=port,
            name="kube-apiserver",
            ssl_context=ssl_context,
            limits=limits or HttpLimits(max_body=MAX_BODY),
            error_body=status_body,
        )

    @property
    def port(self) -> int:
        return self._http.port if self._http.running else self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def bookmark_interval(self) -> float:
        """Seconds between BOOKMARK events on watches that allow them (real servers: ~60)."""
        return self.app.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self.app.bookmark_interval = seconds

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket is listening."""
        if self._http.running:
            return
        self.app.stopping.clear()
        self._http.start()

    def stop(self) -> None:
        if not self._http.running:
            return
        # Watch streams notice `stopping` within half a second; in-process watchers stay.
        self.app.stopping.set()
        self._http.stop()
