"""The resource types the API serves: built-in kinds plus kinds that CRDs add at run time."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# The verbs of a read-write resource: the default ``ResourceType.verbs``.
_RW: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _RW
    subresources: tuple[str, ...] = ()  # "status", "log"
    categories: tuple[str, ...] = ()
    # CRD-backed types carry their OpenAPI v3 schema; built-ins use the bundled definitions.
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def resource_name(self) -> str:
        """``services`` or ``mseingressconfigs.mse.alibabacloud.com``, as messages spell it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_RO = ("get", "list", "watch")

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        "namespace",
        ("ns",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
        ("status",),
    ),
    # Nodes are read-mostly: the sandbox registers its one node at bootstrap.
    ResourceType(
        "",
        "v1",
        "nodes",
        "Node",
        False,
        "node",
        ("no",),
        ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        ("status",),
    ),
    ResourceType(
        "", "v1", "services", "Service", True, "service", ("svc",), _RW, ("status",), ("all",)
    ),
    ResourceType("", "v1", "pods", "Pod", True, "pod", ("po",), _RW, ("status", "log"), ("all",)),
    ResourceType("", "v1", "events", "Event", True, "event", ("ev",), _RW),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",), _RW),
    ResourceType("", "v1", "secrets", "Secret", True, "secret", (), _RW),
    ResourceType(
        "", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount", ("sa",), _RW
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        "deployment",
        ("deploy",),
        _RW,
        ("status",),
        ("all",),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        True,
        "ingress",
        ("ing",),
        _RW,
        ("status",),
    ),
    ResourceType(
        "networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, "ingressclass", (), _RW
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        "customresourcedefinition",
        ("crd", "crds"),
        _RW,
        ("status",),
    ),
    # Leases (leader election, the runbook's per-cluster run lock): no short names, no
    # categories, no status subresource, as kube-apiserver serves them.
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease", (), _RW),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        "",
        (),
        ("create",),
    ),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, "event", ("ev",), _RW),
)


class TypeRegistry:
    """Lookup of served types by (group, version, plural), by kind and by short name."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for t in BUILTIN_TYPES:
            self.add(t)

    def add(self, t: ResourceType) -> None:
        with self._lock:
            self._types[(t.group, t.version, t.plural)] = t

    def remove(self, group: str, plural: str) -> None:
        with self._lock:
            for k in [k for k in self._types if k[0] == group and k[2] == plural]:
                del self._types[k]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        with self._lock:
            for t in self._types.values():
                if t.group == group and t.kind == kind:
                    return t
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.all():
            out.setdefault(t.group, [])
            if t.version not in out[t.group]:
                out[t.group].append(t.version)
        return out
