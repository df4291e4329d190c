"""Source IP allow and deny lists at three levels, as MSE evaluates them.

Levels: the gateway's (MseIngressConfig ``spec.global.ipAccessControl``) first; then the
matched route's (``whitelist-source-range``, ``blacklist-source-range``) when its Ingress sets
any; else the host's (``domain-whitelist-source-range`` / ``domain-blacklist-source-range``).
Route level wins over domain level (reference section 3, "Route-level IP lists take precedence
over domain-level ones"); within a level, deny beats allow. The source is the TCP peer the
gateway sees: the CLB keeps the client's address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Net = ipaddress.IPv4Network
DENIED = b"RBAC: access denied"  # Envoy's RBAC filter; the exact MSE body is UNCONFIRMED


def parse_nets(values: Iterable[str]) -> tuple[Net, ...]:
    """The valid IPv4 addresses and CIDRs of ``values``; malformed entries are left out.

    MSE hands the strings to the data plane, which rejects what it cannot parse; the sandbox
    drops such an entry and keeps the rest (UNCONFIRMED: whether MSE drops the whole list).
    """
    out = []
    for v in values:
        try:
            out.append(ipaddress.IPv4Network(v.strip(), strict=False))
        except ValueError:
            continue
    return tuple(out)


def split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v.strip()]


@dataclass(frozen=True)
class IpRule:
    """One level's lists. ``allow`` None: no allow list (any source not denied passes).

    An allow list whose entries were all malformed stays an allow list that matches nothing:
    stricter than ignoring it, which would open the route to everyone.
    """

    allow: tuple[Net, ...] | None
    deny: tuple[Net, ...]

    def admits(self, source: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(source)
        except ValueError:
            return False  # not an IPv4 peer: no list can admit it
        if any(ip in n for n in self.deny):
            return False
        return self.allow is None or any(ip in n for n in self.allow)


def rule(allow: str | list[str] | None, deny: str | list[str] | None) -> IpRule | None:
    """A level's rule from annotation strings or config lists; None when neither is set."""
    if allow is None and deny is None:
        return None
    allows = split(allow) if isinstance(allow, str) else list(allow or [])
    denies = split(deny) if isinstance(deny, str) else list(deny or [])
    if not allows and not denies:
        return None  # empty values set nothing
    return IpRule(parse_nets(allows) if allows else None, parse_nets(denies))


def admitted(
    source: str, gateway: IpRule | None, route: IpRule | None, domain: IpRule | None
) -> bool:
    """Whether ``source`` passes the gateway's lists and then the route's, else the domain's."""
    if gateway is not None and not gateway.admits(source):
        return False
    level = route if route is not None else domain
    return level is None or level.admits(source)
