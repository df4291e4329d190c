"""The run record for people: ``egress-runbook runs`` tables, one run in full, ``summary.md``."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from egress_lib.records import (
    SUMMARY_FILE,
    VERIFY_FILE,
    RunRecord,
    StepRecord,
    _parse_time,
    scrub,
)


def format_duration(seconds: float | None) -> str:
    """kubectl-like: 45s, 3m12s, 1h02m; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _short_time(text: str | None) -> str:
    t = _parse_time(text)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t else "-"


def _one_line(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _planned_count(record: RunRecord) -> int:
    return sum(
        len(s.planned_changes) for s in record.steps if s.status in ("planned", "not-approved")
    )


def _note(record: RunRecord) -> str:
    step = record.step(record.failed_step) if record.failed_step else None
    message = record.message or (step.error if step else "")
    if record.status == "plan-only" and not message:
        message = f"{_planned_count(record)} change(s) not applied"
    parts = [p for p in (record.failed_step, _one_line(message)) if p]
    return ": ".join(parts)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def format_runs(records: Sequence[RunRecord]) -> str:
    """A kubectl-style table of runs (left-aligned columns, two spaces apart)."""
    if not records:
        return "No runs found."
    head = ["RUN", "CLUSTER", "COMMAND", "STATUS", "STARTED", "DURATION", "FAILED STEP / NOTE"]
    rows = [head] + [
        [
            r.run_id,
            r.cluster_name,
            r.command,
            r.status,
            _short_time(r.started),
            format_duration(r.seconds),
            _note(r),
        ]
        for r in records
    ]
    return _table(rows)


_CHANGE_KEYS = ("action", "kind", "name", "namespace", "detail")
# Kept in run.json for auditors, too long or too technical for a one-line summary.
_QUIET_KEYS = ("body", "fingerprint")


def _value_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def format_change(change: Mapping[str, Any]) -> str:
    """``create Pod ns/name: detail  id=...`` from a change dict; extra keys as key=value."""
    ns, name = change.get("namespace"), change.get("name") or ""
    target = f"{ns}/{name}" if ns else str(name)
    text = " ".join(str(x) for x in (change.get("action"), change.get("kind"), target) if x)
    if change.get("detail"):
        text += f": {change['detail']}"
    extras = [
        f"{k}={_value_text(v)}"
        for k, v in change.items()
        if k not in _CHANGE_KEYS + _QUIET_KEYS and v not in (None, "", [], {})
    ]
    return "  ".join([text, *extras]) if extras else text


def _request_text(req: Mapping[str, Any]) -> str:
    return f"{req.get('product', '?')}:{req.get('action', '?')} {req.get('request_id', '')}"


def retries_text(retries: Mapping[str, int]) -> str:
    """``5 (Throttling.User x4, HTTP 503 x1)``: how many API calls were retried, and why."""
    total = sum(retries.values())
    reasons = ", ".join(f"{r} x{n}" for r, n in sorted(retries.items(), key=lambda x: -x[1]))
    return f"{total} ({reasons})" if total else "0"


def _approval_text(approval: Mapping[str, str]) -> str:
    if not approval:
        return ""
    who, via = approval.get("by", "?"), approval.get("via", "?")
    return f"by {who} at {_short_time(approval.get('at'))} ({via})"


def format_run(record: RunRecord) -> str:
    """One run in full: the header, then every step with its plan, changes and request IDs."""
    status = record.status + (f" at {record.failed_step}" if record.failed_step else "")
    rev = record.git_rev or "no git checkout"
    if record.git_rev and record.dirty:
        rev += ", dirty"
    header = [
        ("Run", record.run_id),
        ("Cluster", record.cluster_name),
        ("Command", record.command),
        ("Status", status),
        ("Message", record.message),
        ("By", f"{record.user}@{record.host} (pid {record.pid})"),
        ("Approved", _approval_text(record.approval)),
        ("Started", _short_time(record.started)),
        ("Ended", _short_time(record.ended) if record.ended else "-"),
        ("Duration", format_duration(record.seconds)),
        ("Parameters", record.parameters_file or "-"),
        ("Parameters sha256", record.parameters_sha256),
        ("Version", f"{record.version} (git {rev})"),
        ("Folder", record.out_dir),
    ]
    width = max(len(k) for k, _ in header) + 2
    lines = [
        f"{(k + ':').ljust(width)}{v}".rstrip()
        for k, v in header
        if v or k not in ("Message", "Approved")
    ]
    lines += ["", "Steps:" if record.steps else "Steps: none recorded"]
    for s in record.steps:
        lines.append(f"  {s.step}  {s.status}  {s.seconds:.1f}s")
        if s.output:
            lines.append(f"    output: {s.output}")
        if s.plan:
            lines.append("    plan:")
            lines += [f"      - {format_change(c)}" for c in s.plan]
        if s.applied:
            lines.append("    applied:")
            lines += [f"      - {format_change(c)}" for c in s.applied]
        if s.request_ids:
            lines.append("    request ids:")
            lines += [f"      - {_request_text(r)}" for r in s.request_ids]
        if s.retries:
            lines.append(f"    retries: {retries_text(s.retries)}")
        if s.error:
            first, *rest = s.error.splitlines() or [""]
            lines.append(f"    error: {first}")
            lines += [f"      {line}" for line in rest]
    verify = read_verify(Path(record.out_dir)) if record.out_dir else None
    if verify is not None:
        text = verify if isinstance(verify, str) else format_verify(verify)
        lines += ["", "Verify:", *(f"  {line}" for line in text.splitlines())]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(_value_text(value).split()).replace("|", "\\|")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [
        "| " + " | ".join(_cell(h) for h in head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]


def _fenced(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text.rstrip("\n"), fence]


# verify.json's keys as the summary shows them (egress_lib.steps.verify_rows.records): the
# rest (url, times, remote address) stays in the file.
VERIFY_COLUMNS = (
    "result",
    "destination",
    "path",
    "route",
    "http_status",
    "source_address",
    "expected_eip",
    "detail",
)


def read_verify(folder: Path) -> list[dict[str, Any]] | str | None:
    """verify.json's rows; a sentence when it cannot be read; None when there is none."""
    file = folder / VERIFY_FILE
    if not file.is_file():
        return None
    try:
        rows = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"{VERIFY_FILE} could not be read: {e}"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return f"{VERIFY_FILE} is not a list of rows."
    return rows


def verify_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns to show: :data:`VERIFY_COLUMNS` (and fix when a row failed) for verify's
    rows; every key, in first-seen order, for rows of another shape (an older verify.json)."""
    if rows and all("path" in r and "result" in r for r in rows):
        failed = any(r.get("result") == "fail" for r in rows)
        return [*VERIFY_COLUMNS, *(["fix"] if failed else [])]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return keys


def format_verify(rows: Sequence[Mapping[str, Any]]) -> str:
    """verify.json's rows as the terminal shows them after a run (columns two spaces apart)."""
    if not rows:
        return "No destinations were checked."
    keys = verify_columns(rows)
    table = [[k.upper().replace("_", " ") for k in keys]]
    table += [[_cell(r.get(k)).replace("\\|", "|") for k in keys] for r in rows]
    return _table(table)


def _verify_section(folder: Path) -> list[str]:
    rows = read_verify(folder)
    if rows is None:
        return []
    out = ["", "## Verify", ""]
    if isinstance(rows, str):
        return [*out, rows]
    if not rows:
        return [*out, "No destinations were checked."]
    keys = verify_columns(rows)
    return [*out, *_md_table(keys, [[row.get(k) for k in keys] for row in rows])]


def _changes_cell(step: StepRecord) -> str:
    if step.applied:
        return f"{len(step.applied)} applied"
    planned = len(step.planned_changes)
    if planned and step.status in ("planned", "not-approved", "failed", "interrupted"):
        return f"{planned} planned"
    return "-"


def write_summary(record: RunRecord) -> Path:
    """Write ``summary.md`` beside run.json: a page for people who do not open notebooks."""
    folder = Path(record.out_dir)
    who = f"{record.user}@{record.host}"
    rev = f", git {record.git_rev}" + (" (dirty)" if record.dirty else "") if record.git_rev else ""
    lines = [
        f"# {record.cluster_name}: {record.command} {record.status}",
        "",
        f"- Run: `{record.run_id}`",
        f"- When: {_short_time(record.started)}, took {format_duration(record.seconds)}",
        f"- Who: {who}",
        f"- Parameters: {record.parameters_file or '-'} (sha256 `{record.parameters_sha256}`)",
        f"- Version: {record.version}{rev}",
    ]
    if record.steps:
        rows = [[s.step, s.status, f"{s.seconds:.1f}", _changes_cell(s)] for s in record.steps]
        lines += ["", "## Steps", "", *_md_table(["Step", "Status", "Seconds", "Changes"], rows)]
    applied = [(s.step, c) for s in record.steps for c in s.applied]
    if applied:
        lines += ["", "## Changes applied", ""]
        lines += [f"- {step}: {format_change(c)}" for step, c in applied]
    retried = [s for s in record.steps if s.retries]
    if retried:
        lines += ["", "## Retries", "", "API calls retried (throttling, 5xx, resets), by step:", ""]
        lines += [f"- {s.step}: {retries_text(s.retries)}" for s in retried]
    lines += _verify_section(folder)
    failed = record.step(record.failed_step) if record.failed_step else None
    if record.status == "plan-only":
        n = _planned_count(record)
        lines += ["", f"Plan only: {n} change{'s' if n != 1 else ''} not applied."]
    elif failed is not None or record.status in ("failed", "interrupted", "killed"):
        title = f"## {record.status.capitalize()}" + (f" at {failed.step}" if failed else "")
        lines += ["", title, ""]
        if record.message:
            lines.append(record.message)
        if failed is not None and failed.error:
            lines += (["", *_fenced(failed.error)]) if record.message else _fenced(failed.error)
    path = folder / SUMMARY_FILE
    path.write_text(scrub("\n".join(lines) + "\n"), encoding="utf-8")
    return path
