"""Traffic mirroring (``mirror-target-service``, ``mirror-percentage``) in the background.

As Envoy's request mirror policy: a copy of the request as it goes upstream (after header
control), its Host with ``-shadow`` appended, goes to one ready endpoint of the target Service;
the answer is thrown away and the client never waits on it. The copies go through a bounded
queue to a few worker threads; a full queue drops the copy (Envoy drops shadows it cannot send
too), and so does a Service without ready pods.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import queue
import socket
import threading
from dataclasses import dataclass, field

from egress_sandbox.k8s.endpoints import ready_endpoints
from egress_sandbox.k8s.store import Store

log = logging.getLogger(__name__)
WORKERS = 4
QUEUE_SIZE = 64
MIRROR_TIMEOUT = 10.0  # a copy that takes longer is abandoned


@dataclass(frozen=True)
class MirrorCopy:
    namespace: str
    service: str
    port: int | None  # None: the Service's first port
    method: str
    target: str  # path and query
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str  # the gateway's address the copy leaves from
    draw: float = 0.0  # uniform in [0, 1): which ready endpoint gets it


@dataclass
class MirrorStats:
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def shadow_host(host: str) -> str:
    """Envoy's shadow Host: ``-shadow`` after the name, before any port."""
    name, sep, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return f"{name}-shadow{sep}{port}" if sep else f"{host}-shadow"


class Mirror:
    def __init__(self, store: Store, *, workers: int = WORKERS, queue_size: int = QUEUE_SIZE):
        self._store = store
        self._queue: queue.Queue[MirrorCopy | None] = queue.Queue(maxsize=queue_size)
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.stats = MirrorStats()

    def submit(self, copy: MirrorCopy) -> bool:
        """Queue ``copy``; False when it was dropped (queue full or stopped)."""
        if self._stopped.is_set():
            return False
        self._start_workers()
        try:
            self._queue.put_nowait(copy)
        except queue.Full:
            with self.stats.lock:
                self.stats.dropped += 1
            return False
        return True

    def _start_workers(self) -> None:
        with self._lock:
            if self._threads or self._stopped.is_set():
                return
            for n in range(self._workers):
                t = threading.Thread(target=self._work, name=f"mirror-{n}", daemon=True)
                self._threads.append(t)
                t.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopped.set()
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        for t in threads:
            t.join(timeout / max(len(threads), 1))

    def _work(self) -> None:
        while not self._stopped.is_set():
            try:
                copy = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if copy is None:
                return
            outcome = self._send(copy)
            with self.stats.lock:
                setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    def _port(self, copy: MirrorCopy) -> int | None:
        if copy.port is not None:
            return copy.port
        rt = self._store.types.get("", "v1", "services")
        svc = self._store.try_get(rt, copy.namespace, copy.service) if rt is not None else None
        ports = ((svc or {}).get("spec") or {}).get("ports") or []
        return int(ports[0]["port"]) if ports else None

    def _send(self, copy: MirrorCopy) -> str:
        port = self._port(copy)
        endpoints = ready_endpoints(self._store, copy.namespace, copy.service, port) if port else []
        if not endpoints:
            log.debug("mirror: %s/%s has no ready endpoint", copy.namespace, copy.service)
            return "dropped"
        ip, target_port = endpoints[min(int(copy.draw * len(endpoints)), len(endpoints) - 1)]
        try:
            sock = _connect(ip, target_port, copy.source_ip)
        except OSError as exc:
            log.debug("mirror: %s:%d unreachable: %s", ip, target_port, exc)
            return "failed"
        conn = http.client.HTTPConnection(ip, target_port, timeout=MIRROR_TIMEOUT)
        conn.sock = sock
        try:
            conn.putrequest(copy.method, copy.target, skip_host=True, skip_accept_encoding=True)
            for k, v in copy.headers:
                conn.putheader(k, v)
            if copy.body or copy.method in ("POST", "PUT", "PATCH"):
                conn.putheader("content-length", str(len(copy.body)))
            conn.putheader("connection", "close")
            conn.endheaders(copy.body or None)
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            log.debug("mirror: copy to %s:%d failed: %s", ip, target_port, exc)
            return "failed"
        finally:
            conn.close()
        return "sent"


def _connect(ip: str, port: int, source_ip: str) -> socket.socket:
    try:
        return socket.create_connection(
            (ip, port), timeout=MIRROR_TIMEOUT, source_address=(source_ip, 0)
        )
    except OSError:
        # The source address may not be bindable (not loopback): any source will do.
        return socket.create_connection((ip, port), timeout=MIRROR_TIMEOUT)
