"""What the control plane has configured for one request: the gateway's view and the route's.

:class:`GatewayView` is read per request from the cloud records and the MseIngressConfig
(gateway-wide IP lists, replicas, the exit through SNAT); :func:`decide` matches the route
and gathers its policies, its domain's IP lists and its weighted Services (the backend, or
the lines of ``mse.ingress.kubernetes.io/destination``, which replace it).
"""

from __future__ import annotations

from dataclasses import dataclass

from egress_sandbox.dataplane.ipacl import IpRule
from egress_sandbox.dataplane.policy import PolicyCache, RoutePolicy, domain_owner_source
from egress_sandbox.dataplane.routes import (
    Match,
    Upstream,
    backend_upstream,
    match,
    ordered_ingresses,
    service_upstream,
)
from egress_sandbox.k8s.store import Store


@dataclass(frozen=True)
class GatewayView:
    config_name: str
    egress_ip: str | None  # None: some vSwitch of the gateway has no way out
    source: IpRule | None  # spec.global.ipAccessControl


@dataclass(frozen=True)
class RouteDecision:
    match: Match
    policy: RoutePolicy
    domain_source: IpRule | None
    clusters: tuple[tuple[int, Upstream], ...]  # (weight, Service's upstream)


def decide(
    store: Store, cache: PolicyCache, config_name: str, host: str, path: str
) -> RouteDecision | None:
    """The route for ``host`` + ``path`` with its policies, or None (no route: 404)."""
    ingresses = ordered_ingresses(store, config_name)
    found = match(ingresses, host, path)
    if found is None:
        return None
    policy = cache.route(found.ingress)
    if policy.destinations is not None:
        clusters = tuple(
            (
                d.weight,
                service_upstream(store, found.ingress, d.namespace, d.name, d.port, first_port=True)
                if d.namespace
                else Upstream("unavailable", found.ingress_key, d.name, reason="unknown registry"),
            )
            for d in policy.destinations
        )
    else:
        clusters = ((100, backend_upstream(store, found.ingress, found.backend)),)
    return RouteDecision(found, policy, domain_owner_source(ingresses, found.rule_host), clusters)


def pick(clusters: tuple[tuple[int, Upstream], ...], draw: float) -> Upstream:
    """The weighted pick of one Service per request (Envoy's weighted clusters); ``draw`` is
    uniform in [0, 1). All weights 0: the first (nothing else could be picked)."""
    total = sum(max(w, 0) for w, _ in clusters)
    if total <= 0:
        return clusters[0][1]
    point = draw * total
    for weight, up in clusters:
        if point < max(weight, 0):
            return up
        point -= max(weight, 0)
    return clusters[-1][1]
