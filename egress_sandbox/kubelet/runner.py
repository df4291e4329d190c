"""Runs one curl container as a subprocess of the real curl, cut off from the host network.

Inside ``unshare --net`` (an empty network namespace) the pod's UNIX socket into the pod
network is the only way out. Names go to the pod network unresolved (``socks5h://``), which
answers them as the cluster's DNS and the internet would; ``--connect-to`` works so too (curl
hands the proxy its target). Only ``--resolve`` needs curl to resolve names itself
(``socks5://``): then, with ``--mount`` as well, /etc/resolv.conf is replaced by one naming
127.0.0.1 and /etc/hosts by the names the cluster's DNS answers, so a name curl resolves
itself never makes it open a socket to the host's real resolver (in the empty namespace that
connect fails at once with "network unreachable"); public names do not resolve in such an
invocation.
Without unshare (unprivileged hosts) curl is always given ``socks5h://``, so it resolves
nothing itself; ``--resolve`` is then not honoured (documented limitation).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

CURL = "/usr/bin/curl"
# $1 replaces /etc/resolv.conf, $2 /etc/hosts: the names the cluster's DNS would answer.
_NS_WRAPPER = (
    'mount --bind "$1" /etc/resolv.conf 2>/dev/null; mount --bind "$2" /etc/hosts 2>/dev/null;'
    ' shift 2; exec "$@"'
)
# An empty network namespace with a private mount namespace, running a shell command in it.
_UNSHARE_NET_MOUNT = ["--net", "--mount", "--propagation", "private", "/bin/sh", "-c"]


@dataclass(frozen=True)
class Isolation:
    net: bool  # unshare --net works
    mount: bool  # unshare --mount + bind mount over /etc/resolv.conf works


def _ok(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def probe_isolation(resolv: Path) -> Isolation:
    unshare = shutil.which("unshare")
    if unshare is None or not _ok([unshare, "--net", "true"]):
        return Isolation(False, False)
    mount = _ok([unshare, *_UNSHARE_NET_MOUNT, 'mount --bind "$0" /etc/resolv.conf', str(resolv)])
    return Isolation(True, mount)


@dataclass
class Result:
    exit_code: int
    output: str
    timed_out: bool
    killed: bool


class CurlProcess:
    """One run of curl; ``kill()`` may be called from any thread."""

    def __init__(
        self,
        args: list[str],
        *,
        podnet_socket: Path,
        isolation: Isolation,
        resolv: Path,
        ca_bundle: Path | None = None,
        hosts: Path | None = None,
        resolve_locally: bool = False,
    ) -> None:
        self._home = Path(tempfile.mkdtemp(prefix="curl-home-"))
        scheme = "socks5" if isolation.net and resolve_locally else "socks5h"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self._home),
            # curl >= 7.84: a SOCKS proxy on a UNIX socket is socks5://localhost/<abs path>.
            "ALL_PROXY": f"{scheme}://localhost{podnet_socket}",
        }
        if ca_bundle is not None:
            env["CURL_CA_BUNDLE"] = str(ca_bundle)  # pods trust the sandbox CA like a real CA
        # -q first: no curlrc is read, so nothing outside the argv can change the proxy.
        argv = [CURL, "-q", *args]
        if isolation.net and isolation.mount:
            etc_hosts = str(hosts or "/etc/hosts")
            argv = [
                "unshare",
                *_UNSHARE_NET_MOUNT,
                _NS_WRAPPER,
                "sh",
                str(resolv),
                etc_hosts,
                *argv,
            ]
        elif isolation.net:
            argv = ["unshare", "--net", *argv]
        self._argv = argv
        self._env = env
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False

    def run(self, deadline: float) -> Result:
        """Run to completion or until ``deadline`` (seconds from now); always reaps the child."""
        with self._lock:
            if self._killed:
                return Result(137, "", False, True)
            self._proc = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self._home,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self._proc
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=max(0.0, deadline))
        except subprocess.TimeoutExpired:
            timed_out = True
            self._signal(proc)
            out, _ = proc.communicate(timeout=10)
        finally:
            shutil.rmtree(self._home, ignore_errors=True)
        code = proc.returncode
        if code < 0:
            code = 128 - code  # killed by a signal: the container runtime reports 128+n
        return Result(code, out.decode("utf-8", "replace"), timed_out, self._killed)

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            proc = self._proc
        if proc is not None:
            self._signal(proc)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
