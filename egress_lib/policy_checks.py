"""Checks of the policy parameters that span several keys, and the notes they earn.

A single field's format is checked by its type (:mod:`egress_lib.policies`); here are the
rules that need more than one key: a rate limit of rps or rpm, weights making 100, names
used once, TLS keys that need HTTPS, and the scopes: annotations are per Ingress, so the
destinations of one Ingress must agree on route-level policies, and domain-level policies
apply to every route of a host, so the destinations of one host must agree on those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from egress_lib.errors import Problem
from egress_lib.policies import HeaderControl, Policies

if TYPE_CHECKING:
    from egress_lib.parameters import Destination, Parameters

# Policies written as the host's annotations (domain scope) or spec.tls; all others are
# annotations of the Ingress (route or service scope).
DOMAIN_POLICIES = ("domain_source_ips", "tls_offload")
ROUTE_POLICIES = tuple(f for f in Policies.model_fields if f not in DOMAIN_POLICIES)
_TLS_ORDER = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def _dump(value: object) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", exclude_defaults=True) if callable(dump) else value


def policy_problems(p: Parameters) -> list[Problem]:
    """Every cross-key problem of the policies and of verify.echo_url."""
    problems: list[Problem] = []
    for i, d in enumerate(p.destinations):
        problems += _destination_problems(i, d)
    problems += _endpoint_names(p)
    problems += _ingress_scope(p)
    problems += _host_scope(p)
    problems += _echo_url(p)
    return problems


def _destination_problems(i: int, d: Destination) -> list[Problem]:
    pol = d.policies
    key = f"destinations[{i}].policies"
    out: list[Problem] = []
    if (rl := pol.rate_limit) is not None:
        if rl.rps is not None and rl.rpm is not None:
            out.append(
                Problem(
                    f"{key}.rate_limit.rpm",
                    rl.rpm,
                    "rps or rpm, not both (the gateway applies one limit per route)",
                    f"rpm {rl.rpm} is set with rps {rl.rps}",
                )
            )
        elif rl.rps is None and rl.rpm is None:
            out.append(
                Problem(
                    f"{key}.rate_limit",
                    _dump(rl),
                    "rps (requests per second) or rpm (requests per minute)",
                    "no limit is given",
                )
            )
    if (lb := pol.load_balancing) is not None:
        total = lb.weight + sum(e.weight for e in lb.endpoints)
        if total != 100:
            terms = " + ".join(str(w) for w in [lb.weight, *(e.weight for e in lb.endpoints)])
            out.append(
                Problem(
                    f"{key}.load_balancing.weight",
                    lb.weight,
                    "weights that make 100 percent: weight (the destination's own share) plus "
                    "every endpoints[].weight",
                    f"the weights make {terms} = {total}",
                )
            )
    if pol.upstream_tls is not None and d.backend_protocol != "HTTPS":
        out.append(
            Problem(
                f"{key}.upstream_tls",
                _dump(pol.upstream_tls),
                "backend_protocol HTTPS (a client certificate is part of the TLS handshake), "
                "or upstream_tls null",
                f"upstream_tls is set with backend_protocol {d.backend_protocol}",
            )
        )
    t = pol.tls_offload
    if (
        t is not None
        and t.min_version
        and t.max_version
        and _TLS_ORDER.index(t.max_version) < _TLS_ORDER.index(t.min_version)
    ):
        out.append(
            Problem(
                f"{key}.tls_offload.max_version",
                t.max_version,
                f"a version no lower than min_version {t.min_version!r}",
                f"{t.max_version!r} is below min_version {t.min_version!r}",
            )
        )
    if (rt := pol.retries) is not None:
        out += _retry_conditions(f"{key}.retries.conditions", list(rt.conditions))
    for name in ("request_headers", "response_headers"):
        control = getattr(pol, name)
        if control is not None:
            out += _duplicate_headers(f"{key}.{name}", control)
    return out


def _retry_conditions(key: str, conditions: list[str]) -> list[Problem]:
    out: list[Problem] = []
    if "off" in conditions and len(conditions) > 1:
        out.append(
            Problem(
                key,
                conditions,
                "['off'] alone (no retries), or conditions without 'off'",
                "'off' is given with other conditions",
            )
        )
    seen: set[str] = set()
    for j, c in enumerate(conditions):
        if c in seen:
            out.append(Problem(f"{key}[{j}]", c, "each condition once", f"{c!r} is listed twice"))
        seen.add(c)
    return out


def _duplicate_headers(key: str, control: HeaderControl) -> list[Problem]:
    # Header names are case-insensitive, so "X-A" and "x-a" name one header; and one header
    # in two actions (add and remove, say) leaves the outcome to the gateway's order.
    out: list[Problem] = []
    first: dict[str, str] = {}
    named: list[tuple[str, str]] = [(f"add.{h}", h) for h in control.add]
    named += [(f"update.{h}", h) for h in control.update]
    named += [(f"remove[{j}]", h) for j, h in enumerate(control.remove)]
    for where, header in named:
        lower = header.lower()
        if lower in first:
            out.append(
                Problem(
                    f"{key}.{where}",
                    header,
                    "each header name once across add, update and remove (names are "
                    "case-insensitive)",
                    f"{header!r} is already named as {key}.{first[lower]}",
                )
            )
        else:
            first[lower] = where
    return out


def _endpoint_names(p: Parameters) -> list[Problem]:
    """An endpoint becomes an ExternalName Service: its name must be free."""
    names = {d.name: f"destinations[{i}].name" for i, d in enumerate(p.destinations)}
    out: list[Problem] = []
    for i, d in enumerate(p.destinations):
        lb = d.policies.load_balancing
        for j, e in enumerate(lb.endpoints if lb else []):
            key = f"destinations[{i}].policies.load_balancing.endpoints[{j}].name"
            if e.name in names:
                out.append(
                    Problem(
                        key,
                        e.name,
                        "a Service name used by no destination and no other endpoint",
                        f"{e.name!r} is already used by {names[e.name]}",
                    )
                )
            else:
                names[e.name] = key
    return out


def _ingress_scope(p: Parameters) -> list[Problem]:
    """Annotations are per Ingress: its destinations share every route-level policy."""
    out: list[Problem] = []
    index = {id(d): i for i, d in enumerate(p.destinations)}
    for ingress, dests in p.ingress_groups().items():
        if len(dests) < 2:
            continue
        first = dests[0]
        i0 = index[id(first)]
        for d in dests[1:]:
            i = index[id(d)]
            for name in ROUTE_POLICIES:
                mine, theirs = getattr(d.policies, name), getattr(first.policies, name)
                if mine != theirs:
                    out.append(
                        Problem(
                            f"destinations[{i}].policies.{name}",
                            _dump(mine),
                            f"{_dump(theirs)!r} like destinations[{i0}], which shares Ingress "
                            f"{ingress!r} (annotations are per Ingress; give this destination "
                            "its own ingress_name to differ)",
                            f"{name} differs within Ingress {ingress!r}",
                        )
                    )
            # The domain annotations sit on the Ingress too, so they reach each of its hosts.
            out += _same_domain_annotations(ingress, i0, first, i, d)
        for d in dests:
            lb = d.policies.load_balancing
            if lb is not None and lb.endpoints:
                out.append(
                    Problem(
                        f"destinations[{index[id(d)]}].policies.load_balancing.endpoints",
                        [e.name for e in lb.endpoints],
                        "a destination with its own Ingress (ingress_name used by no other "
                        "destination): the destination annotation replaces the backend of "
                        "every route of the Ingress",
                        f"Ingress {ingress!r} holds {len(dests)} destinations",
                    )
                )
    return out


def _same_domain_annotations(
    ingress: str, i0: int, first: Destination, i: int, d: Destination
) -> list[Problem]:
    out: list[Problem] = []
    why = f"which shares Ingress {ingress!r} (its domain annotations reach every host in it)"
    if d.policies.domain_source_ips != first.policies.domain_source_ips and d.host != first.host:
        out.append(
            Problem(
                f"destinations[{i}].policies.domain_source_ips",
                _dump(d.policies.domain_source_ips),
                f"{_dump(first.policies.domain_source_ips)!r} like destinations[{i0}], {why}",
                "domain_source_ips differs within one Ingress",
            )
        )
    a, b = d.policies.tls_offload, first.policies.tls_offload
    if (
        a is not None
        and b is not None
        and d.host != first.host
        and (a.min_version, a.max_version) != (b.min_version, b.max_version)
    ):
        out.append(
            Problem(
                f"destinations[{i}].policies.tls_offload",
                _dump(a),
                f"min_version {b.min_version!r} and max_version {b.max_version!r} like "
                f"destinations[{i0}], {why}",
                "the TLS version range differs within one Ingress",
            )
        )
    return out


def _host_scope(p: Parameters) -> list[Problem]:
    """Domain-level policies apply to every route of the host, across Ingresses."""
    out: list[Problem] = []
    first: dict[str, int] = {}
    for i, d in enumerate(p.destinations):
        j = first.setdefault(d.host, i)
        if j == i:
            continue
        other = p.destinations[j]
        for name in DOMAIN_POLICIES:
            mine, theirs = getattr(d.policies, name), getattr(other.policies, name)
            if mine != theirs:
                out.append(
                    Problem(
                        f"destinations[{i}].policies.{name}",
                        _dump(mine),
                        f"{_dump(theirs)!r} like destinations[{j}], which has the same host "
                        f"{d.host!r} (domain-level policies apply to every route of the host)",
                        f"{name} differs for host {d.host!r}",
                    )
                )
    return out


def path_matches(rule_path: str, path_type: str, path: str) -> bool:
    """Whether an Ingress rule (path, pathType) matches a request path."""
    if path_type == "Exact":
        return path == rule_path
    # Prefix matches whole path elements. ImplementationSpecific is taken as Prefix, as
    # Higress does without use-regex [UNCONFIRMED for MSE].
    if rule_path == "/":
        return True
    base = rule_path.rstrip("/")
    return path == base or path.startswith(base + "/")


def split_url(url: str) -> tuple[str, str, str]:
    """``scheme://host[:port]/path?query`` -> (scheme, host, path); path at least "/"."""
    scheme, _, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    path = "/" + tail.split("?", 1)[0].split("#", 1)[0] if slash else "/"
    host = authority.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return scheme, host, path


def _echo_url(p: Parameters) -> list[Problem]:
    url = p.verify.echo_url
    if url is None:
        return []
    _, host, path = split_url(url)
    # Destination hosts are concrete names (validators refuse wildcards): equality is the match.
    same_host = [(i, d) for i, d in enumerate(p.destinations) if d.host == host]
    if not same_host:
        hosts = ", ".join(sorted({d.host for d in p.destinations}))
        return [
            Problem(
                "verify.echo_url",
                url,
                f"a URL on the host of a destination ({hosts}): verify calls it through the "
                "gateway",
                f"host {host!r} is no destination's",
            )
        ]
    if any(path_matches(d.path, d.path_type, path) for _, d in same_host):
        return []
    rules = ", ".join(f"destinations[{i}] {d.path_type} {d.path}" for i, d in same_host)
    return [
        Problem(
            "verify.echo_url",
            url,
            f"a path that a rule of host {host!r} matches ({rules})",
            f"path {path!r} matches no rule of host {host!r}",
        )
    ]


def policy_notes(p: Parameters) -> list[str]:
    """Valid but unusual settings, worth a line to the operator."""
    out: list[str] = []
    replicas = p.gateway.replicas
    for i, d in enumerate(p.destinations):
        if d.backend_protocol == "HTTPS" and d.sni is None:
            out.append(
                f"destinations[{i}].sni is null with backend_protocol HTTPS: the gateway "
                f"sends no TLS server name, and many providers require SNI (set sni to the "
                f"provider's host, e.g. {d.host!r})"
            )
        rl = d.policies.rate_limit
        if rl is not None and replicas > 1:
            value, unit = (rl.rps, "second") if rl.rps is not None else (rl.rpm, "minute")
            if value is not None:
                out.append(
                    f"destinations[{i}].policies.rate_limit is per gateway replica: with "
                    f"gateway.replicas {replicas} the effective limit is {replicas} x {value} = "
                    f"{replicas * value} requests per {unit}"
                )
    return out
