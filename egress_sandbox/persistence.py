"""``<home>/state.json``: the sandbox's world, saved on stop and loaded on start.

A real cluster and a real cloud account outlive a laptop's ``down``/``up``; so does the sandbox.
Saved: the Kubernetes objects and resourceVersion counter, the CloudState, the IdFactory's
stream positions (so new IDs never repeat saved ones), the bearer tokens and the CA (so the
kubeconfig and ``ca.pem`` that clients hold stay valid), and the ports last served (reused
when still free, so a client built before the restart may even keep its endpoint).
Not saved, on purpose: faults, stuck holds and run-time transition modes (they belong to one
run), pending scheduler jobs (resumed from the saved phases instead), running curl pods.

The file holds the CA key, the tokens and the AccessKey secrets (random per home, see
``core/credentials.py``): it is written 0600, atomically (temp file + rename), so a crash
mid-write leaves the previous state intact, and only by the process that owns the home
(``homelock.py``): a second process on the same home once overwrote it with its own world.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egress_sandbox.homelock import HomeLock

STATE_FILE = "state.json"
FORMAT = 1


@dataclass(frozen=True)
class SavedState:
    ids: dict[str, Any]
    tokens: dict[str, str]
    ca: dict[str, str]
    ports: dict[str, int]
    k8s: dict[str, Any]
    cloud: dict[str, Any]


class StateError(Exception):
    """state.json exists but cannot be used (another format, or damaged)."""


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def save(home: Path, state: SavedState, lock: HomeLock) -> Path:
    """Write state.json; ``lock`` must be the home's, held by this process."""
    lock.check(home)
    data = {
        "format": FORMAT,
        "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "ids": state.ids,
        "tokens": state.tokens,
        "ca": state.ca,
        "ports": state.ports,
        "k8s": state.k8s,
        "cloud": state.cloud,
    }
    path = state_path(home)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())  # the rename must not publish a file still in the page cache
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(home: Path) -> SavedState | None:
    """The saved state, or None when there is none; StateError when it cannot be used."""
    path = state_path(home)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path} is damaged ({exc}); run `egress-sandbox reset`") from exc
    if data.get("format") != FORMAT:
        raise StateError(
            f"{path} has format {data.get('format')!r}, expected {FORMAT}; "
            "run `egress-sandbox reset`"
        )
    try:
        return SavedState(
            ids=data["ids"],
            tokens=data["tokens"],
            ca=data["ca"],
            ports={k: int(v) for k, v in data.get("ports", {}).items()},
            k8s=data["k8s"],
            cloud=data["cloud"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{path} lacks {exc}; run `egress-sandbox reset`") from exc


def wipe(home: Path) -> None:
    """Forget the world (``egress-sandbox reset``): the state and the audit log.

    Raises HomeInUse while a sandbox owns the home: it would save its world again on stop.
    """
    with HomeLock(home):
        for name in (STATE_FILE, "audit.jsonl"):
            (home / name).unlink(missing_ok=True)
