"""Pod and Deployment: containers, restart policy, the selector against the template."""

from __future__ import annotations

from egress_sandbox.k8s.fielderrors import FieldErrors, dns1123_label
from egress_sandbox.k8s.store import Obj


def validate_pod_spec(spec: Obj, f: str, errs: FieldErrors) -> None:
    containers = spec.get("containers") or []
    if not containers:
        errs.required(f"{f}.containers")
    seen: set[str] = set()
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        name = c.get("name", "")
        if not name:
            errs.required(f"{f}.containers[{i}].name")
        else:
            for msg in dns1123_label(name):
                errs.invalid(f"{f}.containers[{i}].name", name, msg)
            if name in seen:
                errs.duplicate(f"{f}.containers[{i}].name", name)
            seen.add(name)
        if not c.get("image"):
            errs.required(f"{f}.containers[{i}].image")
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.not_supported(f"{f}.restartPolicy", policy, ["Always", "Never", "OnFailure"])


def validate_deployment(new: Obj, errs: FieldErrors) -> None:
    spec = new.get("spec", {})
    selector = spec.get("selector")
    if not selector:
        errs.required("spec.selector")
    labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
    wanted = (selector or {}).get("matchLabels") or {}
    if selector and any(labels.get(k) != v for k, v in wanted.items()):
        errs.invalid(
            "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
        )
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        errs.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    validate_pod_spec(spec.get("template", {}).get("spec", {}), "spec.template.spec", errs)
