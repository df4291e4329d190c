"""Helpers shared by the steps: approval, applying a list of manifests, row tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import kube
from egress_lib.errors import NotApproved
from egress_lib.plan import CHANGING, Action, Change, Plan

if TYPE_CHECKING:
    from egress_lib.clients import Session


_ACTIONS: dict[str, Action] = {"created": "create", "updated": "update", "unchanged": "unchanged"}


def require_approval(session: Session, plan: Plan) -> None:
    """Raise :class:`NotApproved` if the plan changes something and approve is false."""
    if plan.has_changes and not session.params.approve:
        n = sum(c.action in CHANGING for c in plan.changes)
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


def rows_frame(rows: list[dict[str, Any]], fields: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame with one row per API row; ``fields`` maps each column to its wire key."""
    frame: pd.DataFrame = pd.DataFrame(
        [[r.get(key) for key in fields.values()] for r in rows], columns=list(fields)
    )
    return frame
