"""The run record (``run.json``); its summary is :mod:`egress_lib.run_reports`, the history of
runs :mod:`egress_lib.run_history`, who ran which code :mod:`egress_lib.provenance`.

Every ``egress-runbook run``/``plan``/``teardown`` gets a folder of its own::

    <root>/<cluster_name>/<UTC %Y%m%dT%H%M%SZ>-<6 hex>/
        run.json      what ran, who ran it, with what, how each step ended (this module)
        summary.md    the same for people who do not open notebooks (egress_lib.run_reports)
        verify.json   the verify step's rows, when it ran (egress_lib.steps.verify)
        retries.jsonl one line per API call retried (egress_lib.retry), by step
        *.ipynb       the executed notebooks (the runner)

``run.json`` is rewritten atomically after every change, so a run that is killed leaves a
readable record whose status is still ``running``; :func:`mark_killed` finds those (same host,
process gone) and marks them ``killed``. Nothing written here ever holds credentials:
:meth:`RunRecord.write` passes the record through :func:`scrub` first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress_lib.errors import EgressError
from egress_lib.plan import CHANGING

# Called through this module's names: tests replace records.git_revision, and run_reports and
# the CLI use records.scrub and records.package_version.
from egress_lib.provenance import git_revision as git_revision  # noqa: PLC0414 - re-exported
from egress_lib.provenance import os_user as os_user  # noqa: PLC0414
from egress_lib.provenance import package_version as package_version  # noqa: PLC0414
from egress_lib.scrubbing import scrub as scrub  # noqa: PLC0414 - re-exported

log = logging.getLogger(__name__)

RECORD_FILE = "run.json"
RUNS_DIR_ENV = "EGRESS_RUNS_DIR"
SUMMARY_FILE = "summary.md"
VERIFY_FILE = "verify.json"
SCHEMA = 1

# "notebook": a step applied from its notebook's Apply button in JupyterLab.
COMMANDS: tuple[str, ...] = ("run", "plan", "teardown", "notebook")
# "running" until finish(); the others are final.
RUN_STATUSES: tuple[str, ...] = ("running", "ok", "failed", "plan-only", "interrupted", "killed")
# "running" is transient (begun, not ended); finish() and mark_killed() turn a step still
# running into "interrupted".
STEP_STATUSES: tuple[str, ...] = (
    "running",
    "ok",
    "failed",
    "planned",
    "skipped",
    "not-approved",
    "interrupted",
)
KILLED_MESSAGE = "the process ended without finishing its record (killed?)"

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
_ID_ATTEMPTS = 50


# --- small helpers (module level so that tests can replace the clock and the id source) ---


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _short_id() -> str:
    return secrets.token_hex(3)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _parse_time(text: str | None) -> dt.datetime | None:
    """An aware datetime from our ISO 8601 text (or an older record's folder stamp)."""
    if not text:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            t = dt.datetime.strptime(text, STAMP_FORMAT)
        except ValueError:
            return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = _parse_time(start), _parse_time(end)
    return None if a is None or b is None else max(0.0, (b - a).total_seconds())


def canonical_sha256(parameters: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of ``parameters`` (sorted keys, no whitespace)."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain_list(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Change dicts as plain dicts (dataclass instances such as plan.Change are accepted)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            out.append(dataclasses.asdict(item))
        else:
            out.append(dict(item))
    return out


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value


# --- the record ---


@dataclass
class StepRecord:
    """How one step (one notebook) went."""

    step: str
    status: str  # one of STEP_STATUSES
    started: str = ""  # UTC ISO 8601
    ended: str | None = None
    seconds: float = 0.0
    output: str | None = None  # the executed notebook
    error: str = ""  # "ExceptionName: message" when it failed
    # The plan: change dicts {action, kind, name, namespace, detail}.
    plan: list[dict[str, Any]] = field(default_factory=list)
    # What was changed, with the IDs created/changed (e.g. {"action": "create", ..., "id": ...}).
    applied: list[dict[str, Any]] = field(default_factory=list)
    # One {product, action, request_id} per mutating Alibaba Cloud call.
    request_ids: list[dict[str, str]] = field(default_factory=list)
    # API calls retried while the step planned and ran, by reason (egress_lib.retry).
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def planned_changes(self) -> list[dict[str, Any]]:
        """The plan's entries that would create, update or delete something."""
        return [c for c in self.plan if c.get("action") in CHANGING]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRecord:
        return cls(
            step=str(data.get("step", "")),
            status=str(data.get("status", "")),
            started=str(data.get("started") or ""),
            ended=data.get("ended"),
            seconds=float(data.get("seconds") or 0.0),
            output=data.get("output"),
            error=str(data.get("error") or ""),
            plan=[dict(c) for c in data.get("plan") or []],
            applied=[dict(c) for c in data.get("applied") or []],
            request_ids=[dict(r) for r in data.get("request_ids") or []],
            retries={str(k): int(v) for k, v in dict(data.get("retries") or {}).items()},
        )


@dataclass
class RunRecord:
    """One run: who ran what, with which parameters and code, and how each step ended."""

    run_id: str  # the run folder's name
    cluster_name: str
    command: str  # one of COMMANDS
    out_dir: str  # the run folder
    started: str  # UTC ISO 8601
    parameters_file: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    parameters_sha256: str = ""
    version: str = "unknown"
    git_rev: str | None = None
    dirty: bool = False
    user: str = ""
    host: str = ""
    pid: int = 0
    ended: str | None = None
    status: str = "running"  # one of RUN_STATUSES
    failed_step: str | None = None
    message: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    schema: int = SCHEMA
    # Who said yes, when, and how: {"by": user, "at": UTC ISO, "via": "--approve" | ...}.
    approval: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """This record's run.json."""
        return Path(self.out_dir) / RECORD_FILE

    @property
    def seconds(self) -> float | None:
        """Wall time from start to end; None while running."""
        return _seconds_between(self.started, self.ended)

    def step(self, name: str) -> StepRecord | None:
        """The last record of step ``name``."""
        return next((s for s in reversed(self.steps) if s.step == name), None)

    def add_step(
        self,
        step: str,
        status: str,
        *,
        started: str | None = None,
        ended: str | None = None,
        seconds: float | None = None,
        output: str | None = None,
        error: str = "",
        plan: Iterable[Any] = (),
        applied: Iterable[Any] = (),
        request_ids: Iterable[Mapping[str, str]] = (),
        retries: Mapping[str, int] | None = None,
        write: bool = True,
    ) -> StepRecord:
        """Append a step and (by default) rewrite run.json.

        ``status="running"`` starts a step (finish it with :meth:`update_step`); any other
        status records a finished one: ``ended`` defaults to now, ``started`` to ``ended``
        minus ``seconds``, and ``seconds`` to the time between the two.
        """
        _check(status, STEP_STATUSES, "step status")
        now = _now()
        if status != "running" and ended is None:
            ended = _iso(now)
        if started is None:
            end_t = _parse_time(ended) if ended else now
            assert end_t is not None
            started = _iso(end_t - dt.timedelta(seconds=seconds or 0.0))
        if seconds is None:
            seconds = _seconds_between(started, ended) or 0.0
        record = StepRecord(
            step=step,
            status=status,
            started=started,
            ended=ended,
            seconds=float(seconds),
            output=output,
            error=error,
            plan=_plain_list(plan),
            applied=_plain_list(applied),
            request_ids=[dict(r) for r in request_ids],
            retries=dict(retries or {}),
        )
        self.steps.append(record)
        if write:
            self.write()
        return record

    def update_step(
        self,
        step: str,
        *,
        status: str | None = None,
        ended: str | None = None,
        seconds: float | None = None,
        output: str | None = None,
        error: str | None = None,
        plan: Iterable[Any] | None = None,
        applied: Iterable[Any] | None = None,
        request_ids: Iterable[Mapping[str, str]] | None = None,
        retries: Mapping[str, int] | None = None,
        write: bool = True,
    ) -> StepRecord:
        """Change the last record of ``step`` (given fields only) and rewrite run.json.

        Moving a step from ``running`` to a final status sets ``ended`` (now) and ``seconds``
        unless given. ``plan``/``applied``/``request_ids``/``retries`` replace what was there.
        """
        rec = self.step(step)
        if rec is None:
            raise ValueError(f"run {self.run_id} has no step {step!r}")
        if status is not None:
            _check(status, STEP_STATUSES, "step status")
            if rec.status == "running" and status != "running" and ended is None:
                ended = _iso(_now())
            if status == "running" and rec.status != "running":
                rec.started = _iso(_now())  # a step planned early starts when it runs
            rec.status = status
        if ended is not None:
            rec.ended = ended
            if seconds is None:
                seconds = _seconds_between(rec.started, ended)
        if seconds is not None:
            rec.seconds = float(seconds)
        if output is not None:
            rec.output = output
        if error is not None:
            rec.error = error
        if plan is not None:
            rec.plan = _plain_list(plan)
        if applied is not None:
            rec.applied = _plain_list(applied)
        if request_ids is not None:
            rec.request_ids = [dict(r) for r in request_ids]
        if retries is not None:
            rec.retries = dict(retries)
        if write:
            self.write()
        return rec

    def _close_running_steps(self, ended: str) -> None:
        for s in self.steps:
            if s.status == "running":
                s.status = "interrupted"
                s.ended = ended
                s.seconds = _seconds_between(s.started, ended) or s.seconds

    def finish(self, status: str, *, failed_step: str | None = None, message: str = "") -> None:
        """End the run: set ``ended`` (now), ``status``, the failing step, and write.

        When ``status`` is ``failed`` and no ``failed_step`` is given, the first step whose
        status is ``failed`` is named. Steps still ``running`` become ``interrupted``.
        """
        _check(status, RUN_STATUSES, "run status")
        if status == "running":
            raise ValueError("finish() needs a final status, not 'running'")
        self.ended = _iso(_now())
        self._close_running_steps(self.ended)
        if failed_step is None and status == "failed":
            failed = next((s for s in self.steps if s.status == "failed"), None)
            failed_step = failed.step if failed else None
        self.status = status
        self.failed_step = failed_step
        self.message = message
        self.write()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, out_dir: str | None = None) -> RunRecord:
        """Build from run.json's content; missing fields (older records) get defaults."""
        folder = out_dir or str(data.get("out_dir") or "")
        return cls(
            run_id=str(data.get("run_id") or Path(folder).name),
            cluster_name=str(data.get("cluster_name") or Path(folder).parent.name),
            command=str(data.get("command") or "run"),
            out_dir=folder,
            started=str(data.get("started") or ""),
            parameters_file=data.get("parameters_file"),
            parameters=dict(data.get("parameters") or {}),
            parameters_sha256=str(data.get("parameters_sha256") or ""),
            version=str(data.get("version") or "unknown"),
            git_rev=data.get("git_rev"),
            dirty=bool(data.get("dirty", False)),
            user=str(data.get("user") or ""),
            host=str(data.get("host") or ""),
            pid=int(data.get("pid") or 0),
            ended=data.get("ended"),
            status=str(data.get("status") or "running"),
            failed_step=data.get("failed_step"),
            message=str(data.get("message") or ""),
            steps=[StepRecord.from_dict(s) for s in data.get("steps") or []],
            schema=int(data.get("schema") or SCHEMA),
            approval={str(k): str(v) for k, v in dict(data.get("approval") or {}).items()},
        )

    @classmethod
    def load(cls, path: Path | str) -> RunRecord:
        """Read a run folder's run.json (``path`` is the folder or the file itself).

        ``out_dir`` becomes the folder it was read from, wherever it was written.
        """
        path = Path(path)
        file = path if path.name == RECORD_FILE and not path.is_dir() else path / RECORD_FILE
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EgressError(f"no run record at {file}") from None
        except (OSError, ValueError) as e:
            raise EgressError(f"cannot read the run record {file}: {e}") from e
        if not isinstance(data, dict):
            raise EgressError(f"{file} is not a run record (not a JSON object)")
        return cls.from_dict(data, out_dir=str(file.parent))

    def write(self) -> Path:
        """Write run.json (scrubbed, indent=2) atomically: a temporary file, then os.replace."""
        folder = Path(self.out_dir)
        text = json.dumps(scrub(self.to_dict()), indent=2, default=str) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path


def runs_root() -> Path:
    """Where run folders go: ``$EGRESS_RUNS_DIR``, else ``runs/`` in the working directory."""
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def approval(via: str) -> dict[str, str]:
    """An approval by this OS user, now, given ``via`` (``--approve``, a prompt, a button)."""
    return {"by": os_user(), "at": _now().strftime("%Y-%m-%dT%H:%M:%SZ"), "via": via}


def _check_cluster_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise ValueError(f"cluster name {name!r} cannot name a folder")
    return name


def new_run(
    root: Path,
    cluster_name: str,
    *,
    command: str,
    parameters: dict[str, object],
    parameters_file: str | None,
) -> RunRecord:
    """Create ``<root>/<cluster_name>/<UTC stamp>-<short id>/`` and its run.json (running).

    ``parameters`` are the validated, secret-free values the run uses. The folder is created
    with exist_ok=False, so two runs in the same second never share one.
    """
    _check(command, COMMANDS, "command")
    base = Path(root) / _check_cluster_name(cluster_name)
    base.mkdir(parents=True, exist_ok=True)
    for _ in range(_ID_ATTEMPTS):
        now = _now()
        run_id = f"{now.strftime(STAMP_FORMAT)}-{_short_id()}"
        folder = base / run_id
        try:
            folder.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        break
    else:
        raise EgressError(f"could not create a new run folder under {base}")
    rev, dirty = git_revision()
    record = RunRecord(
        run_id=run_id,
        cluster_name=cluster_name,
        command=command,
        out_dir=str(folder),
        started=_iso(now),
        parameters_file=parameters_file,
        parameters=dict(parameters),
        parameters_sha256=canonical_sha256(parameters),
        version=package_version(),
        git_rev=rev,
        dirty=dirty,
        user=os_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    record.write()
    return record


# --- the history (egress_lib.run_history, which imports this module: imported when called) ---


def list_runs(root: Path, cluster_name: str | None = None) -> list[RunRecord]:
    """Every run under ``root`` (or one cluster's), newest first; unreadable ones are skipped."""
    from egress_lib import run_history

    return run_history.list_runs(root, cluster_name)


def mark_killed(root: Path, cluster_name: str | None = None) -> list[RunRecord]:
    """Mark ``killed`` every ``running`` record of this host whose process is gone."""
    from egress_lib import run_history

    return run_history.mark_killed(root, cluster_name)


def find_run(root: Path, ref: str) -> RunRecord:
    """The run ``ref`` names: a run id, a unique prefix or suffix of one, or a run folder."""
    from egress_lib import run_history

    return run_history.find_run(root, ref)
