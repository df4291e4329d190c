"""The pod network: SOCKS5 (RFC 1928, no auth) proxies on UNIX sockets, one per pod.

Pods (curl in an empty network namespace) can only reach the world through it. The kubelet
``attach``-es a socket for each pod container it runs, naming the pod's address; every
connection through that socket leaves from that address (the node's for a hostNetwork pod), so
the gateway's TCP peer, and the x-forwarded-for it adds, is the pod, as behind a CLB that keeps
the client address. A pod cannot claim another's address: its only proxy is its own socket
(curl's proxy options are refused, see ``kubelet.curlcmd``). The shared socket the network
starts with is the node itself (source: the node address).

It decides as the VPC would for traffic from a node-vSwitch pod:
- a CLB address, port 80 (or 443 while the CLB has a TLS listener) -> that listener's real
  port (pods always see 80 and 443, whatever the data plane could bind); the real port itself
  is reachable too, since the Ingress status carries it when the listener had to move;
- any other private or loopback address -> refused by ruleset (0x02);
- a public address or a domain name -> only when the node vSwitch has SNAT, and then to the
  origin with a PROXY header carrying the EIP as source and, as destination, the address
  dialled (``publicnet.address_of`` for a name, so the origin knows the host); otherwise host
  unreachable (0x04).
It never opens a socket to the requested public address itself.
"""

from __future__ import annotations

import contextlib
import functools
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
from egress_sandbox.dataplane import proxyproto, publicnet
from egress_sandbox.dataplane.listener import Listener

log = logging.getLogger(__name__)
RELAY_IDLE = 60.0  # a relay with no traffic either way for this long is closed
# Names the cluster's DNS answers (or search-path forms of them), never the internet's.
CLUSTER_SUFFIXES = (".cluster.local", ".svc", ".local", ".internal")
SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes, the last one NUL
# Started networks by the path of their shared socket: a kubelet finds the network serving the
# socket it was given there, as a kubelet finds its CNI plugin at a well-known path.
_SERVING: dict[Path, PodNetwork] = {}
_SERVING_LOCK = threading.Lock()


def network_at(socket_path: Path) -> PodNetwork | None:
    """The started PodNetwork whose shared socket is ``socket_path`` in this process."""
    with _SERVING_LOCK:
        return _SERVING.get(Path(socket_path).absolute())


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
        self._lock = threading.Lock()
        self._pods: dict[Path, Listener] = {}  # attached sockets by path

    def start(self) -> None:
        self._listener = _listen("podnet", self.socket_path, self._serve)
        with _SERVING_LOCK:
            _SERVING[self.socket_path.absolute()] = self

    def stop(self) -> None:
        with _SERVING_LOCK:
            if _SERVING.get(self.socket_path.absolute()) is self:
                del _SERVING[self.socket_path.absolute()]
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        with self._lock:
            paths = list(self._pods)
        for path in paths:
            self.detach(path)

    def attach(self, path: Path, source_ip: str) -> None:
        """Serve a pod's own socket at ``path``: what it dials leaves from ``source_ip``.

        ``source_ip`` must be a loopback address (pod and node addresses in the sandbox are).
        """
        if not ipaddress.ip_address(source_ip).is_loopback:
            raise ValueError(f"source_ip: {source_ip!r} is not a loopback address")
        listener = _listen(
            f"podnet-{source_ip}", path, functools.partial(self._serve, source=source_ip)
        )
        with self._lock:
            old = self._pods.pop(path, None)
            self._pods[path] = listener
        if old is not None:
            old.stop()

    def detach(self, path: Path) -> None:
        """Close a pod's socket (its open relays too) and remove the file."""
        with self._lock:
            listener = self._pods.pop(path, None)
        if listener is not None:
            listener.stop()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # ---- SOCKS5 ------------------------------------------------------------------------------

    def _serve(self, client: socket.socket, source: str | None = None) -> None:
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
        is_ip = atyp == 1
        if not is_ip:
            with contextlib.suppress(ValueError):
                host, is_ip = str(ipaddress.IPv4Address(host)), True  # a literal sent as a name
        try:
            upstream = self._dial(host, port, is_ip=is_ip, source=source or self.node_ip)
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

    def _dial(self, host: str, port: int, *, is_ip: bool, source: str) -> socket.socket:
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
                return _connect_local(lb.address, real_ports[port], source)
            if port in real_ports.values():
                # A client that read the moved port from the Ingress status, as egress_lib does.
                return _connect_local(lb.address, port, source)
            raise _Refuse(REFUSED)  # the CLB has no listener on this port
        if is_ip and not ipaddress.IPv4Address(host).is_global:
            raise _Refuse(NOT_ALLOWED)
        if not is_ip and (host == "localhost" or host.endswith(".localhost")):
            raise _Refuse(NOT_ALLOWED)  # resolves to loopback, which is refused above
        if not is_ip and host.endswith(CLUSTER_SUFFIXES):
            # In-cluster names are not public; the sandbox does not route to Services (a real
            # cluster would): stricter, never kinder.
            raise _Refuse(HOST_UNREACHABLE)
        if egress_ip is None:
            raise _Refuse(HOST_UNREACHABLE)  # no SNAT for the node vSwitch: no route out
        http_port, https_port = self.origin_ports()
        sock = _connect_local(self.origin_host, https_port if port == 443 else http_port, source)
        try:
            # The destination the NAT forwards to: the public address the pod dialled, or the
            # one its resolver would have given for the name.
            dst = host if is_ip else publicnet.address_of(host)
            sock.sendall(
                proxyproto.ProxyHeader(egress_ip, dst, sock.getsockname()[1], port).encode()
            )
        except OSError:
            sock.close()
            raise
        return sock


def _listen(name: str, path: Path, handle: Callable[[socket.socket], None]) -> Listener:
    """A started listener on a fresh UNIX socket at ``path`` that only its owner may use."""
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise ValueError(f"socket path: {str(path)!r} is longer than {SUN_PATH_MAX} bytes")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket from a previous run
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    listener = Listener(name, sock, handle)
    listener.start()
    return listener


def _connect_local(host: str, port: int, source: str) -> socket.socket:
    """Only loopback targets are ever dialled, always from ``source``: falling back to another
    source would show the gateway (and its IP lists) a client that is not the pod."""
    assert ipaddress.ip_address(host).is_loopback, host
    return socket.create_connection((host, port), timeout=10, source_address=(source, 0))


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
