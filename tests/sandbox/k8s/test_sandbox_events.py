"""The assembled sandbox's controller and kubelet record Events that kubectl describe shows.

Self-contained: a Sandbox of its own (127.24.0.0/16) with the MSE Ingress add-on installed
through CS, so the controller's events are tested whatever ran before in the session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sandbox_clients import install_mse_addon

from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    home = Path(tempfile.mkdtemp(prefix="sbxe-"))  # short: the pod network is a UNIX socket
    sandbox = Sandbox(home, Topology.loopback(24), persist=False).start()
    try:
        install_mse_addon(sandbox)
        yield sandbox
    finally:
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)


def _kubectl(box: Sandbox, *args: str, stdin: str | None = None) -> str:
    exe = shutil.which("kubectl")
    assert exe is not None
    proc = subprocess.run(
        [exe, "--kubeconfig", str(box.kubeconfig_path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"HOME": str(box.home), "PATH": "/usr/bin:/bin"},  # one kubectl cache per sandbox
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _eventually(fn: Callable[[], str], timeout: float = 30) -> str:
    """``fn()`` once it is non-empty (or its last answer after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        out = fn()
        if out or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


def test_describe_mse_ingress_config_shows_controller_events(box: Sandbox) -> None:
    from egress_sandbox.mse import crd, install

    assert install.is_installed(box.store)
    name = "events-probe"
    body = {
        "apiVersion": f"{crd.GROUP}/{crd.VERSION}",
        "kind": crd.KIND,
        "metadata": {"name": name},
    }
    _kubectl(box, "apply", "-f", "-", stdin=json.dumps(body))
    try:

        def events() -> str:
            out = _kubectl(box, "describe", crd.PLURAL, name)
            section = out.split("Events:", 1)[1] if "Events:" in out else ""
            return section if "Creating" in section else ""

        assert "Creating" in _eventually(events)
    finally:
        _kubectl(box, "delete", crd.PLURAL, name, "--wait=false")


def test_describe_pod_shows_kubelet_events(box: Sandbox) -> None:
    name = "events-probe-pod"
    _kubectl(
        box,
        "run",
        name,
        "--image=registry-vpc.cn-hangzhou.aliyuncs.com/egress-runbook/curl",
        "--restart=Never",
        "--",
        "curl",
        "--version",
    )
    try:

        def events() -> str:
            out = _kubectl(box, "describe", "pod", name)
            section = out.split("Events:", 1)[1] if "Events:" in out else ""
            return section if "Started" in section else ""

        section = _eventually(events)
        assert "Scheduled" in section or "Pulled" in section or "Created" in section
        assert "Started" in section
    finally:
        _kubectl(box, "delete", "pod", name, "--wait=false")
