"""The run history: every run folder under a root, finding one run, marking killed runs.

Split from :mod:`egress_lib.records` (module size), which keeps thin wrappers of these
functions so that ``records.list_runs`` and the rest keep working.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from pathlib import Path

from egress_lib.errors import EgressError
from egress_lib.records import (
    KILLED_MESSAGE,
    RECORD_FILE,
    RunRecord,
    _check_cluster_name,
    _iso,
    _parse_time,
)

log = logging.getLogger("egress_lib.records")


def _pid_alive(pid: int) -> bool:
    """False only when ``pid`` certainly does not exist on this host."""
    if pid <= 0:
        return True  # unknown: never declare it dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _record_files(root: Path, cluster_name: str | None) -> list[Path]:
    cluster = _check_cluster_name(cluster_name) if cluster_name is not None else "*"
    return sorted(Path(root).glob(f"{cluster}/*/{RECORD_FILE}"))


def _sort_key(record: RunRecord) -> tuple[dt.datetime, str]:
    t = _parse_time(record.started) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return t, record.run_id


def list_runs(root: Path, cluster_name: str | None = None) -> list[RunRecord]:
    """Every run under ``root`` (or one cluster's), newest first; unreadable ones are skipped."""
    records = []
    for file in _record_files(root, cluster_name):
        try:
            records.append(RunRecord.load(file))
        except EgressError as e:
            log.warning("skipping %s", e)
    return sorted(records, key=_sort_key, reverse=True)


def mark_killed(root: Path, cluster_name: str | None = None) -> list[RunRecord]:
    """Mark ``killed`` every ``running`` record of this host whose process is gone.

    ``ended`` becomes run.json's modification time (its last sign of life). Records from
    other hosts are left alone. Returns the records changed.
    """
    host = socket.gethostname()
    changed = []
    for record in list_runs(root, cluster_name):
        if record.status != "running" or record.host != host or _pid_alive(record.pid):
            continue
        try:
            mtime = record.path.stat().st_mtime
        except OSError:
            continue
        ended = _iso(dt.datetime.fromtimestamp(mtime, dt.timezone.utc))
        record._close_running_steps(ended)
        record.status = "killed"
        record.ended = ended
        record.message = KILLED_MESSAGE
        record.write()
        changed.append(record)
    return changed


def _label(record: RunRecord) -> str:
    return f"{record.cluster_name}/{record.run_id}"


def find_run(root: Path, ref: str) -> RunRecord:
    """The run ``ref`` names: a run id, a unique prefix or suffix of one, or a run folder."""
    ref = ref.strip()
    if not ref:
        raise EgressError("name a run: its id, a unique prefix or suffix of it, or its folder")
    for candidate in (Path(ref), Path(root) / ref):
        if (candidate / RECORD_FILE).is_file() or (
            candidate.name == RECORD_FILE and candidate.is_file()
        ):
            return RunRecord.load(candidate)
    runs = list_runs(root)
    exact = [r for r in runs if r.run_id == ref or _label(r) == ref]
    matches = exact or [r for r in runs if r.run_id.startswith(ref) or r.run_id.endswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        recent = "".join(f"\n  {_label(r)}" for r in runs[:10])
        hint = f" Recent runs:{recent}" if runs else " There are no runs there yet."
        raise EgressError(f"no run under {root} matches {ref!r}.{hint}")
    listing = "".join(f"\n  {_label(r)}  {r.status}" for r in matches)
    raise EgressError(
        f"{ref!r} matches {len(matches)} runs under {root}; give more of the id:{listing}"
    )
