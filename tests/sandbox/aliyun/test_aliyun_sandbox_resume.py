"""A whole Sandbox starts the cloud's transitions itself: fresh worlds as well as saved ones.

A topology may seed a NAT gateway ``Creating``; nothing but ``OpenApiServer.resume`` (which
``Sandbox.start`` calls every time) moves it on, so without it the gateway would never become
Available and its SNAT table would refuse every entry.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

TOPOLOGY = """
nat_gateways:
  - {name: egress-nat, status: Creating}
transitions:
  nat_gateway: {mode: timed, seconds: 0.2}
"""


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbxr-"))  # short: the pod network is a UNIX socket
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _status(box: Sandbox) -> str:
    with box.cloud_lock:
        return next(n.status for n in box.cloud.nat_gateways.values() if n.name == "egress-nat")


def test_fresh_sandbox_moves_a_creating_nat_gateway(home: Path) -> None:
    (home / "topology.yaml").write_text(TOPOLOGY)
    with Sandbox(home, Topology.load(home / "topology.yaml"), persist=False) as box:
        assert not box.restored
        assert _status(box) == "Creating"
        deadline = time.monotonic() + 5
        while _status(box) == "Creating":
            assert time.monotonic() < deadline, "NAT gateway still Creating"
            time.sleep(0.02)
        assert _status(box) == "Available"
