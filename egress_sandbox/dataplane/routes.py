"""Route lookup for one gateway: Ingress host + path -> upstream, as Envoy/Higress would.

Host: exact beats single-label wildcard (``*.example.com``) beats rules without a host; within
the chosen host, Exact beats Prefix on the same path and the longest path wins. Prefix follows
the Kubernetes definition (element-wise: ``/foo`` matches ``/foo`` and ``/foo/bar`` but not
``/foobar``); ImplementationSpecific is treated as Prefix. An Ingress ``defaultBackend`` only
catches requests no rule matched. Conflicts go to the oldest Ingress, as in Higress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress_sandbox.k8s.store import Store
from egress_sandbox.mse.binding import bound_ingresses, service_type

Obj = dict[str, Any]
_PREFIXES = ("nginx.ingress.kubernetes.io/", "mse.ingress.kubernetes.io/")


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


def _ann(obj: Obj | None, key: str) -> str | None:
    anns = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    for prefix in _PREFIXES:  # both prefixes are equivalent for NGINX-compatible keys
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
                    # Sort key: best host, longest path, Exact first, oldest Ingress.
                    out.append(
                        (
                            -rank,
                            -len(rpath.rstrip("/") or "/"),
                            -exact,
                            order,
                            ing,
                            p.get("backend") or {},
                        )
                    )
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


def lookup(store: Store, config_name: str, host: str, path: str) -> Upstream | None:
    """The upstream for a request, or None when no route matches (Envoy answers 404)."""
    ingresses = ordered_ingresses(store, config_name)
    found = _candidates(ingresses, host, path)
    if found:
        ing, backend = found[0][4], found[0][5]
    else:
        defaults = [i for i in ingresses if (i.get("spec") or {}).get("defaultBackend")]
        if not defaults:
            return None
        ing, backend = defaults[0], defaults[0]["spec"]["defaultBackend"]
    return _upstream(store, ing, backend)


def _upstream(store: Store, ing: Obj, backend: Obj) -> Upstream:
    ns = ing["metadata"]["namespace"]
    ing_key = f"{ns}/{ing['metadata']['name']}"
    ref = backend.get("service") or {}
    if not ref.get("name"):
        return Upstream("unavailable", ing_key, reason="resource backends are not supported")
    svc = store.try_get(service_type(store), ns, ref["name"])
    svc_key = f"{ns}/{ref['name']}"
    if svc is None:
        return Upstream("unavailable", ing_key, svc_key, reason="service not found")
    spec = svc.get("spec") or {}
    if spec.get("type") != "ExternalName" or not spec.get("externalName"):
        # There are no pods behind ClusterIP Services in the sandbox: no endpoints.
        return Upstream("unavailable", ing_key, svc_key, reason="no endpoints")
    port_ref = ref.get("port") or {}
    port = port_ref.get("number")
    if port is None and port_ref.get("name"):
        port = next(
            (p.get("port") for p in spec.get("ports") or [] if p.get("name") == port_ref["name"]),
            None,
        )
    if port is None:
        return Upstream("unavailable", ing_key, svc_key, reason="backend port not found")
    # Documented with Service scope; the procedure puts it on the Ingress: accept both.
    protocol = (_ann(ing, "backend-protocol") or _ann(svc, "backend-protocol") or "HTTP").upper()
    tls = protocol in ("HTTPS", "GRPCS")
    external = str(spec["externalName"]).rstrip(".").lower()
    sni_name = _ann(ing, "proxy-ssl-name") or _ann(svc, "proxy-ssl-name")
    sni_on = (_ann(ing, "proxy-ssl-server-name") or _ann(svc, "proxy-ssl-server-name")) == "on"
    return Upstream(
        "external",
        ing_key,
        svc_key,
        host=external,
        port=int(port),
        tls=tls,
        # UNCONFIRMED for MSE: SNI defaults to the ExternalName here (OSS Higress sends none
        # unless proxy-ssl-server-name is "on" and proxy-ssl-name is set).
        sni=sni_name if (sni_on and sni_name) else external,
        host_header=_ann(ing, "upstream-vhost"),
    )
