"""KubeApiServer: the emulated kube-apiserver over real HTTP(S) on loopback."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, make_server

from egress_sandbox.core.audit import AuditLog
from egress_sandbox.k8s.auth import User
from egress_sandbox.k8s.crds import install_crd_controller
from egress_sandbox.k8s.routes import ApiApp
from egress_sandbox.k8s.store import Store
from egress_sandbox.k8s.validation import install_admission


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
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("the sandbox API server binds loopback addresses only")
        self.store = store
        self.host = host
        self._port = port
        self.ssl_context = ssl_context
        install_admission(store)
        install_crd_controller(store)
        self.app = ApiApp(
            store, dict(users or {}), audit, pod_logs, lambda: f"{self.host}:{self.port}"
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_port if self._server else self._port

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
        if self._server is not None:
            return
        self.app.stopping.clear()
        self._server = make_server(
            self.host, self._port, self.app, threaded=True, ssl_context=self.ssl_context
        )
        # Handler threads must not keep the process alive (long watches).
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"kube-apiserver:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self.app.stopping.set()
        # Watch streams notice `stopping` within half a second; in-process watchers stay.
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
