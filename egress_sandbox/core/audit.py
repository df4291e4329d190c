"""Every request to any sandbox API, recorded: how tests prove that a re-run changed nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class AuditRecord:
    time: str
    api: str  # k8s | vpc | slb | cs | control
    principal: str
    action: str  # RPC action, CS action name, or the k8s verb
    path: str
    mutating: bool
    status: int
    request_id: str = ""
    error_code: str = ""


class AuditLog:
    """An in-memory list of records, appended as JSON lines to a file when one is given."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._records: list[AuditRecord] = []
        self._path = path

    def record(
        self,
        *,
        api: str,
        principal: str,
        action: str,
        path: str,
        mutating: bool,
        status: int,
        request_id: str = "",
        error_code: str = "",
    ) -> AuditRecord:
        rec = AuditRecord(
            time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
            api=api,
            principal=principal,
            action=action,
            path=path,
            mutating=mutating,
            status=status,
            request_id=request_id,
            error_code=error_code,
        )
        with self._lock:
            self._records.append(rec)
            if self._path is not None:
                with self._path.open("a") as f:
                    f.write(json.dumps(asdict(rec)) + "\n")
        return rec

    def records(
        self, *, since: str | None = None, mutating: bool | None = None
    ) -> list[AuditRecord]:
        with self._lock:
            out = list(self._records)
        if since:
            out = [r for r in out if r.time >= since]
        if mutating is not None:
            out = [r for r in out if r.mutating == mutating]
        return out

    def load(self) -> None:
        """Read back the records of earlier runs from the file (after a restart)."""
        if self._path is None or not self._path.exists():
            return
        loaded = []
        for line in self._path.read_text().splitlines():
            try:
                loaded.append(AuditRecord(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line torn by a crash mid-write: skip it, keep the rest
        with self._lock:
            self._records[:0] = loaded

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            if self._path is not None and self._path.exists():
                self._path.write_text("")
