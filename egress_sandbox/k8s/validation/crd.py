"""CustomResourceDefinition: names, scope, one storage version, a schema per version."""

from __future__ import annotations

from egress_sandbox.k8s.fielderrors import FieldErrors
from egress_sandbox.k8s.store import Obj


def validate_crd(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    if not group:
        errs.required("spec.group")
    if not plural:
        errs.required("spec.names.plural")
    if not names.get("kind"):
        errs.required("spec.names.kind")
    name = new.get("metadata", {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        errs.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    scope = spec.get("scope", "")
    if scope not in ("Cluster", "Namespaced"):
        errs.not_supported("spec.scope", scope, ["Cluster", "Namespaced"])
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        errs.invalid(
            "spec.versions", versions, "must have exactly one version marked as storage version"
        )
    for i, v in enumerate(versions):
        if not (v.get("schema") or {}).get("openAPIV3Schema"):
            errs.required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")
