"""What the runbook owns: the labels it puts on every object it creates, and how to read them.

An object carries ``app.kubernetes.io/managed-by: egress-runbook`` and the cluster's name; an
object without them was made by someone else and is never changed or deleted unless the
parameters list it under ``adopt:``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from egress_lib.parameters import Parameters

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "egress-runbook"
CLUSTER_LABEL = "egress-runbook/cluster"
RUN_LABEL = "egress-runbook/run"

Owner = Literal["ours", "other-cluster", "foreign"]


def labels(p: Parameters) -> dict[str, str]:
    """The ownership labels of every object the runbook creates for ``p.cluster_name``."""
    return {MANAGED_BY: MANAGER, CLUSTER_LABEL: p.cluster_name}


def selector(p: Parameters) -> str:
    """A label selector matching exactly the objects :func:`labels` marks."""
    return f"{MANAGED_BY}={MANAGER},{CLUSTER_LABEL}={p.cluster_name}"


def owner(obj: dict[str, Any], p: Parameters) -> Owner:
    """Whether ``obj`` is ours, another cluster's run of the runbook, or someone else's."""
    found = (obj.get("metadata") or {}).get("labels") or {}
    if found.get(MANAGED_BY) != MANAGER:
        return "foreign"
    return "ours" if found.get(CLUSTER_LABEL) == p.cluster_name else "other-cluster"


def with_labels(obj: dict[str, Any], p: Parameters) -> dict[str, Any]:
    """``obj`` with the ownership labels added to ``metadata.labels`` (a new dict)."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels(p)}
    return {**obj, "metadata": meta}
