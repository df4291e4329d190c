"""The Kubernetes kinds the runbook touches, and how to call their typed API methods.

Calls use ``_preload_content=False`` and parse JSON themselves so objects stay plain dicts
exactly as the server sent them (no model round trip that drops unknown fields).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_lib.manifests import MSE_GROUP, MSE_PLURAL, MSE_VERSION

if TYPE_CHECKING:
    from egress_lib.clients import Session

# (connect, read) seconds for every non-watch call, so a dead API server fails fast.
REQUEST_TIMEOUT = (5, 30)


@dataclass(frozen=True)
class Kind:
    """How to reach one kind: the Session attribute and the method-name suffix."""

    kind: str
    api: str
    suffix: str
    namespaced: bool
    custom: tuple[str, str, str] | None = None  # (group, version, plural) for CRs

    def _api(self, session: Session) -> Any:
        return getattr(session, self.api)

    def _scope(self, namespace: str | None) -> tuple[Any, ...]:
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            return (namespace,)
        return ()

    def get(self, session: Session, name: str, namespace: str | None) -> dict[str, Any]:
        api = self._api(session)
        if self.custom:
            g, v, p = self.custom
            if self.namespaced:
                return _json(
                    api.get_namespaced_custom_object(
                        g,
                        v,
                        namespace,
                        p,
                        name,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
            return _json(
                api.get_cluster_custom_object(
                    g, v, p, name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        fn = getattr(api, f"read_{self.suffix}")
        return _json(
            fn(
                name,
                *self._scope(namespace),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    def list_call(
        self, session: Session, namespace: str | None
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The list function and its positional arguments (for listing and watching)."""
        api = self._api(session)
        if self.custom:
            g, v, p = self.custom
            if self.namespaced:
                return api.list_namespaced_custom_object, (g, v, namespace, p)
            return api.list_cluster_custom_object, (g, v, p)
        return getattr(api, f"list_{self.suffix}"), self._scope(namespace)

    def create(self, session: Session, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        api = self._api(session)
        namespace = obj["metadata"].get("namespace")
        extra = _extra(dry_run)
        if self.custom:
            g, v, p = self.custom
            if self.namespaced:
                return _json(api.create_namespaced_custom_object(g, v, namespace, p, obj, **extra))
            return _json(api.create_cluster_custom_object(g, v, p, obj, **extra))
        fn = getattr(api, f"create_{self.suffix}")
        return _json(fn(*self._scope(namespace), obj, **extra))

    def replace(self, session: Session, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        api = self._api(session)
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace")
        extra = _extra(dry_run)
        if self.custom:
            g, v, p = self.custom
            if self.namespaced:
                return _json(
                    api.replace_namespaced_custom_object(g, v, namespace, p, name, obj, **extra)
                )
            return _json(api.replace_cluster_custom_object(g, v, p, name, obj, **extra))
        fn = getattr(api, f"replace_{self.suffix}")
        return _json(fn(name, *self._scope(namespace), obj, **extra))

    def delete(
        self,
        session: Session,
        name: str,
        namespace: str | None,
        preconditions: dict[str, str] | None = None,
    ) -> None:
        api = self._api(session)
        extra = _extra(dry_run=False)
        if preconditions:
            # A uid precondition makes the server refuse (409) to delete a different object
            # that has taken the name since the plan.
            extra["body"] = {"preconditions": dict(preconditions)}
        if self.custom:
            g, v, p = self.custom
            if self.namespaced:
                api.delete_namespaced_custom_object(g, v, namespace, p, name, **extra)
            else:
                api.delete_cluster_custom_object(g, v, p, name, **extra)
            return
        fn = getattr(api, f"delete_{self.suffix}")
        fn(name, *self._scope(namespace), **extra)


def _extra(dry_run: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}
    if dry_run:
        extra["dry_run"] = "All"
    return extra


def _json(resp: Any) -> dict[str, Any]:
    data = getattr(resp, "data", resp)
    if isinstance(data, dict):
        return data
    parsed = json.loads(data) if data else {}
    return parsed if isinstance(parsed, dict) else {}


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("Service", "core", "namespaced_service", True),
        Kind("Pod", "core", "namespaced_pod", True),
        Kind("Namespace", "core", "namespace", False),
        Kind("ConfigMap", "core", "namespaced_config_map", True),
        Kind("Ingress", "networking", "namespaced_ingress", True),
        Kind("IngressClass", "networking", "ingress_class", False),
        Kind("Deployment", "apps", "namespaced_deployment", True),
        Kind("CustomResourceDefinition", "apiext", "custom_resource_definition", False),
        Kind(
            "MseIngressConfig",
            "custom",
            "",
            False,
            custom=(MSE_GROUP, MSE_VERSION, MSE_PLURAL),
        ),
    )
}


def kind_of(kind: str) -> Kind:
    """The :class:`Kind` for a kind name; unknown kinds are a programming error."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"egress_lib does not handle kind {kind!r}") from None
