"""The gateway's layer-7 egress policies as parameters (schema v1): pydantic models only.

Each model maps to MSE Ingress annotations or MseIngressConfig fields (the translation lives
in :mod:`egress_lib.policy_annotations`); the keys, formats and scopes are those of
https://www.alibabacloud.com/help/en/mse/user-guide/annotations-supported-by-mse-ingress-gateways
(``../shared/reference/mse-ingress.md`` section 3). Scopes:

- route (the destination's Ingress): ``source_ips``, ``rate_limit``, ``retries``,
  ``timeout_seconds``, ``mirror``, ``request_headers``, ``response_headers``,
  ``load_balancing`` (the ``destination`` annotation and ``load-balance``);
- domain (every route of the destination's host): ``domain_source_ips``, ``tls_offload``;
- service (the destination's backend): ``upstream_tls``;
- gateway-wide (``gateway.ip_access_control``): ``spec.global.ipAccessControl``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from egress_lib.validators import DnsLabel, DnsSubdomain, Host, fail


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        reason = "has host bits set" if "host bits" in str(e) else "is not an IP or CIDR"
        raise fail(
            f"{value!r} {reason}", "an IPv4 address or CIDR such as '10.0.0.0/8' or '192.0.2.7'"
        ) from None
    if net.version != 4:
        raise fail(f"{value!r} is IPv6", "an IPv4 address or CIDR (the VPC is IPv4)")
    return value


Cidr = Annotated[StrictStr, AfterValidator(_cidr)]

# RFC 7230 token: what a header name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise fail(f"{value!r} is not an HTTP header name", "letters, digits and '-' only")
    if value.lower() in ("host", "content-length", "transfer-encoding", "connection"):
        raise fail(
            f"{value!r} is managed by the gateway",
            "another header (use upstream_vhost for the Host header)",
        )
    return value


def _header_value(value: str) -> str:
    if "\n" in value or "\r" in value or not value.strip():
        raise fail(f"{value!r} is not a header value", "one non-empty line of text")
    return value


HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]
HeaderValue = Annotated[StrictStr, AfterValidator(_header_value)]

_SERVICE_REF = re.compile(
    r"^(?:(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/)?(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


def _service_ref(value: str) -> str:
    m = _SERVICE_REF.match(value)
    if not m or (m.group("port") and not 1 <= int(m.group("port")) <= 65535):
        raise fail(
            f"{value!r} is not a Service reference",
            "'namespace/name:port', 'name:port' or 'name' (namespace: the destinations', "
            "port: the Service's first)",
        )
    return value


ServiceRef = Annotated[StrictStr, AfterValidator(_service_ref)]


def _echo_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise fail(f"{value!r} is not an http(s) URL", "a URL such as 'https://ifconfig.me/ip'")
    return value


EchoUrl = Annotated[StrictStr, AfterValidator(_echo_url)]


class IpAccess(_Model):
    """Source addresses allowed or denied; a denied source gets 403 from the gateway."""

    allow: list[Cidr] = Field(
        default_factory=list, description="only these sources may pass; empty: any source"
    )
    deny: list[Cidr] = Field(default_factory=list, description="these sources are refused")


class RateLimit(_Model):
    """Local throttling per gateway replica; over the limit the gateway answers 429."""

    rps: StrictInt | None = Field(
        default=None, ge=1, description="requests per second per gateway replica (route-limit-rps)"
    )
    rpm: StrictInt | None = Field(
        default=None,
        ge=1,
        description="requests per minute per gateway replica (route-limit-rpm); give rps or rpm",
    )
    burst_multiplier: StrictInt | None = Field(
        default=None,
        ge=1,
        le=100,
        description="burst = limit x this (route-limit-burst-multiplier); null: MSE's default 5",
    )


class Endpoint(_Model):
    """One more external endpoint of a destination, e.g. a backup provider."""

    name: DnsLabel = Field(description="name of its ExternalName Service")
    host: Host = Field(description="its external domain")
    weight: StrictInt = Field(ge=0, le=100, description="share of requests, in percent")


class LoadBalancing(_Model):
    """Several endpoints for one destination, and how the gateway picks among them."""

    algorithm: Literal["round_robin", "least_conn", "random"] | None = Field(
        default=None, description="load-balance annotation; null: MSE's default round_robin"
    )
    weight: StrictInt = Field(
        default=100,
        ge=0,
        le=100,
        description="share of the destination's own host, in percent; with endpoints' weights "
        "it makes 100",
    )
    endpoints: list[Endpoint] = Field(
        default_factory=list,
        max_length=9,
        description="the other endpoints (mse.ingress.kubernetes.io/destination)",
    )


RetryCondition = Literal[
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_403",
    "http_404",
    "http_429",
    "non_idempotent",
    "off",
]


class Retries(_Model):
    """Retries towards the upstream (proxy-next-upstream*)."""

    # Higress turns these into an Istio retry policy: tries are retries after the first
    # attempt, and the timeout applies to each attempt (pkg/ingress/kube/annotations/retry.go).
    tries: StrictInt = Field(
        ge=1,
        le=10,
        description="retries after the first attempt, within the Service the request was "
        "routed to (proxy-next-upstream-tries); MSE's default 3",
    )
    timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="timeout of each attempt (proxy-next-upstream-timeout)",
    )
    # Not "on": YAML 1.1 reads a bare on as true.
    conditions: list[RetryCondition] = Field(
        default_factory=list,
        description="conditions that retry (proxy-next-upstream); empty: MSE's default",
    )


class Mirror(_Model):
    """Copies of the requests to an in-cluster Service; the client never waits on it."""

    service: ServiceRef = Field(
        description="the mirror target: 'namespace/name:port' (mirror-target-service)"
    )
    percentage: StrictInt | None = Field(
        default=None, ge=0, le=100, description="share mirrored (mirror-percentage); null: 100"
    )


class HeaderControl(_Model):
    """Headers added (appended to), updated (set) or removed on the way through."""

    add: dict[HeaderName, HeaderValue] = Field(default_factory=dict, description="appended")
    update: dict[HeaderName, HeaderValue] = Field(default_factory=dict, description="set")
    remove: list[HeaderName] = Field(default_factory=list, description="removed")


class UpstreamTls(_Model):
    """TLS from the gateway to the destination beyond backend_protocol HTTPS and sni."""

    # Not "..._secret": keys naming secrets are refused as credentials; this is only a name.
    client_certificate: DnsSubdomain | None = Field(
        default=None,
        description="Secret (kubernetes.io/tls, in the destinations' namespace) whose "
        "certificate the gateway presents to the destination: mTLS (proxy-ssl-secret)",
    )


TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class TlsOffload(_Model):
    """TLS between pods and the gateway: pods call https://<host> on the gateway address."""

    certificate: DnsSubdomain = Field(
        description="name of the Secret (kubernetes.io/tls, in the destinations' namespace) "
        "with the certificate for the host (Ingress spec.tls)"
    )
    min_version: TlsVersion | None = Field(
        default=None, description="tls-min-protocol-version; null: MSE's default TLSv1.0"
    )
    max_version: TlsVersion | None = Field(
        default=None, description="tls-max-protocol-version; null: MSE's default TLSv1.3"
    )


class Policies(_Model):
    """A destination's layer-7 policies; every key is optional (null: not set)."""

    source_ips: IpAccess | None = Field(
        default=None,
        description="route-level allow and deny lists (whitelist-source-range, "
        "blacklist-source-range); they win over domain_source_ips",
    )
    domain_source_ips: IpAccess | None = Field(
        default=None,
        description="allow and deny lists for every route of the host "
        "(domain-whitelist-source-range, domain-blacklist-source-range)",
    )
    rate_limit: RateLimit | None = Field(default=None, description="throttling per replica")
    load_balancing: LoadBalancing | None = Field(
        default=None, description="more endpoints, their weights and the algorithm"
    )
    retries: Retries | None = Field(default=None, description="retries towards the upstream")
    timeout_seconds: StrictInt | None = Field(
        default=None, ge=1, le=3600, description="request timeout (mse timeout); null: none"
    )
    upstream_tls: UpstreamTls | None = Field(
        default=None, description="mTLS to the destination (HTTPS backends)"
    )
    tls_offload: TlsOffload | None = Field(
        default=None, description="pods talk HTTPS to the gateway (Ingress spec.tls)"
    )
    mirror: Mirror | None = Field(default=None, description="traffic mirroring")
    request_headers: HeaderControl | None = Field(
        default=None, description="request header control (request-header-control-*)"
    )
    response_headers: HeaderControl | None = Field(
        default=None, description="response header control (response-header-control-*)"
    )

    def declared(self) -> list[str]:
        """The names of the policies that are set, in schema order."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]
