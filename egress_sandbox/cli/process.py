"""``egress-sandbox up|down|status|env|reset|serve``: run the sandbox as one background process.

``down`` stops it with SIGTERM; the process then saves its world to ``state.json``, which the
next ``up`` loads. ``reset`` is the only command that forgets the world.

One sandbox per home: the process that runs it holds ``<home>/sandbox.lock`` (``homelock.py``),
and these commands find it through that lock, not through ``sandbox.json`` alone (which a
process that died or lost the race may have left). ``up`` commands on one home take turns
(``up.lock``), so a second ``up`` finds the first one's sandbox and reports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from egress_sandbox import persistence
from egress_sandbox.homelock import UP_LOCK_FILE, HomeInUse, HomeLock, OwnerLock, owner
from egress_sandbox.sandbox import SANDBOX_FILE

UP_DEADLINE_SECONDS = 60.0
# `serve` exits with this when another process owns the home.
HOME_IN_USE_EXIT = 4
# Stopping includes writing state.json; a big world takes a moment.
DOWN_DEADLINE_SECONDS = 30.0
SIGNAL_POLL_SECONDS = 0.1


def _read_info(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads((home / SANDBOX_FILE).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited, not yet reaped. The sandbox is an orphan (its `up` has exited): init reaps it,
    and a container's init may take a second or more, or never do it; `down` must not wait."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no procfs (macOS): kill(pid, 0) is all there is
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the name in (...) may hold spaces


def _answers(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def running_info(home: Path) -> dict[str, Any] | None:
    """sandbox.json of the home's owner when its endpoints answer, else None."""
    info = _read_info(home)
    if not info:
        return None  # read first: the owner writes it only after taking the lock
    pid = int(info.get("pid", -1))
    if not _alive(pid) or owner(home) != pid:
        return None
    k8s = urlsplit(info["k8s_url"]).netloc
    if not (_answers(k8s) and _answers(info["aliyun_endpoint"])):
        return None
    control = info.get("control_url")
    if control and not _answers(urlsplit(control).netloc):
        return None
    return info


def _print_endpoints(home: Path, info: dict[str, Any]) -> None:
    print(f"  kubernetes API  {info['k8s_url']}")
    print(f"  cloud OpenAPI   http://{info['aliyun_endpoint']}")
    if info.get("control_url"):
        print(f"  control         {info['control_url']}")
    print(f'  run: eval "$(egress-sandbox --home {shlex.quote(str(home))} env)"')


def _report_owner(home: Path, pid: int) -> int:
    """Report the sandbox that owns ``home``; it may still be starting, so wait for it."""
    deadline = time.monotonic() + UP_DEADLINE_SECONDS
    while True:
        info = running_info(home)
        if info and info["pid"] == pid:
            print(f"sandbox already running (pid {pid}) in {home}")
            _print_endpoints(home, info)
            return 0
        if owner(home) != pid:
            print(
                f"process {pid}, which owned {home}, stopped before it answered; "
                f"see {home / 'sandbox.log'}",
                file=sys.stderr,
            )
            return 1
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    print(
        f"process {pid} owns {home} but its endpoints do not answer; "
        f"see {home / 'sandbox.log'}, or stop it: egress-sandbox --home {home} down",
        file=sys.stderr,
    )
    return 1


def cmd_up(args: argparse.Namespace) -> int:
    home: Path = args.home
    home.mkdir(parents=True, exist_ok=True)
    try:
        # Longer than one `up` takes: a second `up` waits for the first, then finds its sandbox.
        turn = OwnerLock(home / UP_LOCK_FILE).acquire(
            2 * UP_DEADLINE_SECONDS, what="an `egress-sandbox up` under way"
        )
    except HomeInUse as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        return _up(home, args)
    finally:
        turn.release()


def _up(home: Path, args: argparse.Namespace) -> int:
    pid = owner(home)
    if pid is not None:
        return _report_owner(home, pid)
    try:
        with HomeLock(home):  # so that it is never a live owner's file that goes
            (home / SANDBOX_FILE).unlink(missing_ok=True)  # left by a sandbox that was killed
    except HomeInUse as exc:
        return _report_owner(home, exc.pid)
    cmd = [sys.executable, "-m", "egress_sandbox.cli", "--home", str(home), "serve"]
    if getattr(args, "topology", None):
        cmd += ["--topology", str(Path(args.topology).resolve())]
    restored = persistence.state_path(home).exists()
    with (home / "sandbox.log").open("ab") as logf:
        proc = subprocess.Popen(
            cmd,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + UP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        code = proc.poll()
        if code == HOME_IN_USE_EXIT:
            # Something else (a `serve`, an in-process Sandbox) took the home meanwhile.
            pid = owner(home)
            if pid is not None:
                return _report_owner(home, pid)
        if code is not None:
            print(
                f"sandbox failed to start (exit {code}); see {home / 'sandbox.log'}",
                file=sys.stderr,
            )
            return 1
        info = running_info(home)
        if info and info["pid"] == proc.pid:
            print(f"sandbox up (pid {proc.pid}) in {home}")
            if restored:
                print("  state loaded from state.json (egress-sandbox reset starts afresh)")
            _print_endpoints(home, info)
            return 0
        time.sleep(0.1)  # the child writes sandbox.json once every endpoint listens
    proc.terminate()
    print(
        f"sandbox did not answer within {UP_DEADLINE_SECONDS:.0f} s; see {home / 'sandbox.log'}",
        file=sys.stderr,
    )
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    # The owner, not whatever pid sandbox.json names: only the owner may save state.json.
    pid = owner(args.home)
    if pid is None:
        print("sandbox is not running")
        (args.home / SANDBOX_FILE).unlink(missing_ok=True)
        return 0
    if pid <= 0:
        print(f"{args.home} is locked by a process that has not named itself", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_DEADLINE_SECONDS
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)  # no API tells us when another process has exited
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        print(f"sandbox (pid {pid}) did not stop in {DOWN_DEADLINE_SECONDS:.0f} s; killed it")
    else:
        print(f"sandbox (pid {pid}) stopped")
    (args.home / SANDBOX_FILE).unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = running_info(args.home)
    print(f"home: {args.home}")
    if not info:
        print("status: stopped")
        return 3
    print("status: running")
    for key in ("pid", "k8s_url", "aliyun_endpoint", "kubeconfig", "cluster_id", "region_id"):
        print(f"{key}: {info[key]}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    info = running_info(args.home)
    if not info:
        print("echo 'egress-sandbox: the sandbox is not running; run: egress-sandbox up' >&2")
        return 1
    exports = {
        "EGRESS_SANDBOX_HOME": str(args.home),
        "KUBECONFIG": info["kubeconfig"],
        "EGRESS_SANDBOX_ALIYUN_ENDPOINT": info["aliyun_endpoint"],
        "ALIBABA_CLOUD_REGION_ID": info["region_id"],
        "ALIBABA_CLOUD_ACCESS_KEY_ID": info["access_key_id"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": info["access_key_secret"],
        # Keep the credential chain from probing the ECS metadata service.
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    for k, v in exports.items():
        print(f"export {k}={shlex.quote(v)}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Forget the world (state.json, audit log); restart the sandbox if it was running."""
    info = running_info(args.home)
    if info is not None:
        if not getattr(args, "topology", None) and info.get("topology"):
            args.topology = info["topology"]  # restart with the topology it was started with
        cmd_down(args)  # down saves state.json; it is wiped right after
    try:
        persistence.wipe(args.home)
    except HomeInUse as exc:  # a sandbox that does not answer, or one started meanwhile
        print(exc, file=sys.stderr)
        return 1
    print("sandbox state wiped (faults and transition modes live in memory: gone too)")
    return cmd_up(args) if info is not None else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run in the foreground until SIGTERM/SIGINT (what ``up`` starts in the background)."""
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    topology = Path(args.topology).resolve() if args.topology else None
    sandbox = Sandbox(args.home, Topology.load(topology), topology_path=topology)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        sandbox.start()
    except persistence.StateError as exc:
        logging.getLogger("egress_sandbox").error("%s", exc)
        return 2
    except HomeInUse as exc:  # it must not run beside the owner, nor ever save over its world
        logging.getLogger("egress_sandbox").error("%s", exc)
        return HOME_IN_USE_EXIT
    # Never an untimed wait: the kernel may deliver SIGTERM to any of the sandbox's threads, and
    # Python runs the handler only when the main thread next runs bytecode. An untimed wait
    # would then sleep on (until `down` gives up and kills it, unsaved).
    while not done.wait(SIGNAL_POLL_SECONDS):
        pass
    sandbox.stop()
    return 0
