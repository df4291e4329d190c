"""Helpers shared by the steps: approval and applying a list of manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from egress_lib import kube
from egress_lib.errors import NotApproved
from egress_lib.plan import Action, Change, Plan

if TYPE_CHECKING:
    from egress_lib.clients import Session


_ACTIONS: dict[str, Action] = {"created": "create", "updated": "update", "unchanged": "unchanged"}


def require_approval(session: Session, plan: Plan) -> None:
    """Raise :class:`NotApproved` if the plan changes something and approve is false."""
    if plan.has_changes and not session.params.approve:
        n = sum(c.action in ("create", "update", "delete") for c in plan.changes)
        raise NotApproved(
            f"{plan.step} would make {n} change(s) but approve is false; "
            f"review the plan, then set approve: true\n{plan}"
        )


def plan_objects(session: Session, objs: list[dict[str, Any]]) -> list[Change]:
    """One :func:`kube.plan_apply` change per manifest."""
    return [kube.plan_apply(session, o) for o in objs]


def apply_objects(
    session: Session, objs: list[dict[str, Any]]
) -> tuple[list[Change], list[dict[str, Any]]]:
    """Apply each manifest; return the changes made and the objects as read back."""
    changes: list[Change] = []
    read: list[dict[str, Any]] = []
    for o in objs:
        outcome = kube.apply(session, o)
        changes.append(
            Change(_ACTIONS[outcome.action], o["kind"], o["metadata"]["name"], outcome.action)
        )
        read.append(kube.read_back(session, o))
    return changes, read
