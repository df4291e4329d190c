"""Which code made a run and who ran it: the package version, the git revision, the OS user.

Split from :mod:`egress_lib.records`, which re-exports these names (tests replace
``records.git_revision``).
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import subprocess
from pathlib import Path

PACKAGE = "mse-egress-runbook"
GIT_TIMEOUT = 2.0
# The checkout this package runs from (only meaningful for a source/editable install).
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _git(repo: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=True,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def git_revision(repo: Path | None = None) -> tuple[str | None, bool]:
    """(short HEAD, dirty) of the checkout this package runs from; (None, False) if none.

    The package folder's parent must be the top of the work tree: an install into a
    virtualenv that happens to sit inside some other checkout reports no revision.
    """
    repo = repo or _PACKAGE_ROOT
    out = _git(repo, "rev-parse", "--show-toplevel", "--short", "HEAD")
    lines = (out or "").splitlines()
    if len(lines) != 2:
        return None, False
    top, rev = lines
    try:
        if Path(top).resolve() != repo.resolve():
            return None, False
    except OSError:
        return None, False
    status = _git(repo, "status", "--porcelain")
    return rev.strip() or None, bool(status and status.strip())


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return str(os.getuid())
