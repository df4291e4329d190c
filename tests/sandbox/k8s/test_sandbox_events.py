"""The assembled sandbox's controller and kubelet record Events that kubectl describe shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(90)]


def _kubectl(sandbox: Any, *args: str, stdin: str | None = None) -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.skip("kubectl not installed")
    proc = subprocess.run(
        [exe, "--kubeconfig", str(sandbox.kubeconfig_path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"HOME": str(sandbox.home), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _eventually(fn: Any, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out: str = fn()
        if out or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


def test_describe_mse_ingress_config_shows_controller_events(sandbox: Any) -> None:
    from egress_sandbox.mse import crd, install

    if not install.is_installed(sandbox.store):
        # Installing the add-on here would change the shared sandbox under the runbook tests
        # (tests/integration run first in a full session and install it).
        pytest.skip("the MSE Ingress add-on is not installed in this session's sandbox")
    name = "events-probe"
    body = {
        "apiVersion": f"{crd.GROUP}/{crd.VERSION}",
        "kind": crd.KIND,
        "metadata": {"name": name},
    }
    _kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(body))
    try:

        def events() -> str:
            out = _kubectl(sandbox, "describe", crd.PLURAL, name)
            section = out.split("Events:", 1)[1] if "Events:" in out else ""
            return section if "Creating" in section else ""

        assert "Creating" in _eventually(events)
    finally:
        _kubectl(sandbox, "delete", crd.PLURAL, name, "--wait=false")


def test_describe_pod_shows_kubelet_events(sandbox: Any) -> None:
    name = "events-probe-pod"
    _kubectl(
        sandbox,
        "run",
        name,
        "--image=curlimages/curl",
        "--restart=Never",
        "--",
        "curl",
        "--version",
    )
    try:

        def events() -> str:
            out = _kubectl(sandbox, "describe", "pod", name)
            section = out.split("Events:", 1)[1] if "Events:" in out else ""
            return section if "Started" in section else ""

        section = _eventually(events)
        assert "Scheduled" in section or "Pulled" in section or "Created" in section
        assert "Started" in section
    finally:
        _kubectl(sandbox, "delete", "pod", name, "--wait=false")
