"""Lease: what the coordination/v1 strategy refuses beyond decoding (types and times)."""

from __future__ import annotations

from egress_sandbox.k8s.errors import Invalid
from egress_sandbox.k8s.fielderrors import FieldErrors
from egress_sandbox.k8s.store import Obj
from egress_sandbox.k8s.types import ResourceType


def require_resource_version(rt: ResourceType, meta: Obj) -> None:
    """The lease strategy refuses unconditional updates (AllowUnconditionalUpdate false)."""
    if meta.get("resourceVersion"):
        return
    cause = {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 0: must be specified for an update",
        "field": "metadata.resourceVersion",
    }
    # The registry names the resource where the kind would be (qualifiedKind of the store).
    raise Invalid.of(rt.plural, rt.group, meta.get("name", ""), [cause])


def validate_lease(new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return
    old_spec = (old or {}).get("spec") or {}
    # CoordinatedLeaderElection is off (alpha in 1.32): its fields are dropped unless the
    # stored lease already has them.
    for key in ("preferredHolder", "strategy"):
        if old_spec.get(key) is None:
            spec.pop(key, None)
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
