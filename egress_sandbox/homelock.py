"""One sandbox per home: an exclusive ``flock`` on ``<home>/sandbox.lock``, held while it runs.

Two sandboxes on one home overwrite each other's ``sandbox.json`` and ``kubeconfig``, and the
one stopped last overwrites ``state.json`` with its own world (a ConfigMap created in the other
one disappears). So ``Sandbox.start`` takes this lock before it touches anything in the home,
and only the holder writes ``state.json``. The kernel releases a ``flock`` when its holder
exits, however it exits, so a lock is never stale; the file stays (unlinking a lock file lets
a waiter lock the old inode while a newcomer locks a new one). The holder writes its pid into
the file, so a refused process can name the owner.

``flock`` locks belong to an open file description, not to a process: a second ``Sandbox`` in
the same process is refused too, and a probe from the owner's own process does not drop the
lock (as closing any descriptor of a POSIX ``fcntl`` lock would).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from typing_extensions import Self

LOCK_FILE = "sandbox.lock"
# `egress-sandbox up` commands on one home take turns on this one (see cli/process.py).
UP_LOCK_FILE = "up.lock"

# A probe (owner()) holds the lock for microseconds; whoever meets one keeps trying this long.
ACQUIRE_SECONDS = 1.0
_RETRY_SECONDS = 0.02


class HomeInUse(RuntimeError):
    """The home's lock is held by another owner (another process, or another Sandbox here)."""

    def __init__(self, home: Path, pid: int, what: str = "a sandbox") -> None:
        self.home = home
        self.pid = pid
        if pid == os.getpid():
            who = f"another Sandbox in this process (pid {pid})"
        elif pid > 0:
            who = f"process {pid}"
        else:
            who = "a process that has not written its pid yet"
        super().__init__(
            f"{home} already has {what}: {who} owns it for as long as it runs. Use it "
            f"(egress-sandbox --home {home} status), or stop it first "
            f"(egress-sandbox --home {home} down)"
        )


class OwnerLock:
    """An exclusive, non-blocking ``flock`` on ``path`` that records its holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_seconds: float = ACQUIRE_SECONDS, what: str = "a sandbox") -> Self:
        """Take the lock, or raise HomeInUse naming the holder after ``wait_seconds``."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise HomeInUse(self.path.parent, pid, what) from None
                time.sleep(_RETRY_SECONDS)  # flock has no timed wait
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor of the description releases the flock

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class HomeLock(OwnerLock):
    """The lock that makes a process the owner of a sandbox home."""

    def __init__(self, home: Path) -> None:
        super().__init__(home / LOCK_FILE)

    def check(self, home: Path) -> None:
        """Raise unless this process holds the lock of ``home``."""
        if not self.held or self.path.parent.resolve() != home.resolve():
            raise RuntimeError(
                f"{home}: only the process that owns the home ({LOCK_FILE}) may write its state"
            )


def owner(home: Path, name: str = LOCK_FILE) -> int | None:
    """The pid holding ``<home>/<name>``, 0 when it holds it without a pid yet; None when free."""
    try:
        fd = os.open(home / name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            # Shared: probes never block each other; an owner starting meanwhile retries.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        return None  # closing fd below releases the probe's shared lock
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    # The owner writes its pid right after taking the lock; give it a moment.
    deadline = time.monotonic() + ACQUIRE_SECONDS
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return 0
        time.sleep(_RETRY_SECONDS)
