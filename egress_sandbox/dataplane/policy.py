"""The annotations of a matched Ingress and the MseIngressConfig's fields, as typed policies.

Parsed once per Ingress version (cached by uid and resourceVersion). Each parser follows the
OSS Higress annotation parser named in its comment; as there, a malformed value is ignored
(the route behaves as without it) unless noted. Keys: reference section 3; NGINX-compatible
keys are read under both prefixes, MSE-exclusive ones only under ``mse.ingress.kubernetes.io/``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from egress_sandbox.dataplane import headers, ipacl, ratelimit, retry
from egress_sandbox.dataplane.ipacl import IpRule
from egress_sandbox.dataplane.ratelimit import RateLimit
from egress_sandbox.dataplane.retry import RetryPolicy
from egress_sandbox.dataplane.routes import ann, host_rank

Obj = dict[str, Any]
CACHE_LIMIT = 1024
TLS_VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SVC_HOST = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\.cluster\.local$"
)
_SERVICE_REF = re.compile(r"^(?:([a-z0-9][-a-z0-9]*)/)?([a-z0-9][-a-z0-9]*)(?::([0-9]{1,5}))?$")


@dataclass(frozen=True)
class WeightedService:
    """One line of ``mse.ingress.kubernetes.io/destination``."""

    weight: int
    namespace: str
    name: str
    port: int | None


@dataclass(frozen=True)
class MirrorTarget:
    namespace: str
    name: str
    port: int | None  # None: the Service's first port
    percentage: float  # 0..100


@dataclass(frozen=True)
class RoutePolicy:
    source: IpRule | None
    rate_limit: RateLimit | None
    destinations: tuple[WeightedService, ...] | None
    retry: RetryPolicy
    timeout: float | None  # seconds, all attempts together
    mirror: MirrorTarget | None
    request_headers: headers.HeaderOps | None
    response_headers: headers.HeaderOps | None


def _route_source(ing: Obj) -> IpRule | None:
    # Higress ip_access_control.go reads whitelist-source-range under both prefixes; the
    # deny lists are MSE's (denylist-source-range, gateway >= 1.2.31, beats blacklist).
    deny = ann(ing, "denylist-source-range") or ann(ing, "blacklist-source-range", mse_only=True)
    return ipacl.rule(ann(ing, "whitelist-source-range"), deny)


def _destinations(ing: Obj) -> tuple[WeightedService, ...] | None:
    """Higress destination.go: ``[weight%] host[:port]`` per line, weights summing to 100;
    anything malformed (or another sum) ignores the whole annotation."""
    value = ann(ing, "destination", mse_only=True)
    if value is None:
        return None
    out = []
    total = 0
    for line in value.splitlines():
        fields = line.split()
        if not fields:
            return None  # Higress indexes the first field of every line: a blank one fails
        weight = 100
        if fields[0].endswith("%"):
            text = fields[0][:-1]
            if not text.lstrip("-").isdigit():
                return None
            weight = int(text)
            fields = fields[1:]
        if not fields:
            return None
        total += weight
        host, port_text = fields[0], ""
        if ":" in host:
            host, port_text = host.rsplit(":", 1)
        if port_text and not port_text.isdigit():
            return None
        m = _SVC_HOST.match(host.lower())
        # Registry hosts other than Kubernetes Services (nacos etc.) have no endpoints here:
        # such a line stays, with an unknown Service, and answers 503 when picked.
        name, ns = (m.group(1), m.group(3)) if m else (host, "")
        out.append(WeightedService(weight, ns, name, int(port_text) if port_text else None))
    if total != 100 or not out:
        return None
    return tuple(out)


def _mirror(ing: Obj) -> MirrorTarget | None:
    """Higress mirror.go: ``[namespace/]name[:port]``; percentage 0..100, default 100."""
    target = ann(ing, "mirror-target-service", mse_only=True)
    if target is None:
        return None
    m = _SERVICE_REF.match(target.strip())
    if not m:
        return None
    pct = 100.0
    raw = ann(ing, "mirror-percentage", mse_only=True)
    if raw is not None and raw.strip().lstrip("-").isdigit():
        pct = float(min(max(int(raw), 0), 100))
    port = int(m.group(3)) if m.group(3) else None
    return MirrorTarget(m.group(1) or ing["metadata"]["namespace"], m.group(2), port, pct)


def _timeout(ing: Obj) -> float | None:
    raw = (ann(ing, "timeout", mse_only=True) or "").strip()
    # Higress timeout.go: an integer number of seconds; 0 or malformed: no timeout.
    return float(raw) if raw.isdigit() and int(raw) > 0 else None


def parse_route(ing: Obj) -> RoutePolicy:
    def mse(key: str) -> str | None:
        return ann(ing, key, mse_only=True)

    return RoutePolicy(
        source=_route_source(ing),
        rate_limit=ratelimit.from_annotations(
            mse("route-limit-rps"), mse("route-limit-rpm"), mse("route-limit-burst-multiplier")
        ),
        destinations=_destinations(ing),
        retry=retry.from_annotations(
            ann(ing, "proxy-next-upstream-tries"),
            ann(ing, "proxy-next-upstream-timeout"),
            ann(ing, "proxy-next-upstream"),
        ),
        timeout=_timeout(ing),
        mirror=_mirror(ing),
        request_headers=headers.parse(
            mse("request-header-control-add"),
            mse("request-header-control-update"),
            mse("request-header-control-remove"),
        ),
        response_headers=headers.parse(
            mse("response-header-control-add"),
            mse("response-header-control-update"),
            mse("response-header-control-remove"),
        ),
    )


def domain_source(ing: Obj) -> IpRule | None:
    return ipacl.rule(
        ann(ing, "domain-whitelist-source-range", mse_only=True),
        ann(ing, "domain-blacklist-source-range", mse_only=True),
    )


def _version(value: str | None) -> str | None:
    v = (value or "").strip()
    return v if v in TLS_VERSIONS else None  # anything else: the default applies


def domain_tls(ing: Obj) -> tuple[str | None, str | None]:
    """(min, max) TLS versions an Ingress sets for its hosts (None: not set or malformed)."""
    return (
        _version(ann(ing, "tls-min-protocol-version", mse_only=True)),
        _version(ann(ing, "tls-max-protocol-version", mse_only=True)),
    )


def gateway_source(config: Obj | None) -> IpRule | None:
    """MseIngressConfig ``spec.global.ipAccessControl`` {whitelist, blacklist}."""
    access = (((config or {}).get("spec") or {}).get("global") or {}).get("ipAccessControl")
    if not isinstance(access, dict):
        return None
    allow = [str(v) for v in access.get("whitelist") or []]
    deny = [str(v) for v in access.get("blacklist") or []]
    return ipacl.rule(allow or None, deny or None)


def _hosts_of(ing: Obj) -> list[str]:
    spec = ing.get("spec") or {}
    hosts = [str(r.get("host") or "") for r in spec.get("rules") or []]
    hosts += [str(h) for e in spec.get("tls") or [] for h in e.get("hosts") or []]
    return hosts


def domain_owner_source(ingresses: list[Obj], rule_host: str) -> IpRule | None:
    """The host's domain lists: from the oldest bound Ingress with a rule for exactly that
    host that sets any (domain scope spans Ingresses; UNCONFIRMED how MSE merges them)."""
    if not rule_host:
        return None
    for ing in ingresses:
        if rule_host.lower() in (h.lower() for h in _hosts_of(ing)):
            found = domain_source(ing)
            if found is not None:
                return found
    return None


def domain_owner_tls(ingresses: list[Obj], sni: str) -> tuple[str | None, str | None]:
    """The TLS version range for ``sni``: the best host match (exact over wildcard), oldest
    Ingress first among those that set either annotation."""
    best: tuple[int, int, tuple[str | None, str | None]] | None = None
    for order, ing in enumerate(ingresses):
        versions = domain_tls(ing)
        if versions == (None, None):
            continue
        rank = max((host_rank(h, sni) for h in _hosts_of(ing) if h), default=0)
        if rank and (best is None or (rank, -order) > (best[0], best[1])):
            best = (rank, -order, versions)
    return best[2] if best else (None, None)


class PolicyCache:
    """Parsed route policies by (uid, resourceVersion): an Ingress is parsed once per change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], RoutePolicy] = {}

    def route(self, ing: Obj) -> RoutePolicy:
        meta = ing.get("metadata") or {}
        key = (str(meta.get("uid") or meta.get("name")), str(meta.get("resourceVersion") or ""))
        with self._lock:
            found = self._routes.get(key)
        if found is not None:
            return found
        parsed = parse_route(ing)
        with self._lock:
            if len(self._routes) >= CACHE_LIMIT:
                self._routes.clear()
            self._routes[key] = parsed
        return parsed
