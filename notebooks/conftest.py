"""nbval runs the notebooks in order against a fresh sandbox that this file starts.

nbval's cell items take no fixtures, so the sandbox lives in session hooks. The kernels inherit
``EGRESS_SANDBOX_HOME`` and find the sandbox through its ``sandbox.json``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_state: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    os.environ["EGRESS_WIDGETS"] = "0"  # stored outputs hold no widget state, wherever run from
    home = Path(tempfile.mkdtemp(prefix="nbval-sandbox-"))
    _state["sandbox"] = Sandbox(home, Topology.loopback(18)).start()
    os.environ["EGRESS_SANDBOX_HOME"] = str(home)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    box = _state.pop("sandbox", None)
    if box is not None:
        box.stop()  # type: ignore[attr-defined]
