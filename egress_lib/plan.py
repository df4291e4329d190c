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

from egress_lib.tables import Table, highlight

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
# How a step says it found its resource but not yet converged (an install in flight, an SNAT
# entry Pending): a wait's detail or a note starting so. Apply waits as a first run would, and
# the runner runs such a step although nothing needs approval ("unchanged" means converged).
CONVERGING = "no change; waiting for "
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


def change_table(changes: list[Change]) -> Table:
    """The changes as a table (Action, Kind, Name, Detail)."""
    return Table(COLUMNS, [[c.action, c.kind, _name(c), c.detail] for c in changes])


def _name(c: Change) -> str:
    return f"{c.namespace}/{c.name}" if c.namespace else c.name


def _shown_bodies(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.body and c.action in (*CHANGING, "conflict")]


def _bodies_text(changes: list[Change]) -> list[str]:
    out = []
    for c in _shown_bodies(changes):
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
        parts.append(str(change_table(changes)))
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
    bodies: bool = True,
) -> str:
    out = f"<p><b>{html.escape(title)}</b>: {html.escape(verdict)}</p>"
    if changes:
        out += change_table(changes)._repr_html_()
    if bodies:
        for c in _shown_bodies(changes):
            # An update's body is a unified diff; a create's, delete's or request's is YAML.
            language: Literal["yaml", "diff"] = "diff" if c.body.startswith("--- ") else "yaml"
            out += (
                f"<details><summary>{html.escape(c.action)} {html.escape(c.ref)}</summary>"
                f"{highlight(c.body, language)}</details>"
            )
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
    def converging(self) -> list[str]:
        """What apply will wait for although nothing changes (text after CONVERGING)."""
        # A wait's own detail when it has one; else the note (02 words it as a note).
        waits = [c.detail for c in self.changes if c.action == "wait"]
        texts = [t for t in waits if t.startswith(CONVERGING)] or self.notes
        return [t.removeprefix(CONVERGING) for t in texts if t.startswith(CONVERGING)]

    @property
    def needs_approval(self) -> bool:
        """True if applying writes anything, temporary objects included."""
        return self.has_changes or any(c.action == "test" for c in self.changes)

    def to_frame(self) -> pd.DataFrame:
        """The changes as a DataFrame (Action, Kind, Name, Detail)."""
        return change_table(self.changes).to_frame()

    def to_table(self) -> Table:
        """The changes as a :class:`~egress_lib.tables.Table` (Action, Kind, Name, Detail)."""
        return change_table(self.changes)

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
        if n:
            return f"{n} change(s)"
        waiting = self.converging
        return f"{CONVERGING}{'; '.join(waiting)}" if waiting else "nothing to change"

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
    """What a step's ``apply`` did, with the objects as read back and any tables.

    Its display lists the changes applied, not ``tables``: a notebook shows each table once,
    in a cell of its own (:meth:`table`).
    """

    step: str
    changes_applied: list[Change] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    # For code: DataFrames of what apply read back (e.g. "snat", "clb", "addresses").
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    # False when approve was false and the plan needed approval: nothing was applied.
    applied: bool = True
    # Shown instead of the changes and warnings when the notebook has shown them already
    # (preflight's checks); the run record keeps them all the same.
    summary: str = ""

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
        return change_table(self.changes_applied).to_frame()

    def to_table(self) -> Table:
        """The applied changes as a :class:`~egress_lib.tables.Table`."""
        return change_table(self.changes_applied)

    def table(self, name: str) -> Table:
        """``tables[name]`` to read, or a table saying why there is none (not applied)."""
        if name in self.tables:
            return Table.from_frame(self.tables[name])
        why = (
            "nothing read back: the plan was not applied"
            if not self.applied
            else f"{self.step} read no {name} table"
        )
        return Table((), empty=why)

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
        if self.summary:
            return self.summary
        return "changed" if self.changed else "nothing changed"

    def _shown(self) -> tuple[list[Change], list[str]]:
        return ([], []) if self.summary else (self.changes_applied, self.warnings)

    def __str__(self) -> str:
        changes, warnings = self._shown()
        return _render_text(self.step, self._verdict(), changes, warnings, [], bodies=False)

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: a table reads better than the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        changes, warnings = self._shown()
        return _render_html(self.step, self._verdict(), changes, warnings, [], bodies=False)
