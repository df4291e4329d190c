"""DataPlane: the origin ("internet"), gateway proxies per CLB listener, and the pod network.

It owns what the gateways share: the origin's host rules (``origin_hosts`` plus the run-time
``origin down|up``), the dialler through the NAT, parsed policies, token buckets, the mirror
workers, upstream TLS contexts and each CLB's round robin over the gateway's replicas.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from egress_sandbox.aliyun.records import CloudState, LoadBalancer
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.dataplane import gateway, proxyproto, publicnet, routes
from egress_sandbox.dataplane.decide import GatewayView, RouteDecision, decide
from egress_sandbox.dataplane.forward import Forwarder
from egress_sandbox.dataplane.listener import Listener
from egress_sandbox.dataplane.mirror import Mirror
from egress_sandbox.dataplane.origin import OriginServer
from egress_sandbox.dataplane.origin_rules import OriginHost, OriginRules
from egress_sandbox.dataplane.podnet import PodNetwork
from egress_sandbox.dataplane.policy import PolicyCache, domain_owner_tls, gateway_source
from egress_sandbox.dataplane.ratelimit import RateLimiter
from egress_sandbox.dataplane.tls import GatewayTls, Pem, Versions, find_certificate
from egress_sandbox.dataplane.upstream_tls import ClientContexts
from egress_sandbox.k8s.store import Store
from egress_sandbox.mse.binding import config_type_registered
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG

log = logging.getLogger(__name__)
ORIGIN_HOST = "127.0.0.1"
HTTP_PORT, HTTPS_PORT = 80, 443  # the CLB listeners the gateway serves
TLS_PORTS = (443,)  # public ports that speak TLS (as the pod network decides it too)


class DataPlane:
    def __init__(
        self,
        store: Store,
        cloud: CloudState,
        *,
        cloud_lock: threading.RLock,
        ids: IdFactory,
        pki: SandboxPki,
        prefer_port: int = HTTP_PORT,
        prefer_tls_port: int = HTTPS_PORT,
        podnet_socket: Path | None = None,
        origin_hosts: list[OriginHost] | None = None,
    ) -> None:
        self.store = store
        self.cloud = cloud
        self.cloud_lock = cloud_lock
        self.ids = ids
        self.pki = pki
        self.prefer_port = prefer_port
        self.prefer_tls_port = prefer_tls_port
        self.origin_hosts = list(origin_hosts or [])
        self.origin_rules = OriginRules(self.origin_hosts)
        self.origin = OriginServer(pki, ORIGIN_HOST, self.origin_rules)
        self.policies = PolicyCache()
        self.limiter = RateLimiter()
        self.mirror = Mirror(store)
        self._client_tls = ClientContexts()
        self.forwarder = Forwarder(self.dial, self._upstream_tls, self.draw)
        self._round_robin: dict[str, int] = {}  # CLB id -> connections handed out
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
        self._gateways: dict[str, dict[int, Listener]] = {}  # CLB id -> listener port -> ...

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
            listeners = [x for per_clb in self._gateways.values() for x in per_clb.values()]
            self._gateways = {}
        for listener in listeners:
            listener.stop()
        self.mirror.stop()
        if self.podnet is not None:
            self.podnet.stop()
        self.origin.stop()

    # ---- the internet ------------------------------------------------------------------------

    def dial(self, src_ip: str, host: str, port: int, timeout: float) -> socket.socket:
        """A connection to public ``host:port`` leaving from ``src_ip`` (an EIP).

        The origin plays every host: the PROXY line names the EIP and the host's public
        address. A down host refuses the connection, as a host with nothing listening does.
        """
        if self.origin_rules.rule(host).down:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"{host}:{port} refused")
        local = self.origin.https_port if port in TLS_PORTS else self.origin.http_port
        sock = socket.create_connection((ORIGIN_HOST, local), timeout=timeout)
        try:
            sport = sock.getsockname()[1]
            dst = host if _is_ipv4(host) else publicnet.address_of(host)
            sock.sendall(proxyproto.ProxyHeader(src_ip, dst, sport, port).encode())
        except OSError:
            sock.close()
            raise
        return sock

    def set_origin_down(self, host: str, down: bool) -> dict[str, Any]:
        """Take a public host down or bring it back (the run-time ``origin`` control)."""
        return self.origin_rules.set_down(host, down).model_dump()

    def draw(self) -> float:
        """A uniform number in [0, 1) from the gateway's own stream of the seeded randomness."""
        return int(self.ids.hex(13, stream="gateway"), 16) / 16**13

    def _upstream_tls(self, up: routes.Upstream) -> Any:
        return self._client_tls.get(self.store, up.client_secret)

    # ---- CLBs --------------------------------------------------------------------------------

    def open_clb(self, lb: LoadBalancer) -> int:
        """Serve ``lb``'s listeners on ``lb.address``; returns the real port of listener 80.

        Listener 80 (HTTP) is always served; 443 (HTTPS, TLS terminated here) while the CLB has
        an https listener on 443, and a listener the CLB no longer has is closed: calling this
        again after the CLB's listeners changed brings the data plane in line. Each listener
        binds its own port if it can, else a free port; ``lb.listen_ports`` records which
        (under ``cloud_lock``), for the pod network and the Ingress status.
        """
        with self.cloud_lock:
            lb_id, address = lb.load_balancer_id, lb.address
            wanted = {HTTP_PORT} | {
                HTTPS_PORT
                for e in lb.listeners
                if int(e["port"]) == HTTPS_PORT and e.get("protocol") == "https"
            }
        with self._lock:
            current = self._gateways.setdefault(lb_id, {})
            opened = {p: self._listener(lb_id, address, p) for p in wanted - current.keys()}
            current.update(opened)
            closed = [current.pop(p) for p in sorted(current.keys() - wanted)]
            real = {p: listener.port for p, listener in current.items()}
        for listener in closed:
            listener.stop()  # before the port leaves listen_ports: nobody may find it open then
        with self.cloud_lock:
            lb.listen_ports = real
        for listener in opened.values():
            listener.start()  # bound and listening already: early connections wait in backlog
            log.info("data plane: CLB %s listening on %s:%d", lb_id, address, listener.port)
        return real[HTTP_PORT]

    def _listener(self, lb_id: str, address: str, port: int) -> Listener:
        """A not yet started listener for ``port`` of a CLB (called with ``_lock`` held)."""
        tls = port == HTTPS_PORT
        sock = _bind(address, self.prefer_tls_port if tls else self.prefer_port)
        ctx = gateway.GatewayContext(
            lb_id=lb_id,
            address=address,
            view=functools.partial(self._view, lb_id),
            decide=self._decide,
            forwarder=self.forwarder,
            limiter=self.limiter,
            mirror=self.mirror,
            draw=self.draw,
            request_id=self.ids.uuid,
            assign_replica=functools.partial(self._assign_replica, lb_id),
            scheme="https" if tls else "http",
        )
        terminate = (
            GatewayTls(
                self.pki,
                address,
                functools.partial(self._certificate, lb_id),
                functools.partial(self._tls_versions, lb_id),
            ).context_for
            if tls
            else None
        )
        return Listener(
            f"gw-{address}:{port}", sock, lambda c: gateway.serve(c, ctx), tls=terminate
        )

    def close_clb(self, lb_id: str) -> None:
        with self._lock:
            listeners = self._gateways.pop(lb_id, {})
        for listener in listeners.values():
            listener.stop()

    def open_ports(self) -> dict[str, int]:
        """CLB id -> the real port of its listener 80, for every open CLB."""
        with self._lock:
            return {k: v[HTTP_PORT].port for k, v in self._gateways.items() if HTTP_PORT in v}

    # ---- the decisions per connection and per request ---------------------------------------

    def _gateway_of(self, lb_id: str) -> tuple[str, str | None]:
        """(config name, egress IP) of the gateway behind a CLB; ("", None) when detached."""
        with self.cloud_lock:
            gw = next(
                (
                    g
                    for g in self.cloud.gateways.values()
                    if lb_id in (g.private_slb_id, g.public_slb_id)
                ),
                None,
            )
            if gw is None:
                return "", None
            # The gateway's nodes spread over all its vSwitches and a request may leave from
            # any of them, so each needs a way out. Stricter than the cloud, where requests
            # through the covered vSwitches would still get through: none does here.
            exits = [self.cloud.snat_egress_ip(v) for v in gw.vswitch_ids]
            return gw.config_name, exits[0] if exits and all(exits) else None

    def _view(self, lb_id: str) -> GatewayView | None:
        config_name, egress = self._gateway_of(lb_id)
        if not config_name:
            return None
        config = (
            self.store.try_get(MSE_INGRESS_CONFIG, None, config_name)
            if config_type_registered(self.store)
            else None
        )
        return GatewayView(config_name, egress, gateway_source(config))

    def _decide(self, config_name: str, host: str, path: str) -> RouteDecision | None:
        return decide(self.store, self.policies, config_name, host, path)

    def _assign_replica(self, lb_id: str) -> int | None:
        """The replica a new connection on ``lb_id`` goes to (round robin); None: none runs."""
        with self.cloud_lock:
            gw = next(
                (
                    g
                    for g in self.cloud.gateways.values()
                    if lb_id in (g.private_slb_id, g.public_slb_id)
                ),
                None,
            )
            replicas = gw.replicas if gw is not None else 1
        if replicas < 1:
            return None  # the CLB has no backend: it resets the connection
        with self._lock:
            n = self._round_robin.get(lb_id, 0)
            self._round_robin[lb_id] = n + 1
        return n % replicas

    def _certificate(self, lb_id: str, sni: str) -> Pem | None:
        config_name, _ = self._gateway_of(lb_id)
        if not config_name:
            return None
        return find_certificate(self.store, routes.ordered_ingresses(self.store, config_name), sni)

    def _tls_versions(self, lb_id: str, sni: str) -> Versions:
        config_name, _ = self._gateway_of(lb_id)
        if not config_name:
            return (None, None)
        return domain_owner_tls(routes.ordered_ingresses(self.store, config_name), sni)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


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
        # the port is carried in lb.listen_ports and in the Ingress status.
        s.bind((address, 0))
    s.listen(64)
    return s
