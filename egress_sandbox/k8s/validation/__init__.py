"""Admission for built-in kinds and custom resources: decoding, defaulting, then validation.

``install_admission(store)`` adds one hook to ``Store.admission``; it runs for every write,
from HTTP and from in-process controllers alike. Messages follow kube-apiserver word for word.
A built-in object is first decoded as kube-apiserver decodes it into its Go type
(:mod:`egress_sandbox.k8s.decoding`), so no object of the wrong shape is ever stored; each kind's
rules live in a module of this package.
"""

from __future__ import annotations

from egress_sandbox.k8s import decoding, defaults
from egress_sandbox.k8s.fielderrors import FieldErrors
from egress_sandbox.k8s.store import Obj, Store
from egress_sandbox.k8s.structural import prune_unknown, validate
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.k8s.validation.config import (
    default_secret,
    validate_config_map,
    validate_event,
    validate_secret,
)
from egress_sandbox.k8s.validation.crd import validate_crd
from egress_sandbox.k8s.validation.lease import require_resource_version, validate_lease
from egress_sandbox.k8s.validation.meta import validate_annotations, validate_labels, validate_name
from egress_sandbox.k8s.validation.networking import validate_ingress, validate_ingress_class
from egress_sandbox.k8s.validation.service import validate_service
from egress_sandbox.k8s.validation.workloads import validate_deployment, validate_pod_spec

__all__ = ["admit", "install_admission"]

# The groups whose kinds this package knows (a CRD could reuse a built-in kind's name).
_BUILTIN_GROUPS = frozenset(
    {"", "apps", "networking.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"}
)


def install_admission(store: Store) -> None:
    """Register decoding + defaulting + validation on ``store`` (idempotent)."""
    if any(getattr(h, "_sandbox_validation", False) for h in store.admission):
        return

    def hook(op: str, rt: ResourceType, new: Obj, old: Obj | None) -> None:
        admit(store, op, rt, new, old)

    hook._sandbox_validation = True  # type: ignore[attr-defined]
    store.admission.append(hook)


def admit(store: Store, op: str, rt: ResourceType, new: Obj, old: Obj | None) -> None:
    if rt.schema is None:
        decoding.decode_builtin(rt, new, normalize=True)
    errs = FieldErrors()
    meta = new.get("metadata", {})
    name = meta.get("name", "")
    lease = rt.schema is None and (rt.group, rt.kind) == ("coordination.k8s.io", "Lease")
    if lease and op == "UPDATE":
        require_resource_version(rt, meta)
    if op == "CREATE":
        validate_name(rt.kind, name, errs)
    validate_labels(meta, errs)
    validate_annotations(meta, errs)
    if rt.schema is not None:
        # Custom resource: prune to the schema, then validate against it.
        prune_unknown(new, rt.schema, crd=True)
        validate(new, rt.schema, "", errs)
    else:
        _builtin(store, rt, new, old, errs)
    errs.raise_if_any(rt.kind, rt.group, name)


def _builtin(store: Store, rt: ResourceType, new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    kind = rt.kind if rt.group in _BUILTIN_GROUPS else ""
    if kind == "Namespace":
        defaults.default_namespace(new)
    elif kind == "Service":
        validate_service(store, new, old, errs)
    elif kind == "Pod":
        defaults.default_pod(new)
        validate_pod_spec(new.get("spec", {}), "spec", errs)
    elif kind == "Deployment":
        defaults.default_deployment(new)
        validate_deployment(new, errs)
    elif kind == "Ingress":
        validate_ingress(new, errs)
    elif kind == "IngressClass":
        defaults.default_ingress_class(new)
        validate_ingress_class(new, errs)
    elif kind == "CustomResourceDefinition":
        validate_crd(new, errs)
    elif kind == "Lease":
        validate_lease(new, old, errs)
    elif kind == "ConfigMap":
        validate_config_map(new, old, errs)
    elif kind == "Secret":
        default_secret(new)
        validate_secret(new, old, errs)
    elif kind == "Event" and rt.group == "":
        validate_event(new, errs)
