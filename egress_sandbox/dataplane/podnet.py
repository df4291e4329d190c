"""The pod network: a SOCKS5 (RFC 1928, no auth) proxy on a UNIX socket.

Pods (curl in an empty network namespace) can only reach the world through it. It decides as
the VPC would for traffic from a node-vSwitch pod:
- a CLB address, port 80 (or 443 while the CLB has a TLS listener) -> that listener's real
  port (pods always see 80 and 443, whatever the data plane could bind); the real port itself
  is reachable too, since the Ingress status carries it when the listener had to move;
- any other private or loopback address -> refused by ruleset (0x02);
- a public address or a domain name -> only when the node vSwitch has SNAT, and then to the
  origin with a PROXY header carrying the EIP; otherwise host unreachable (0x04).
It never opens a socket to the requested public address itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.dataplane import proxyproto
from egress_sandbox.dataplane.listener import Listener

log = logging.getLogger(__name__)
RELAY_IDLE = 60.0  # a relay with no traffic either way for this long is closed

OK, NOT_ALLOWED, HOST_UNREACHABLE, REFUSED, CMD_UNSUPPORTED, ATYP_UNSUPPORTED = 0, 2, 4, 5, 7, 8


class _Refuse(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed during SOCKS negotiation")
        buf += chunk
    return buf


def _reply(sock: socket.socket, code: int) -> None:
    sock.sendall(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))


class PodNetwork:
    def __init__(
        self,
        socket_path: Path,
        cloud: CloudState,
        *,
        cloud_lock: threading.RLock,
        origin_host: str,
        origin_ports: Callable[[], tuple[int, int]],
        node_ip: str = "127.16.1.10",
    ) -> None:
        self.socket_path = socket_path
        self.cloud = cloud
        self.cloud_lock = cloud_lock
        self.origin_host = origin_host
        self.origin_ports = origin_ports
        self.node_ip = node_ip
        self._listener: Listener | None = None

    def start(self) -> None:
        if self.socket_path.exists():
            self.socket_path.unlink()  # a stale socket from a previous run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        sock.listen(64)
        self._listener = Listener("podnet", sock, self._serve)
        self._listener.start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    # ---- SOCKS5 ------------------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        ver, n = _recv_exact(client, 2)
        methods = _recv_exact(client, n)
        if ver != 5 or 0 not in methods:
            client.sendall(b"\x05\xff")
            return
        client.sendall(b"\x05\x00")
        ver, cmd, _, atyp = _recv_exact(client, 4)
        if atyp == 1:
            host = socket.inet_ntoa(_recv_exact(client, 4))
        elif atyp == 3:
            host = _recv_exact(client, _recv_exact(client, 1)[0]).decode("idna").lower()
        elif atyp == 4:
            _recv_exact(client, 16)
            host = ""
        else:
            _reply(client, ATYP_UNSUPPORTED)
            return
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if cmd != 1:
            _reply(client, CMD_UNSUPPORTED)
            return
        if atyp == 4:
            _reply(client, ATYP_UNSUPPORTED)  # the sandbox VPC is IPv4 only
            return
        try:
            upstream = self._dial(host, port, is_ip=atyp == 1)
        except _Refuse as r:
            log.info("podnet: %s:%s refused (0x%02x)", host, port, r.code)
            _reply(client, r.code)
            return
        except OSError:
            _reply(client, REFUSED)
            return
        try:
            _reply(client, OK)
            _relay(client, upstream)
        finally:
            upstream.close()

    def _dial(self, host: str, port: int, *, is_ip: bool) -> socket.socket:
        with self.cloud_lock:
            names = self.cloud.pod_dns()
            address = names.get(host, host)  # a host name resolves as the pods' DNS has it
            lb = next(
                (lb for lb in self.cloud.load_balancers.values() if lb.address == address), None
            )
            real_ports = dict(lb.listen_ports) if lb is not None else {}
            cluster = next(iter(self.cloud.clusters.values()), None)
            # Pods live on the node pools' vSwitches, not the control plane's.
            nodes = self.cloud.node_vswitch_ids(cluster.cluster_id) if cluster else []
            node_vsw = nodes[0] if nodes else ""
            egress_ip = self.cloud.snat_egress_ip(node_vsw)
        if lb is not None:
            if port in real_ports:
                return self._connect_local(lb.address, real_ports[port])
            if port in real_ports.values():
                # A client that read the moved port from the Ingress status, as egress_lib does.
                return self._connect_local(lb.address, port)
            raise _Refuse(REFUSED)  # the CLB has no listener on this port
        if is_ip and not ipaddress.IPv4Address(host).is_global:
            raise _Refuse(NOT_ALLOWED)
        if egress_ip is None:
            raise _Refuse(HOST_UNREACHABLE)  # no SNAT for the node vSwitch: no route out
        http_port, https_port = self.origin_ports()
        sock = self._connect_local(self.origin_host, https_port if port == 443 else http_port)
        try:
            dst = host if is_ip else self.origin_host
            sock.sendall(
                proxyproto.ProxyHeader(egress_ip, dst, sock.getsockname()[1], port).encode()
            )
        except OSError:
            sock.close()
            raise
        return sock

    def _connect_local(self, host: str, port: int) -> socket.socket:
        # Only loopback targets are ever dialled; the source is the node address so the
        # gateway's x-forwarded-for shows a node-vSwitch address, as in the VPC.
        assert ipaddress.ip_address(host).is_loopback, host
        try:
            return socket.create_connection(
                (host, port), timeout=10, source_address=(self.node_ip, 0)
            )
        except OSError:
            return socket.create_connection((host, port), timeout=10)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done or nothing moves for RELAY_IDLE."""
    sel = selectors.DefaultSelector()
    peers = {a: b, b: a}
    open_reads = 2
    try:
        for s in peers:
            sel.register(s, selectors.EVENT_READ)
        while open_reads:
            events = sel.select(RELAY_IDLE)
            if not events:
                return
            for key, _ in events:
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if data:
                    peers[src].sendall(data)
                    continue
                sel.unregister(src)
                open_reads -= 1
                with contextlib.suppress(OSError):
                    peers[src].shutdown(socket.SHUT_WR)  # pass the half-close on
    finally:
        sel.close()
