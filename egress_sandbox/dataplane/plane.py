"""DataPlane: the origin ("internet"), one gateway proxy per open CLB, and the pod network."""

from __future__ import annotations

import errno
import functools
import logging
import socket
import threading
from pathlib import Path

from egress_sandbox.aliyun.records import CloudState, LoadBalancer
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.dataplane import gateway, routes
from egress_sandbox.dataplane.listener import Listener
from egress_sandbox.dataplane.origin import OriginServer
from egress_sandbox.dataplane.podnet import PodNetwork
from egress_sandbox.k8s.store import Store

log = logging.getLogger(__name__)
ORIGIN_HOST = "127.0.0.1"


class DataPlane:
    def __init__(
        self,
        store: Store,
        cloud: CloudState,
        *,
        cloud_lock: threading.RLock,
        ids: IdFactory,
        pki: SandboxPki,
        prefer_port: int = 80,
        podnet_socket: Path | None = None,
    ) -> None:
        self.store = store
        self.cloud = cloud
        self.cloud_lock = cloud_lock
        self.ids = ids
        self.prefer_port = prefer_port
        self.origin = OriginServer(pki, ORIGIN_HOST)
        self.podnet = (
            PodNetwork(
                podnet_socket,
                cloud,
                cloud_lock=cloud_lock,
                origin_host=ORIGIN_HOST,
                origin_ports=lambda: self.origin_ports,
            )
            if podnet_socket is not None
            else None
        )
        self._lock = threading.Lock()
        self._gateways: dict[str, Listener] = {}

    @property
    def origin_ports(self) -> tuple[int, int]:
        """(HTTP port, HTTPS port) of the origin on 127.0.0.1."""
        return self.origin.http_port, self.origin.https_port

    def start(self) -> None:
        self.origin.start()
        if self.podnet is not None:
            self.podnet.start()

    def stop(self) -> None:
        with self._lock:
            listeners, self._gateways = list(self._gateways.values()), {}
        for listener in listeners:
            listener.stop()
        if self.podnet is not None:
            self.podnet.stop()
        self.origin.stop()

    # ---- CLBs --------------------------------------------------------------------------------

    def open_clb(self, lb: LoadBalancer) -> int:
        """Listen on ``lb.address``: port ``prefer_port`` if possible, else a free port.

        The port is stored in ``lb.listen_port`` (under ``cloud_lock``) and returned.
        Opening an already open CLB returns its port.
        """
        with self._lock:
            if lb.load_balancer_id in self._gateways:
                return int(self._gateways[lb.load_balancer_id].sock.getsockname()[1])
            sock = _bind(lb.address, self.prefer_port)
            port = int(sock.getsockname()[1])
            ctx = gateway.GatewayContext(
                lb_id=lb.load_balancer_id,
                decide=functools.partial(self._decide, lb.load_balancer_id),
                origin_host=ORIGIN_HOST,
                origin_http_port=lambda: self.origin.http_port,
                origin_https_port=lambda: self.origin.https_port,
                request_id=self.ids.uuid,
            )
            listener = Listener(f"gw-{lb.address}", sock, lambda c: gateway.serve(c, ctx))
            self._gateways[lb.load_balancer_id] = listener
        with self.cloud_lock:
            lb.listen_port = port
        listener.start()
        log.info("data plane: CLB %s listening on %s:%d", lb.load_balancer_id, lb.address, port)
        return port

    def close_clb(self, lb_id: str) -> None:
        with self._lock:
            listener = self._gateways.pop(lb_id, None)
        if listener is not None:
            listener.stop()

    def open_ports(self) -> dict[str, int]:
        with self._lock:
            return {k: int(v.sock.getsockname()[1]) for k, v in self._gateways.items()}

    # ---- the decision per request ------------------------------------------------------------

    def _decide(self, lb_id: str, host: str, path: str) -> gateway.Decision:
        with self.cloud_lock:
            gw = next(
                (
                    g
                    for g in self.cloud.gateways.values()
                    if lb_id in (g.private_slb_id, g.public_slb_id)
                ),
                None,
            )
            config_name = gw.config_name if gw else ""
            egress = self.cloud.snat_egress_ip(gw.vswitch_ids[0]) if gw else None
        if not config_name:
            return gateway.Decision(None, None)
        return gateway.Decision(routes.lookup(self.store, config_name, host, path), egress)


def _bind(address: str, prefer_port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, prefer_port))
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EADDRINUSE):
            s.close()
            raise
        # Without privileges (or with port taken) the CLB listens on a free port instead;
        # the port is carried in lb.listen_port and in the Ingress status.
        s.bind((address, 0))
    s.listen(64)
    return s
