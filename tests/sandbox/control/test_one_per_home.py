"""One sandbox per home: a second one on a running home finds it, and never saves over its world.

Before: two `egress-sandbox up` at once started two processes; the one left running (the orphan)
later wrote its own world to state.json, and a ConfigMap created in the other disappeared. Now
the owner holds ``<home>/sandbox.lock`` for its whole life; everything else finds it there.
Block 127.49.0.0/16. The CLI tests run `egress-sandbox` as subprocesses (slow).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_helpers import configmap, kube
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from egress_sandbox import persistence
from egress_sandbox.homelock import HomeInUse, HomeLock
from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

BLOCK = 49


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbx1-"))  # short: the pod network is a UNIX socket
    yield path
    # Whatever this test started on the home and left behind (it is ours: the home is new).
    for pid in serve_pids(path):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def serve_pids(home: Path) -> list[int]:
    """The processes serving a sandbox on ``home`` (what `ps` would show a user)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and b"serve" in argv and str(home).encode() in argv:
            pids.append(int(proc.name))
    return pids


def egress(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "egress_sandbox.cli", "--home", str(home), *args]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def run(home: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        egress(home, *args), capture_output=True, text=True, timeout=timeout, env=env(), check=False
    )


def write_topology(home: Path) -> Path:
    path = home / "topology.yaml"
    path.write_text(yaml.safe_dump(Topology.loopback(BLOCK).model_dump()))
    return path


def info(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "sandbox.json").read_text())
    return data


def core(home: Path) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(home / "kubeconfig")))


def test_a_second_sandbox_in_this_process_is_refused_and_saves_nothing(home: Path) -> None:
    owner = Sandbox(home, Topology.loopback(BLOCK)).start()
    try:
        k8s.CoreV1Api(kube(owner)).create_namespaced_config_map("default", configmap("mine"))
        second = Sandbox(home, Topology.loopback(BLOCK))
        with pytest.raises(HomeInUse) as refused:
            second.start()
        assert f"pid {os.getpid()}" in str(refused.value)
        assert "down" in str(refused.value)  # what to do about it
        second.stop()  # it owns nothing: it must not save, nor remove the owner's files
        assert not (home / "state.json").exists()
        with pytest.raises(RuntimeError, match="only the process that owns the home"):
            persistence.save(home, persistence.SavedState({}, {}, {}, {}, {}, {}), HomeLock(home))
        assert not (home / "state.json").exists()
        assert info(home)["k8s_url"] == owner.k8s.url  # the owner's files are untouched
        assert core(home).read_namespaced_config_map("mine", "default")
    finally:
        owner.stop()
    again = Sandbox(home, Topology.loopback(BLOCK)).start()  # the stopped owner let go
    try:
        assert again.restored
        assert k8s.CoreV1Api(kube(again)).read_namespaced_config_map("mine", "default")
    finally:
        again.stop()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_second_up_finds_the_running_sandbox(home: Path) -> None:
    topology = write_topology(home)
    try:
        first = run(home, "up", "--topology", str(topology))
        assert first.returncode == 0, first.stdout + first.stderr
        running = info(home)
        second = run(home, "up", "--topology", str(topology))
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"already running (pid {running['pid']})" in second.stdout
        assert running["k8s_url"] in second.stdout
        assert running["aliyun_endpoint"] in second.stdout
        assert serve_pids(home) == [running["pid"]]
        # In process too: refused, naming the process that owns the home.
        with pytest.raises(HomeInUse, match=f"process {running['pid']} owns it"):
            Sandbox(home, Topology.loopback(BLOCK)).start()
        assert info(home) == running
    finally:
        run(home, "down")
    assert serve_pids(home) == []


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_ups_at_the_same_moment_start_one_sandbox(home: Path) -> None:
    topology = write_topology(home)
    try:
        ups = [
            subprocess.Popen(
                egress(home, "up", "--topology", str(topology)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env(),
            )
            for _ in range(2)
        ]
        outputs = [up.communicate(timeout=150)[0] for up in ups]
        assert [up.returncode for up in ups] == [0, 0], outputs
        (pid,) = serve_pids(home)
        assert all(f"(pid {pid})" in out for out in outputs), outputs
        assert sorted("already running" in out for out in outputs) == [False, True], outputs
        assert info(home)["pid"] == pid
        assert core(home).list_namespace().items  # its kubeconfig is the one in the home
    finally:
        run(home, "down")
    assert serve_pids(home) == []


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_second_process_never_takes_over_the_home_nor_its_state(home: Path) -> None:
    topology = write_topology(home)
    try:
        up = run(home, "up", "--topology", str(topology))
        assert up.returncode == 0, up.stdout + up.stderr
        running = info(home)
        # What the orphan was: a second `serve` on the same home (what `up` starts).
        intruder = subprocess.Popen(
            egress(home, "serve", "--topology", str(topology)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
        )
        try:
            out = intruder.communicate(timeout=60)[0]
        finally:
            if intruder.poll() is None:
                intruder.kill()
                intruder.wait()
        assert intruder.returncode == 4, out
        assert f"process {running['pid']} owns it" in out
        assert info(home) == running  # sandbox.json still names the owner
        core(home).create_namespaced_config_map("default", configmap("survivor"))
        down = run(home, "down")
        assert f"pid {running['pid']}" in down.stdout
        assert serve_pids(home) == []  # no orphan left to overwrite state.json later
        assert run(home, "up").returncode == 0
        assert core(home).read_namespaced_config_map("survivor", "default")
    finally:
        run(home, "down")
    assert serve_pids(home) == []
