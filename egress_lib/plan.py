"""What a step will do (:class:`Plan`) and what it did (:class:`StepResult`).

A plan is computed without writing anything. Each :class:`Change` carries what the operator
reviews (``body``: the object as the server's dry run returns it, a unified diff, or the
cloud request's fields), what ``apply`` will send (``payload``) and the precondition under
which it may be sent (``precondition``: a Kubernetes resourceVersion or uid, or the cloud
state observed). ``fingerprint`` identifies a change across processes, so the runner can
check that a notebook applies only what was approved.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

# create/update/delete change something; adopt = an existing object is used as it is (never
# deleted by teardown); conflict = an object we do not own is in the way (apply refuses);
# wait/check = the step waits for or reads something; test = a temporary object (verify pods).
Action = Literal[
    "create", "update", "delete", "unchanged", "adopt", "conflict", "wait", "check", "test"
]
COLUMNS = ["Action", "Kind", "Name", "Detail"]
CHANGING: tuple[Action, ...] = ("create", "update", "delete")
# Actions whose identity apply compares with a fresh plan: what the world looked like.
COMPARED: tuple[Action, ...] = ("create", "update", "delete", "unchanged", "adopt", "conflict")
# Set by egress_lib.runner for the kernels it starts; steps leave their results there.
RUN_DIR_ENV = "EGRESS_RUN_DIR"
APPROVED_PLAN_FILE = "approved-plan.json"


def _canonical(payload: Any) -> str:
    data = copy.deepcopy(payload)
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        # The resourceVersion is the precondition, not the content: a status update by a
        # controller must not make an approved change look different.
        data["metadata"].pop("resourceVersion", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Change:
    """One intended (or applied) change to one object."""

    action: Action
    kind: str
    name: str
    detail: str = ""
    namespace: str | None = None
    # For review: YAML of the object to create, a unified diff, or the request's fields.
    body: str = field(default="", compare=False)
    # What apply sends: the manifest or the request fields, exactly as planned.
    payload: Any = field(default=None, compare=False, hash=False)
    # Under which apply may send it: {"resourceVersion": ...}, {"uid": ...}, cloud state.
    precondition: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # For applied changes: IDs created, RequestIds of the cloud calls.
    result: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> str:
        """``Kind/name`` or ``Kind/namespace/name``."""
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind}/{self.name}")
        )

    @property
    def fingerprint(self) -> str:
        """A digest of the action, the object and the payload (not the resourceVersion)."""
        text = json.dumps([self.action, self.ref, _canonical(self.payload)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for run records (no payload: the body says the same for people)."""
        out: dict[str, Any] = {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "detail": self.detail,
            "fingerprint": self.fingerprint,
        }
        if self.body:
            out["body"] = self.body
        if self.result:
            out["result"] = self.result
        return out


def _frame(changes: list[Change]) -> pd.DataFrame:
    rows = [[c.action, c.kind, _name(c), c.detail] for c in changes]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=COLUMNS)
    return frame


def _name(c: Change) -> str:
    return f"{c.namespace}/{c.name}" if c.namespace else c.name


def _text_table(changes: list[Change]) -> str:
    rows = [COLUMNS] + [[c.action, c.kind, _name(c), c.detail] for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(3)] + [r[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _bodies_text(changes: list[Change]) -> list[str]:
    out = []
    for c in changes:
        if c.body and c.action in (*CHANGING, "conflict"):
            indented = "\n".join("    " + line for line in c.body.rstrip("\n").splitlines())
            out.append(f"  {c.action} {c.ref}:\n{indented}")
    return out


def _render_text(
    title: str,
    verdict: str,
    changes: list[Change],
    warnings: list[str],
    notes: list[str],
    bodies: bool,
) -> str:
    parts = [f"{title}: {verdict}"]
    if changes:
        parts.append(_text_table(changes))
    if bodies:
        parts += _bodies_text(changes)
    parts += [f"note: {n}" for n in notes]
    parts += [f"warning: {w}" for w in warnings]
    return "\n".join(parts)


def _render_html(
    title: str,
    verdict: str,
    changes: list[Change],
    warnings: list[str],
    notes: list[str],
    tables: dict[str, pd.DataFrame] | None = None,
    bodies: bool = True,
) -> str:
    out = f"<p><b>{html.escape(title)}</b>: {html.escape(verdict)}</p>"
    if changes:
        out += _frame(changes).to_html(index=False)
    if bodies:
        for c in changes:
            if c.body and c.action in (*CHANGING, "conflict"):
                out += (
                    f"<details><summary>{html.escape(c.action)} {html.escape(c.ref)}</summary>"
                    f"<pre>{html.escape(c.body)}</pre></details>"
                )
    for name, table in (tables or {}).items():
        out += f"<p><i>{html.escape(name)}</i></p>" + table.to_html(index=False)
    for n in notes:
        out += f"<p>Note: {html.escape(n)}</p>"
    for w in warnings:
        out += f"<p>⚠ {html.escape(w)}</p>"
    return out


@dataclass
class Plan:
    """The changes one step would make, computed without writing anything."""

    step: str
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What the plan cannot know yet (an earlier step has not run), and similar remarks.
    notes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """True if applying would create, update or delete something."""
        return any(c.action in CHANGING for c in self.changes)

    @property
    def change_count(self) -> int:
        """How many creates, updates and deletes the plan has."""
        return sum(c.action in CHANGING for c in self.changes)

    @property
    def conflicts(self) -> list[Change]:
        """Objects in the way that the runbook does not own."""
        return [c for c in self.changes if c.action == "conflict"]

    @property
    def needs_approval(self) -> bool:
        """True if applying writes anything, temporary objects included."""
        return self.has_changes or any(c.action == "test" for c in self.changes)

    def to_frame(self) -> pd.DataFrame:
        """The changes as a DataFrame (Action, Kind, Name, Detail)."""
        return _frame(self.changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for run records and the approved-plan file."""
        return {
            "step": self.step,
            "changes": [c.to_dict() for c in self.changes],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def _verdict(self) -> str:
        if self.conflicts:
            return f"{len(self.conflicts)} conflict(s): cannot be applied as it is"
        n = self.change_count
        return f"{n} change(s)" if n else "nothing to change"

    def __str__(self) -> str:
        return _render_text(
            f"Plan for {self.step}",
            self._verdict(),
            self.changes,
            self.warnings,
            self.notes,
            bodies=True,
        )

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: a table reads better than the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        return _render_html(
            f"Plan for {self.step}", self._verdict(), self.changes, self.warnings, self.notes
        )


@dataclass
class StepResult:
    """What a step's ``apply`` did, with the objects as read back and any tables."""

    step: str
    changes_applied: list[Change] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    # False when approve was false and the plan needed approval: nothing was applied.
    applied: bool = True

    @property
    def changed(self) -> bool:
        """True if anything was created, updated or deleted."""
        return any(c.action in CHANGING for c in self.changes_applied)

    @property
    def request_ids(self) -> list[dict[str, str]]:
        """RequestIds of the mutating Alibaba Cloud calls made."""
        out: list[dict[str, str]] = []
        for c in self.changes_applied:
            out.extend(c.result.get("request_ids") or [])
        return out

    def to_frame(self) -> pd.DataFrame:
        """The applied changes as a DataFrame (Action, Kind, Name, Detail)."""
        return _frame(self.changes_applied)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the run record."""
        return {
            "step": self.step,
            "applied": self.applied,
            "plan": self.plan.to_dict() if self.plan else None,
            "changes_applied": [c.to_dict() for c in self.changes_applied],
            "request_ids": self.request_ids,
            "warnings": list(self.warnings),
        }

    def save(self) -> str | None:
        """Write ``<step>.result.json`` into the run folder the runner names; else nothing."""
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            return None
        path = os.path.join(run_dir, f"{self.step}.result.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path

    def _verdict(self) -> str:
        if not self.applied:
            return "not applied: approve is false (plan only)"
        return "changed" if self.changed else "nothing changed"

    def __str__(self) -> str:
        return _render_text(
            self.step, self._verdict(), self.changes_applied, self.warnings, [], bodies=False
        )

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: a table reads better than the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        return _render_html(
            self.step,
            self._verdict(),
            self.changes_applied,
            self.warnings,
            [],
            self.tables,
            bodies=False,
        )
