"""Pod addresses: the node's share of the cluster's pod CIDR, handed out as a CNI plugin does.

Flannel (ACK's default for this kind of cluster) gives every node a /24 of the pod CIDR and each
new pod the lowest free address in it (the first, .1, is the node's bridge). The sandbox's node
takes the /24 numbered by the second octet of its own address (127.N.1.10 -> 127.244.N.0/24 for
the default 127.244.0.0/16), so sandboxes on different loopback blocks never hand out the same
pod address: echo-server pods bind theirs, and two sandboxes run side by side in one test
session. A pod CIDR of /24 or smaller is the node's whole range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

NODE_PREFIX = 24


def node_pod_subnet(pod_cidr: str, node_ip: str) -> ipaddress.IPv4Network:
    """The node's pod range inside ``pod_cidr`` (a ValueError names a bad CIDR)."""
    try:
        net = ipaddress.IPv4Network(pod_cidr)
    except ValueError as exc:
        raise ValueError(
            f"pod_cidr: {pod_cidr!r} is not an IPv4 network (expected e.g. 127.244.0.0/16)"
        ) from exc
    if net.prefixlen >= NODE_PREFIX:
        return net
    subnets = 2 ** (NODE_PREFIX - net.prefixlen)
    index = (int(ipaddress.IPv4Address(node_ip)) >> 16 & 0xFF) % subnets
    return ipaddress.IPv4Network((int(net.network_address) + (index << 8), NODE_PREFIX))


class PodAddresses:
    """Picks addresses for new pods from the node's range; the caller says which are taken."""

    def __init__(self, pod_cidr: str, node_ip: str) -> None:
        self.subnet = node_pod_subnet(pod_cidr, node_ip)
        if not self.subnet.is_loopback:
            raise ValueError(
                f"pod_cidr: {pod_cidr!r} is outside 127.0.0.0/8; the sandbox binds pod "
                "addresses on loopback (expected e.g. 127.244.0.0/16)"
            )
        hosts = list(self.subnet.hosts())
        # .1 is the node's cni0 bridge, as with Flannel (a /31 or /32 has no room for one).
        self._pool = [str(h) for h in (hosts[1:] if len(hosts) > 2 else hosts)]

    @property
    def range_text(self) -> str:
        """The range as host-local IPAM names it in its "no IP addresses available" error."""
        return f"{self._pool[0]}-{self._pool[-1]}"

    def pick(self, live: Iterable[str], released: Iterable[str] = ()) -> str | None:
        """The lowest address no live pod holds, preferring ones no pod reports at all.

        ``released``: addresses of pods that ended, whose sandbox (and so address) is gone
        although their status still reports it; they are reused only when nothing else is
        free. None: the range is exhausted.
        """
        held = set(live)
        reported = held | set(released)
        for ip in self._pool:
            if ip not in reported:
                return ip
        return next((ip for ip in self._pool if ip not in held), None)
