"""What a step will do (:class:`Plan`) and what it did (:class:`StepResult`)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Action = Literal["create", "update", "delete", "unchanged", "wait", "check"]
COLUMNS = ["Action", "Kind", "Name", "Detail"]


@dataclass(frozen=True)
class Change:
    """One intended (or applied) change to one object."""

    action: Action
    kind: str
    name: str
    detail: str = ""


CHANGING: tuple[Action, ...] = ("create", "update", "delete")


def _frame(changes: list[Change]) -> pd.DataFrame:
    rows = [[c.action, c.kind, c.name, c.detail] for c in changes]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=COLUMNS)
    return frame


def _text_table(changes: list[Change]) -> str:
    rows = [COLUMNS] + [[c.action, c.kind, c.name, c.detail] for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(3)] + [r[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _render_text(title: str, verdict: str, changes: list[Change], warnings: list[str]) -> str:
    parts = [f"{title}: {verdict}"]
    if changes:
        parts.append(_text_table(changes))
    parts += [f"warning: {w}" for w in warnings]
    return "\n".join(parts)


def _render_html(
    title: str,
    verdict: str,
    changes: list[Change],
    warnings: list[str],
    tables: dict[str, pd.DataFrame] | None = None,
) -> str:
    out = f"<p><b>{html.escape(title)}</b>: {verdict}</p>"
    if changes:
        out += _frame(changes).to_html(index=False)
    for name, table in (tables or {}).items():
        out += f"<p><i>{html.escape(name)}</i></p>" + table.to_html(index=False)
    for w in warnings:
        out += f"<p>⚠ {html.escape(w)}</p>"
    return out


@dataclass
class Plan:
    """The changes one step would make, computed without writing anything."""

    step: str
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """True if applying would create, update or delete something."""
        return any(c.action in CHANGING for c in self.changes)

    def to_frame(self) -> pd.DataFrame:
        """The changes as a DataFrame (Action, Kind, Name, Detail)."""
        return _frame(self.changes)

    def _verdict(self) -> str:
        return "changes" if self.has_changes else "nothing to change"

    def __str__(self) -> str:
        return _render_text(f"Plan for {self.step}", self._verdict(), self.changes, self.warnings)

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: a table reads better than the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        return _render_html(f"Plan for {self.step}", self._verdict(), self.changes, self.warnings)


@dataclass
class StepResult:
    """What a step's ``apply`` did, with the objects as read back and any tables."""

    step: str
    changes_applied: list[Change] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True if anything was created, updated or deleted."""
        return any(c.action in CHANGING for c in self.changes_applied)

    def to_frame(self) -> pd.DataFrame:
        """The applied changes as a DataFrame (Action, Kind, Name, Detail)."""
        return _frame(self.changes_applied)

    def _verdict(self) -> str:
        return "changed" if self.changed else "nothing changed"

    def __str__(self) -> str:
        return _render_text(self.step, self._verdict(), self.changes_applied, self.warnings)

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: a table reads better than the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        return _render_html(
            self.step, self._verdict(), self.changes_applied, self.warnings, self.tables
        )
