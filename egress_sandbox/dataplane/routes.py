"""Route lookup for one gateway: Ingress host + path -> upstream, as Envoy/Higress would.

Host: exact beats single-label wildcard (``*.example.com``) beats rules without a host; within
the chosen host, Exact beats Prefix on the same path and the longest path wins. Prefix follows
the Kubernetes definition (element-wise: ``/foo`` matches ``/foo`` and ``/foo/bar`` but not
``/foobar``); ImplementationSpecific is treated as Prefix. An Ingress ``defaultBackend`` only
catches requests no rule matched. Conflicts go to the oldest Ingress, as in Higress.

Upstream TLS follows OSS Higress ``upstreamtls.go``: SNI only when ``proxy-ssl-server-name`` is
``on`` and ``proxy-ssl-name`` is set (no SNI otherwise, not even the ExternalName: whether MSE
differs is UNCONFIRMED), ``proxy-ssl-secret`` (``ns/name`` or ``name``, the Ingress's namespace
by default) makes it mutual TLS with that Secret's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress_sandbox.k8s.store import Store
from egress_sandbox.mse.binding import bound_ingresses, service_type

Obj = dict[str, Any]
NGINX, MSE = "nginx.ingress.kubernetes.io/", "mse.ingress.kubernetes.io/"
_PREFIXES = (NGINX, MSE)


@dataclass(frozen=True)
class Upstream:
    kind: str  # "external" (ExternalName: reachable through the NAT) | "unavailable"
    ingress: str  # namespace/name of the Ingress that matched
    service: str = ""
    host: str = ""  # ExternalName target
    port: int = 0
    tls: bool = False
    sni: str | None = None
    host_header: str | None = None  # upstream-vhost rewrite
    reason: str = ""
    client_secret: tuple[str, str] | None = None  # (namespace, name) of proxy-ssl-secret
    load_balance: str = "round_robin"


@dataclass(frozen=True)
class Match:
    """The route a request matched: which Ingress, rule host and path, and its backend."""

    ingress: Obj
    rule_host: str  # the rule's host as written ("" for a rule without host)
    path: str
    path_type: str
    backend: Obj

    @property
    def ingress_key(self) -> str:
        return f"{self.ingress['metadata']['namespace']}/{self.ingress['metadata']['name']}"

    @property
    def route_key(self) -> tuple[str, str, str, str]:
        """What identifies the route (one Envoy route per Ingress rule path)."""
        return (self.ingress_key, self.rule_host, self.path_type, self.path)


def ann(obj: Obj | None, key: str, *, mse_only: bool = False) -> str | None:
    """An annotation value; NGINX-compatible keys are read under both prefixes, MSE-exclusive
    ones (``mse_only``) only under ``mse.ingress.kubernetes.io/`` (reference section 3)."""
    anns = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    for prefix in (MSE,) if mse_only else _PREFIXES:
        if prefix + key in anns:
            return str(anns[prefix + key])
    return None


def host_rank(pattern: str | None, host: str) -> int:
    """3 exact, 2 wildcard, 1 no host in the rule, 0 no match."""
    if not pattern:
        return 1
    pattern = pattern.lower()
    if pattern.startswith("*."):
        suffix = pattern[1:]
        label = host[: -len(suffix)] if host.endswith(suffix) else ""
        return 2 if label and "." not in label else 0
    return 3 if pattern == host else 0


def path_match(path_type: str, rule_path: str, path: str) -> bool:
    if path_type == "Exact":
        return path == rule_path
    prefix = rule_path.rstrip("/")
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix + "/")


def _candidates(ingresses: list[Obj], host: str, path: str) -> list[tuple[Any, ...]]:
    out = []
    for order, ing in enumerate(ingresses):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            rank = host_rank(rule.get("host"), host)
            if not rank:
                continue
            for p in ((rule.get("http") or {}).get("paths")) or []:
                ptype = p.get("pathType") or "ImplementationSpecific"
                rpath = p.get("path") or "/"
                if path_match(ptype, rpath, path):
                    exact = 1 if ptype == "Exact" else 0
                    found = Match(
                        ing, str(rule.get("host") or ""), rpath, ptype, p.get("backend") or {}
                    )
                    # Sort key: best host, longest path, Exact first, oldest Ingress.
                    out.append((-rank, -len(rpath.rstrip("/") or "/"), -exact, order, found))
    return sorted(out, key=lambda c: c[:4])


def ordered_ingresses(store: Store, config_name: str) -> list[Obj]:
    """The Ingresses a gateway serves, oldest first: on a conflict the oldest one wins."""
    return sorted(
        bound_ingresses(store, config_name),
        key=lambda i: (
            i["metadata"].get("creationTimestamp", ""),
            i["metadata"]["namespace"],
            i["metadata"]["name"],
        ),
    )


def match(ingresses: list[Obj], host: str, path: str) -> Match | None:
    """The route for ``host`` + ``path`` among ``ingresses`` (oldest first), or None (404)."""
    found = _candidates(ingresses, host, path)
    if found:
        best: Match = found[0][4]
        return best
    defaults = [i for i in ingresses if (i.get("spec") or {}).get("defaultBackend")]
    if not defaults:
        return None
    return Match(defaults[0], "", "", "default", defaults[0]["spec"]["defaultBackend"])


def lookup(store: Store, config_name: str, host: str, path: str) -> Upstream | None:
    """The upstream for a request, or None when no route matches (Envoy answers 404)."""
    found = match(ordered_ingresses(store, config_name), host, path)
    return None if found is None else backend_upstream(store, found.ingress, found.backend)


def backend_upstream(store: Store, ing: Obj, backend: Obj) -> Upstream:
    """The upstream of an Ingress backend (``service`` with a port number or name)."""
    ref = backend.get("service") or {}
    if not ref.get("name"):
        ns = ing["metadata"]["namespace"]
        key = f"{ns}/{ing['metadata']['name']}"
        return Upstream("unavailable", key, reason="resource backends are not supported")
    port_ref = ref.get("port") or {}
    return service_upstream(
        store,
        ing,
        ing["metadata"]["namespace"],
        ref["name"],
        port_ref.get("number"),
        port_ref.get("name"),
    )


def service_upstream(
    store: Store,
    ing: Obj,
    namespace: str,
    name: str,
    port: int | None,
    port_name: str | None = None,
    *,
    first_port: bool = False,
) -> Upstream:
    """The upstream of Service ``namespace/name`` on ``port`` (or the named port; with
    ``first_port``, a missing port means the Service's first one)."""
    ing_key = f"{ing['metadata']['namespace']}/{ing['metadata']['name']}"
    svc = store.try_get(service_type(store), namespace, name)
    svc_key = f"{namespace}/{name}"
    if svc is None:
        return Upstream("unavailable", ing_key, svc_key, reason="service not found")
    spec = svc.get("spec") or {}
    if spec.get("type") != "ExternalName" or not spec.get("externalName"):
        # Only ExternalName Services lead out of the cluster; the gateway does not route to
        # in-cluster pods in the sandbox.
        return Upstream("unavailable", ing_key, svc_key, reason="no endpoints")
    ports = spec.get("ports") or []
    if port is None and port_name:
        port = next((p.get("port") for p in ports if p.get("name") == port_name), None)
    if port is None and first_port and ports:
        port = ports[0].get("port")
    if port is None:
        return Upstream("unavailable", ing_key, svc_key, reason="backend port not found")

    # Documented with Service scope; the procedure puts them on the Ingress: accept both.
    def either(key: str) -> str | None:
        return ann(ing, key) or ann(svc, key)

    protocol = (either("backend-protocol") or "HTTP").strip().upper()
    # Higress: anything but HTTP|HTTP2|HTTPS|GRPC|GRPCS silently falls back to HTTP.
    tls = protocol in ("HTTPS", "GRPCS")
    external = str(spec["externalName"]).rstrip(".").lower()
    sni_name = (either("proxy-ssl-name") or "").strip()
    sni_on = (either("proxy-ssl-server-name") or "").strip() == "on"
    secret = (either("proxy-ssl-secret") or "").strip()
    client_secret: tuple[str, str] | None = None
    if secret:
        ns, _, sname = secret.rpartition("/")
        client_secret = (ns or ing["metadata"]["namespace"], sname)
    lb = (either("load-balance") or "round_robin").strip().lower()
    return Upstream(
        "external",
        ing_key,
        svc_key,
        host=external,
        port=int(port),
        tls=tls,
        sni=sni_name if (sni_on and sni_name) else None,
        host_header=ann(ing, "upstream-vhost"),
        client_secret=client_secret if tls else None,
        # ewma falls back to round_robin (reference section 3); unknown values too.
        load_balance=lb if lb in ("round_robin", "least_conn", "random") else "round_robin",
    )
