"""The policies' translation: Ingress annotations, spec.tls and MseIngressConfig fields.

One list of :class:`PolicyRow` per destination is the single source: :func:`policy_rows`
shows it as a table, :func:`ingress_annotations` and friends build manifests from it, so
what the operator reads is what is written. Keys and value formats follow
``../shared/reference/mse-ingress.md`` section 3: lists comma-separated, multi-line values
one entry per line, numbers as strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_lib.policies import HeaderControl, IpAccess

if TYPE_CHECKING:
    from egress_lib.parameters import Destination, Parameters

NGINX = "nginx.ingress.kubernetes.io/"
MSE = "mse.ingress.kubernetes.io/"

BACKEND_PROTOCOL = NGINX + "backend-protocol"
# MSE reads the SNI name only together with the switch (OSS Higress upstreamtls.go).
PROXY_SSL_NAME = NGINX + "proxy-ssl-name"
PROXY_SSL_SERVER_NAME = NGINX + "proxy-ssl-server-name"
PROXY_SSL_SECRET = NGINX + "proxy-ssl-secret"
UPSTREAM_VHOST = NGINX + "upstream-vhost"
WHITELIST = NGINX + "whitelist-source-range"
BLACKLIST = MSE + "blacklist-source-range"
DOMAIN_WHITELIST = MSE + "domain-whitelist-source-range"
DOMAIN_BLACKLIST = MSE + "domain-blacklist-source-range"
LIMIT_RPS = MSE + "route-limit-rps"
LIMIT_RPM = MSE + "route-limit-rpm"
LIMIT_BURST = MSE + "route-limit-burst-multiplier"
LOAD_BALANCE = NGINX + "load-balance"
DESTINATION = MSE + "destination"
NEXT_UPSTREAM_TRIES = NGINX + "proxy-next-upstream-tries"
NEXT_UPSTREAM_TIMEOUT = NGINX + "proxy-next-upstream-timeout"
NEXT_UPSTREAM = NGINX + "proxy-next-upstream"
TIMEOUT = MSE + "timeout"
MIRROR_SERVICE = MSE + "mirror-target-service"
MIRROR_PERCENTAGE = MSE + "mirror-percentage"
TLS_MIN = MSE + "tls-min-protocol-version"
TLS_MAX = MSE + "tls-max-protocol-version"
INGRESS_TLS = "Ingress spec.tls"
IP_ACCESS = "MseIngressConfig spec.global.ipAccessControl"
GATEWAY_WHITELIST = IP_ACCESS + ".whitelist"
GATEWAY_BLACKLIST = IP_ACCESS + ".blacklist"
ENDPOINT_SERVICE = "ExternalName Service"


def header_annotation(direction: str, action: str) -> str:
    """``request``/``response`` x ``add``/``update``/``remove`` -> the annotation key."""
    return f"{MSE}{direction}-header-control-{action}"


# Every annotation the runbook may write on an Ingress, in the order it writes them.
MANAGED_ANNOTATIONS: tuple[str, ...] = (
    BACKEND_PROTOCOL,
    PROXY_SSL_NAME,
    PROXY_SSL_SERVER_NAME,
    UPSTREAM_VHOST,
    PROXY_SSL_SECRET,
    WHITELIST,
    BLACKLIST,
    DOMAIN_WHITELIST,
    DOMAIN_BLACKLIST,
    LIMIT_RPS,
    LIMIT_RPM,
    LIMIT_BURST,
    LOAD_BALANCE,
    DESTINATION,
    NEXT_UPSTREAM_TRIES,
    NEXT_UPSTREAM_TIMEOUT,
    NEXT_UPSTREAM,
    TIMEOUT,
    MIRROR_SERVICE,
    MIRROR_PERCENTAGE,
    *(
        header_annotation(d, a)
        for d in ("request", "response")
        for a in ("add", "update", "remove")
    ),
    TLS_MIN,
    TLS_MAX,
)

# Scopes, as the MSE annotation table names them (section 3 of the reference).
ROUTE, DOMAIN, SERVICE, GATEWAY = "route", "domain", "service", "gateway"
# The destination column of gateway-wide rows.
GATEWAY_ROW = "(gateway)"


@dataclass(frozen=True)
class PolicyRow:
    """One parameter and what it becomes: an annotation, an object field or a Service."""

    destination: str  # the destination's name, or GATEWAY_ROW
    policy: str  # the key under policies (or the destination key, e.g. sni)
    parameter: str  # key path in the parameters, e.g. destinations[0].policies.rate_limit.rps
    target: str  # annotation key, or what else is written (INGRESS_TLS, IP_ACCESS...)
    value: str  # exactly as written
    scope: str  # ROUTE, DOMAIN, SERVICE or GATEWAY

    @property
    def is_annotation(self) -> bool:
        """Whether ``target`` is an Ingress annotation key."""
        return self.target.startswith((NGINX, MSE))


def _ip_rows(
    dest: str, policy: str, key: str, ips: IpAccess | None, allow: str, deny: str, scope: str
) -> list[PolicyRow]:
    if ips is None:
        return []
    out = []
    if ips.allow:
        out.append(PolicyRow(dest, policy, f"{key}.allow", allow, ",".join(ips.allow), scope))
    if ips.deny:
        out.append(PolicyRow(dest, policy, f"{key}.deny", deny, ",".join(ips.deny), scope))
    return out


def _header_rows(
    dest: str, policy: str, key: str, control: HeaderControl | None, direction: str
) -> list[PolicyRow]:
    if control is None:
        return []
    out = []
    for action, entries in (("add", control.add), ("update", control.update)):
        if entries:
            # One "Key Value" per line: MSE's multi-line form, written with YAML "|".
            value = "\n".join(f"{k} {v}" for k, v in entries.items())
            out.append(
                PolicyRow(
                    dest,
                    policy,
                    f"{key}.{action}",
                    header_annotation(direction, action),
                    value,
                    ROUTE,
                )
            )
    if control.remove:
        out.append(
            PolicyRow(
                dest,
                policy,
                f"{key}.remove",
                header_annotation(direction, "remove"),
                ",".join(control.remove),
                ROUTE,
            )
        )
    return out


def service_dns(name: str, namespace: str, port: int) -> str:
    """A Service's cluster DNS name and port, as the destination annotation names it."""
    return f"{name}.{namespace}.svc.cluster.local:{port}"


def mirror_target(ref: str, namespace: str) -> str:
    """``name[:port]`` or ``ns/name[:port]`` with the namespace filled in."""
    return ref if "/" in ref else f"{namespace}/{ref}"


def _destination_key_rows(i: int, d: Destination) -> list[PolicyRow]:
    # Keys of the destination itself that are written as annotations (the seed's and TLS).
    key = f"destinations[{i}]"
    out = []
    if d.backend_protocol == "HTTPS":
        # HTTP is the default, so no annotation is written for it (keeps the seed's Ingress).
        out.append(
            PolicyRow(
                d.name,
                "backend_protocol",
                f"{key}.backend_protocol",
                BACKEND_PROTOCOL,
                "HTTPS",
                SERVICE,
            )
        )
    if d.sni is not None:
        # The name alone is not sent: the gateway sets SNI only when the switch is "on".
        out.append(PolicyRow(d.name, "sni", f"{key}.sni", PROXY_SSL_NAME, d.sni, SERVICE))
        out.append(PolicyRow(d.name, "sni", f"{key}.sni", PROXY_SSL_SERVER_NAME, "on", SERVICE))
    if d.upstream_vhost is not None:
        out.append(
            PolicyRow(
                d.name,
                "upstream_vhost",
                f"{key}.upstream_vhost",
                UPSTREAM_VHOST,
                d.upstream_vhost,
                ROUTE,
            )
        )
    return out


def destination_rows(i: int, d: Destination, namespace: str) -> list[PolicyRow]:
    """The rows of ``destinations[i]``, in the order its annotations are written."""
    out = _destination_key_rows(i, d)
    pol = d.policies
    key = f"destinations[{i}].policies"
    n = d.name
    if pol.upstream_tls is not None and pol.upstream_tls.client_certificate is not None:
        out.append(
            PolicyRow(
                n,
                "upstream_tls",
                f"{key}.upstream_tls.client_certificate",
                PROXY_SSL_SECRET,
                f"{namespace}/{pol.upstream_tls.client_certificate}",
                SERVICE,
            )
        )
    out += _ip_rows(
        n, "source_ips", f"{key}.source_ips", pol.source_ips, WHITELIST, BLACKLIST, ROUTE
    )
    out += _ip_rows(
        n,
        "domain_source_ips",
        f"{key}.domain_source_ips",
        pol.domain_source_ips,
        DOMAIN_WHITELIST,
        DOMAIN_BLACKLIST,
        DOMAIN,
    )
    if (rl := pol.rate_limit) is not None:
        k = f"{key}.rate_limit"
        if rl.rps is not None:
            out.append(PolicyRow(n, "rate_limit", f"{k}.rps", LIMIT_RPS, str(rl.rps), ROUTE))
        if rl.rpm is not None:
            out.append(PolicyRow(n, "rate_limit", f"{k}.rpm", LIMIT_RPM, str(rl.rpm), ROUTE))
        if rl.burst_multiplier is not None:
            out.append(
                PolicyRow(
                    n,
                    "rate_limit",
                    f"{k}.burst_multiplier",
                    LIMIT_BURST,
                    str(rl.burst_multiplier),
                    ROUTE,
                )
            )
    out += _load_balancing_rows(i, d, namespace)
    if (rt := pol.retries) is not None:
        k = f"{key}.retries"
        out.append(PolicyRow(n, "retries", f"{k}.tries", NEXT_UPSTREAM_TRIES, str(rt.tries), ROUTE))
        if rt.timeout_seconds is not None:
            out.append(
                PolicyRow(
                    n,
                    "retries",
                    f"{k}.timeout_seconds",
                    NEXT_UPSTREAM_TIMEOUT,
                    str(rt.timeout_seconds),
                    ROUTE,
                )
            )
        if rt.conditions:
            out.append(
                PolicyRow(
                    n, "retries", f"{k}.conditions", NEXT_UPSTREAM, ",".join(rt.conditions), ROUTE
                )
            )
    if pol.timeout_seconds is not None:
        out.append(
            PolicyRow(
                n,
                "timeout_seconds",
                f"{key}.timeout_seconds",
                TIMEOUT,
                str(pol.timeout_seconds),
                ROUTE,
            )
        )
    if (m := pol.mirror) is not None:
        out.append(
            PolicyRow(
                n,
                "mirror",
                f"{key}.mirror.service",
                MIRROR_SERVICE,
                mirror_target(m.service, namespace),
                ROUTE,
            )
        )
        if m.percentage is not None:
            out.append(
                PolicyRow(
                    n,
                    "mirror",
                    f"{key}.mirror.percentage",
                    MIRROR_PERCENTAGE,
                    str(m.percentage),
                    ROUTE,
                )
            )
    out += _header_rows(
        n, "request_headers", f"{key}.request_headers", pol.request_headers, "request"
    )
    out += _header_rows(
        n, "response_headers", f"{key}.response_headers", pol.response_headers, "response"
    )
    if (t := pol.tls_offload) is not None:
        k = f"{key}.tls_offload"
        out.append(
            PolicyRow(
                n,
                "tls_offload",
                f"{k}.certificate",
                INGRESS_TLS,
                f"hosts [{d.host}], secretName {t.certificate}",
                DOMAIN,
            )
        )
        if t.min_version is not None:
            out.append(
                PolicyRow(n, "tls_offload", f"{k}.min_version", TLS_MIN, t.min_version, DOMAIN)
            )
        if t.max_version is not None:
            out.append(
                PolicyRow(n, "tls_offload", f"{k}.max_version", TLS_MAX, t.max_version, DOMAIN)
            )
    return out


def _load_balancing_rows(i: int, d: Destination, namespace: str) -> list[PolicyRow]:
    lb = d.policies.load_balancing
    if lb is None:
        return []
    key = f"destinations[{i}].policies.load_balancing"
    out = []
    if lb.algorithm is not None:
        out.append(
            PolicyRow(
                d.name, "load_balancing", f"{key}.algorithm", LOAD_BALANCE, lb.algorithm, SERVICE
            )
        )
    if lb.endpoints:
        # The destination's own Service first, then one per endpoint (same port).
        lines = [f"{lb.weight}% {service_dns(d.name, namespace, d.port)}"]
        lines += [f"{e.weight}% {service_dns(e.name, namespace, d.port)}" for e in lb.endpoints]
        out.append(
            PolicyRow(
                d.name, "load_balancing", f"{key}.endpoints", DESTINATION, "\n".join(lines), ROUTE
            )
        )
        for j, e in enumerate(lb.endpoints):
            out.append(
                PolicyRow(
                    d.name,
                    "load_balancing",
                    f"{key}.endpoints[{j}]",
                    f"{ENDPOINT_SERVICE} {namespace}/{e.name}",
                    e.host,
                    SERVICE,
                )
            )
    return out


def gateway_rows(p: Parameters) -> list[PolicyRow]:
    """The gateway-wide rows (spec.global.ipAccessControl)."""
    return _ip_rows(
        GATEWAY_ROW,
        "ip_access_control",
        "gateway.ip_access_control",
        p.gateway.ip_access_control,
        GATEWAY_WHITELIST,
        GATEWAY_BLACKLIST,
        GATEWAY,
    )


def policy_rows(p: Parameters) -> list[PolicyRow]:
    """Every translated parameter: gateway-wide rows first, then each destination's."""
    out = gateway_rows(p)
    for i, d in enumerate(p.destinations):
        out += destination_rows(i, d, p.namespace)
    return out


def ingress_annotations(dests: Iterable[Destination], p: Parameters) -> dict[str, str]:
    """The annotations of the Ingress holding ``dests``, in MANAGED_ANNOTATIONS order.

    The parameters check that the destinations of one Ingress agree on every annotation
    (they are per Ingress), so the first value of each key stands for all.
    """
    found: dict[str, str] = {}
    # The index only names the rows' parameter paths, which annotations do not use.
    index = {id(d): i for i, d in enumerate(p.destinations)}
    for d in dests:
        for row in destination_rows(index.get(id(d), 0), d, p.namespace):
            if row.is_annotation:
                found.setdefault(row.target, row.value)
    return {k: found[k] for k in MANAGED_ANNOTATIONS if k in found}


def ingress_tls(dests: Iterable[Destination]) -> list[dict[str, Any]]:
    """Ingress spec.tls: one entry per certificate, its hosts in first-seen order."""
    by_secret: dict[str, list[str]] = {}
    for d in dests:
        offload = d.policies.tls_offload
        if offload is not None:
            hosts = by_secret.setdefault(offload.certificate, [])
            if d.host not in hosts:
                hosts.append(d.host)
    return [{"hosts": hosts, "secretName": name} for name, hosts in by_secret.items()]


def ip_access_control(p: Parameters) -> dict[str, list[str]] | None:
    """spec.global.ipAccessControl, or None when no gateway-wide list is set."""
    ips = p.gateway.ip_access_control
    if ips is None:
        return None
    out: dict[str, list[str]] = {}
    if ips.allow:
        out["whitelist"] = list(ips.allow)
    if ips.deny:
        out["blacklist"] = list(ips.deny)
    return out or None
