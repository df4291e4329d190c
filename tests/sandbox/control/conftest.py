"""A sandbox per test module (its own home and 127.21.0.0/16 block) and clients to drive it.

Control tests change faults and transition modes; the autouse fixture resets them after each
test, so tests of a module only share the world (objects, cloud resources), never a fault.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_sandbox.control.client import ControlClient
from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    home = Path(tempfile.mkdtemp(prefix="sbxc-"))  # short: the pod network is a UNIX socket
    sandbox = Sandbox(home, Topology.loopback(21), persist=False).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def control(box: Sandbox) -> Iterator[ControlClient]:
    client = ControlClient.from_home(box.home)
    yield client
    client.reset()
