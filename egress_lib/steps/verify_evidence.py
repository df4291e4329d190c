"""What verify reads out of an answer and the cluster: the source address, the rule, the policy.

Pure functions (unit-tested): the address an echo body shows, the Ingress rule a request
matches, the destination ``verify.echo_url`` goes through, and which IP list of the parameters
refuses a source address.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from egress_lib.parameters import Destination, Parameters
from egress_lib.policies import IpAccess

# JSON keys that carry the caller's address: the sandbox origin (source_ip), ipify (ip),
# httpbin (origin). Looked for in this order.
ADDRESS_KEYS = ("source_ip", "ip", "origin")


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def source_address(body: str) -> str | None:
    """The caller's address an answer shows, or None when it shows none.

    JSON with ``source_ip``, ``ip`` or ``origin``, or a body that is only an address
    (ifconfig.me/ip, checkip.amazonaws.com, icanhazip.com). httpbin's ``origin`` lists the
    X-Forwarded-For it received before the address it saw (the gateway adds the pod's), so the
    last entry is taken [UNCONFIRMED: httpbin's order is observed behaviour, not documented].
    """
    text = "\n".join(
        line for line in body.strip().splitlines() if not line.startswith("curl: (")
    ).strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        for key in ADDRESS_KEYS:
            value = data.get(key)
            if isinstance(value, str):
                parts = [p for p in (_ip(v) for v in value.split(",")) if p]
                if parts:
                    return parts[-1]
        return None
    return _ip(text) if len(text) <= 45 else None  # 45: the longest textual IPv6 address


def host_matches(rule_host: str, host: str) -> bool:
    """Ingress host matching: exact, or ``*.example.com`` for exactly one more label."""
    rule_host, host = rule_host.lower(), host.lower()
    if rule_host.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == rule_host[2:]
    return rule_host == host


def path_matches(rule_path: str, path_type: str, path: str) -> bool:
    """Exact: the same path; Prefix (and ImplementationSpecific, taken as Prefix): by element."""
    if path_type == "Exact":
        return path == rule_path
    if rule_path in ("", "/"):
        return True
    base = rule_path.rstrip("/")
    return path == base or path.startswith(base + "/")


@dataclass(frozen=True)
class Rule:
    ingress: str
    host: str
    path: str
    path_type: str

    def __str__(self) -> str:
        return f"Ingress {self.ingress}: {self.host}{self.path} ({self.path_type})"


def _rules(ingress: dict[str, Any]) -> list[Rule]:
    name = str((ingress.get("metadata") or {}).get("name") or "")
    out: list[Rule] = []
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        http = rule.get("http") or {}
        for p in http.get("paths") or []:
            out.append(
                Rule(
                    name,
                    str(rule.get("host") or ""),
                    str(p.get("path") or "/"),
                    str(p.get("pathType") or "ImplementationSpecific"),
                )
            )
    return out


def matched_rule(ingresses: list[dict[str, Any]], host: str, path: str) -> Rule | None:
    """The rule the gateway picks for ``host`` + ``path`` among these Ingresses, or None.

    As the Ingress API orders matches: an exact host before a wildcard, an Exact path before
    a Prefix, a longer prefix before a shorter one (the path's query is not part of it).
    """
    path = path.split("?", 1)[0] or "/"
    found = [
        r
        for ing in ingresses
        for r in _rules(ing)
        if (not r.host or host_matches(r.host, host)) and path_matches(r.path, r.path_type, path)
    ]

    def rank(r: Rule) -> tuple[int, int, int]:
        host_rank = 2 if r.host.lower() == host.lower() else (1 if r.host else 0)
        return (host_rank, 1 if r.path_type == "Exact" else 0, len(r.path))

    return max(found, key=rank) if found else None


@dataclass(frozen=True)
class EchoTarget:
    """``verify.echo_url`` as verify requests it: through the route of ``destination``."""

    url: str
    host: str
    path: str  # with the query, as sent
    destination: Destination


def echo_target(p: Parameters) -> EchoTarget | None:
    """The destination whose host ``verify.echo_url`` names (the longest matching path wins).

    None when echo_url is unset or no destination has its host (the parameters check refuses
    that; verify then skips the echo with a note).
    """
    url = p.verify.echo_url
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    plain = path.split("?", 1)[0]
    candidates = [
        d
        for d in p.destinations
        if host_matches(d.host, host) and path_matches(d.path, d.path_type, plain)
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda d: (d.host.lower() == host, len(d.path)))
    return EchoTarget(url, host, path, best)


def _index(p: Parameters, dest: Destination) -> int:
    return next(i for i, d in enumerate(p.destinations) if d is dest or d == dest)


def _in(source: str, cidrs: list[str]) -> bool:
    addr = ipaddress.ip_address(source)
    return any(addr in ipaddress.ip_network(c, strict=False) for c in cidrs)


def _refusal(lists: IpAccess, key: str, source: str) -> tuple[str, str] | None:
    if _in(source, lists.deny):
        return f"{key}.deny", ", ".join(lists.deny)
    if lists.allow and not _in(source, lists.allow):
        return f"{key}.allow", ", ".join(lists.allow)
    return None


def denying_policy(p: Parameters, dest: Destination, source: str | None) -> tuple[str, str] | None:
    """(parameter key, its value) of the IP list that refuses ``source`` for ``dest``, or None.

    The gateway's order: gateway-wide lists first; then the route's lists if the destination
    has any, else the host's domain lists (any destination of that host may declare them).
    """
    if not source or _ip(source) is None:
        return None
    gateway = p.gateway.ip_access_control
    if gateway is not None:
        found = _refusal(gateway, "gateway.ip_access_control", source)
        if found:
            return found
    route = dest.policies.source_ips
    if route is not None and (route.allow or route.deny):
        return _refusal(route, f"destinations[{_index(p, dest)}].policies.source_ips", source)
    for i, d in enumerate(p.destinations):
        domain = d.policies.domain_source_ips
        if domain is not None and d.host.lower() == dest.host.lower():
            return _refusal(domain, f"destinations[{i}].policies.domain_source_ips", source)
    return None
