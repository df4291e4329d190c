"""The rows of step 07's checks: one per check, pass, fail or skipped, and what they show.

``policies.json`` in the run folder and the step's table carry the same rows; a failing row
names the parameter key it checks, so the step's error can say which keys to look at.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from egress_lib.errors import StepFailed
from egress_lib.plan import RUN_DIR_ENV, StepResult
from egress_lib.tables import Mark, ShowsTable, Table, mark

Outcome = Literal["pass", "fail", "skipped"]
POLICIES_FILE = "policies.json"
COLUMNS = ["Destination", "Policy", "Check", "Expectation", "Observed", "Result"]
SKIPPED = Mark("○ skipped")


@dataclass(frozen=True)
class CheckRow:
    """One check of one policy, from one probe pod."""

    destination: str  # the destination's name, or "(gateway)" for gateway-wide lists
    policy: str  # the key under policies (or sni, upstream_vhost, ip_access_control)
    check: str  # what is tried, e.g. "allowed source (pod)"
    expectation: str
    observed: str
    outcome: Outcome
    parameter: str = ""  # the key path checked, e.g. destinations[0].policies.rate_limit
    pod: str = ""  # the probe pod that produced it ("" when no pod ran)
    fix: str = ""  # for a failure: what to look at

    @property
    def ok(self) -> bool:
        """Not a failure (a skipped check fails nothing)."""
        return self.outcome != "fail"


def passed(ok: bool) -> Outcome:
    """``pass`` or ``fail``."""
    return "pass" if ok else "fail"


def result_mark(row: CheckRow) -> Mark:
    """✓, ✗ error or ○ skipped."""
    return SKIPPED if row.outcome == "skipped" else mark(row.outcome == "pass")


@dataclass(repr=False)
class PolicyResult(ShowsTable):
    """Every check's row; ``ok`` when none failed."""

    rows: list[CheckRow] = field(default_factory=list)
    # False when nothing ran: the plan was not applied, or no policy is declared.
    ran: bool = True
    declared: bool = True
    # What apply did to the objects (or why nothing was applied), for the notebook to show.
    step: StepResult | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[CheckRow]:
        return [r for r in self.rows if r.outcome == "fail"]

    @property
    def summary(self) -> str:
        """One line for the Apply panel: the checks' counts."""
        c = self.counts()
        return f"{c['pass']} check(s) passed, {c['fail']} failed, {c['skipped']} skipped"

    def counts(self) -> dict[str, int]:
        """How many rows passed, failed and were skipped."""
        out = {"pass": 0, "fail": 0, "skipped": 0}
        for r in self.rows:
            out[r.outcome] += 1
        return out

    def _empty(self) -> str:
        if not self.declared:
            return "no policy declared: nothing to check"
        return "not run: the plan was not applied" if not self.ran else "no checks"

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (:data:`COLUMNS` plus Parameter and Pod), for code."""
        frame: pd.DataFrame = pd.DataFrame(
            [
                [
                    r.destination,
                    r.policy,
                    r.check,
                    r.expectation,
                    r.observed,
                    r.outcome,
                    r.parameter,
                    r.pod,
                ]
                for r in self.rows
            ],
            columns=[*COLUMNS, "Parameter", "Pod"],
        )
        return frame

    def to_table(self) -> Table:
        """The rows to read: Result first; a Fix column when something failed."""
        failing = bool(self.failed)
        columns = ["Result", *COLUMNS[:-1]] + (["Fix"] if failing else [])
        rows = [
            [
                result_mark(r),
                r.destination,
                r.policy,
                r.check,
                r.expectation,
                r.observed,
                *([r.fix] if failing else []),
            ]
            for r in self.rows
        ]
        return Table(columns, rows, empty=self._empty())

    def records(self) -> list[dict[str, Any]]:
        """Plain rows, for ``policies.json`` and the run record."""
        return [asdict(r) for r in self.rows]

    def save(self) -> str | None:
        """Write ``policies.json`` into the run folder the runner names; else nothing."""
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir or not self.ran:
            return None
        path = os.path.join(run_dir, POLICIES_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.records(), f, indent=2)
        return path

    def raise_for_failures(self) -> None:
        """Raise :class:`StepFailed` naming every failing check and the keys to look at."""
        bad = self.failed
        if not self.ran or not bad:
            return
        lines = "\n".join(
            f"  - {r.destination} {r.policy}: {r.check}: expected {r.expectation}; "
            f"observed {r.observed}"
            for r in bad
        )
        raise StepFailed(f"{len(bad)} policy check(s) failed:\n{lines}", remedy=remedy_for(bad))


def remedy_for(bad: list[CheckRow]) -> str:
    """Which parameter keys to check, and each failing row's own fix (once each)."""
    keys = list(dict.fromkeys(r.parameter for r in bad if r.parameter))
    fixes = list(dict.fromkeys(r.fix for r in bad if r.fix))
    parts = [
        "The gateway does not do what these parameters declare: "
        + (", ".join(keys) if keys else "(see the rows)")
        + "."
    ]
    parts += [f[:1].upper() + f[1:].rstrip(".") + "." for f in fixes]
    parts.append(
        "Fix the parameters (or what changed the gateway's objects behind the runbook's "
        "back), re-run 07-egress-policies: its plan shows any annotation that differs from "
        "the parameters, and apply puts it back."
    )
    return " ".join(parts)
