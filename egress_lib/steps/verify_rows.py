"""Verify's result: one row per destination and path, as a table, records and ``verify.json``.

Each destination has a "via gateway" row (the request through its Ingress's address: the
rule, the status, the source address the destination saw against the SNAT EIP) and a "direct"
row (the same destination without the gateway, which must fail to connect). With
``verify.echo_url`` one "echo" row more gives the source address for all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from egress_lib import remedies
from egress_lib.errors import StepFailed
from egress_lib.plan import RUN_DIR_ENV
from egress_lib.tables import Mark, ShowsTable, Table, mark

VIA = "via gateway"
DIRECT = "direct"
ECHO = "echo"
Result = Literal["pass", "fail", "skipped"]
COLUMNS = [
    "Destination",
    "Path",
    "Route",
    "URL",
    "HTTP status",
    "Time (s)",
    "Remote address",
    "Source address",
    "Expected EIP",
    "Result",
    "Detail",
    "Fix",
]
TABLE_COLUMNS = [
    "Result",
    "Destination",
    "Path",
    "Route",
    "URL",
    "HTTP status",
    "Source address",
    "Expected EIP",
    "Detail",
]


@dataclass(frozen=True)
class VerifyRow:
    """One request's evidence. ``result`` skipped: it answered, but the source went unseen."""

    destination: str
    path: str  # VIA, DIRECT or ECHO
    url: str
    status: int | None
    result: Result
    detail: str
    route: str = ""  # the Ingress rule that matched (via gateway and echo)
    seconds: float | None = None
    remote: str = ""  # the address curl connected to
    source: str | None = None  # the source address the destination saw
    expected: str = ""  # the SNAT EIP(s) of the gateway vSwitches, comma-separated
    fix: str = ""  # on failure: what to do, naming the step, the policy or the vSwitch
    # For the step's error, not shown as columns: a via row's own remedy (a policy that
    # refuses the pod, a wrong EIP), a direct row's ways out (SNAT entries, one line each).
    remedy: str = ""
    ways_out: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result != "fail"


def result_mark(result: Result) -> Mark:
    """✓ pass, ✗ fail, ⚠ skipped."""
    if result == "skipped":
        return Mark("⚠ skipped")
    return mark(result == "pass")


@dataclass(repr=False)
class VerifyResult(ShowsTable):
    """The rows; ``ok`` when none failed."""

    rows: list[VerifyRow] = field(default_factory=list)
    # False in a plan-only notebook run: no pod was started, so nothing passed or failed.
    ran: bool = True
    # What a failure's remedy names: the vSwitches step 03 gives SNAT entries, and their name.
    gateway_vswitches: list[str] = field(default_factory=list)
    snat_entry_name: str = ""
    node_vswitches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def summary(self) -> str:
        """One line for the Apply panel."""
        if self.ok:
            return "every destination answered through the gateway, and none without it"
        return f"{sum(not r.ok for r in self.rows)} row(s) failed: see the result below"

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (:data:`COLUMNS`), for code."""
        frame: pd.DataFrame = pd.DataFrame(
            [
                [
                    r.destination,
                    r.path,
                    r.route,
                    r.url,
                    r.status,
                    r.seconds,
                    r.remote,
                    r.source,
                    r.expected,
                    r.result,
                    r.detail,
                    r.fix,
                ]
                for r in self.rows
            ],
            columns=COLUMNS,
        )
        return frame

    def to_table(self) -> Table:
        """The rows to read: a mark per row, and a Fix column when any row failed."""
        failed = any(not r.ok for r in self.rows)
        rows = [
            [
                result_mark(r.result),
                r.destination,
                r.path,
                r.route,
                r.url,
                r.status,
                r.source,
                r.expected,
                r.detail,
            ]
            + ([fix_for(r)] if failed else [])
            for r in self.rows
        ]
        columns = TABLE_COLUMNS + (["Fix"] if failed else [])
        empty = "not run: the plan was not applied" if not self.ran else "no destinations"
        return Table(columns, rows, empty=empty)

    def records(self) -> list[dict[str, Any]]:
        """Plain rows, for ``verify.json`` and ``egress-runbook run``'s summary."""
        return [
            {
                "destination": r.destination,
                "path": r.path,
                "route": r.route,
                "url": r.url,
                "http_status": r.status,
                "time_s": r.seconds,
                "remote_address": r.remote,
                "source_address": r.source,
                "expected_eip": r.expected,
                "result": r.result,
                "ok": r.ok,
                "detail": r.detail,
                "fix": fix_for(r),
            }
            for r in self.rows
        ]

    def save(self) -> str | None:
        """Write ``verify.json`` into the run folder ``egress-runbook run`` names; else nothing."""
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            return None
        path = os.path.join(run_dir, "verify.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.records(), f, indent=2)
        return path

    def raise_for_failures(self) -> None:
        """Raise :class:`StepFailed` naming every failed row, with what to do."""
        if not self.ran:
            return
        bad = [r for r in self.rows if not r.ok]
        if not bad:
            return
        via = [r for r in bad if r.path != DIRECT]
        direct = [r for r in bad if r.path == DIRECT]
        parts = []
        if via:
            parts.append(
                f"{len(via)} check(s) through the gateway failed:\n"
                + "\n".join(f"  - {r.destination} ({r.url}): {r.detail}" for r in via)
            )
        if direct:
            parts.append(
                f"{len(direct)} destination(s) reachable without the gateway (a bypass):\n"
                + "\n".join(f"  - {r.destination} ({r.url}): {r.detail}" for r in direct)
            )
        raise StepFailed("\n".join(parts), remedy=self._remedy(via, direct))

    def _remedy(self, via: Sequence[VerifyRow], direct: Sequence[VerifyRow]) -> str:
        texts: list[str] = []
        if direct:
            ways = list(dict.fromkeys(w for r in direct for w in r.ways_out))
            texts.append(remedies.verify_bypass(ways, self.node_vswitches, self.gateway_vswitches))
        texts += [r.remedy for r in via if r.remedy]
        gateway_rows = [r for r in self.rows if r.path != DIRECT]
        # Every route is an ExternalName one: all of them 503 also fits a gateway that does
        # not resolve ExternalName Services, which SNAT cannot fix.
        if via and all(r.status == 503 for r in gateway_rows):
            texts.append(remedies.verify_all_503(self.gateway_vswitches, self.snat_entry_name))
        elif any(r.status == 503 for r in via):
            texts.append(remedies.verify_503(self.gateway_vswitches, self.snat_entry_name))
        elif via and not any(r.remedy for r in via):
            texts.append(remedies.verify_failed())
        return "\n".join(dict.fromkeys(texts))


def fix_for(row: VerifyRow) -> str:
    """What to do when a row failed: its own fix, else by HTTP status (naming the step)."""
    if row.ok:
        return ""
    if row.fix:
        return row.fix
    if row.path == DIRECT:
        return (
            "close the nodes' own way out (the step's error says how): pods must egress "
            "only through the gateway"
        )
    if row.status is None:
        return (
            "no answer from the CLB address: check that the MseIngressConfig is Listening "
            "(02-create-gateway) and the Ingress address (05-ingress-routes)"
        )
    if row.status == 404:
        return "no route for this host and path: run 05-ingress-routes (and 04-external-services)"
    if row.status in (502, 503, 504):
        return (
            "the gateway could not reach the destination: check the SNAT entry for the gateway "
            "vSwitch (run 03-configure-snat)"
        )
    return "the destination answered with an error: check destinations[].path and port"
