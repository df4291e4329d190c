"""When port 80 of the CLB address cannot be bound (not root, or taken), the runbook still works.

The gateway listens on a free port instead, the Ingress status carries it, and the verify pod
reaches the gateway there: what an operator running the sandbox without root gets.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import connect, load_parameters, steps

BLOCK = 25  # see the block list in tests/conftest.py
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # The first CLB address of the gateway vSwitch, taken before the gateway exists.
    with socket.socket() as squatter:
        squatter.bind((f"127.{BLOCK}.2.10", 80))
        squatter.listen()
        with sandbox_home(tmp_path_factory.mktemp("port80-home"), BLOCK) as sandbox:
            yield sandbox


def test_runbook_verifies_through_the_port_the_ingress_status_carries(box: Any) -> None:
    session = connect(load_parameters(REPO / "parameters" / "sandbox.yaml", {"approve": True}))
    try:
        for step in (steps.controller, steps.gateway, steps.snat, steps.services, steps.ingress):
            step.apply(session)
        (address,) = steps.ingress.wait_for_clb_address(session)
        assert address.ip == f"127.{BLOCK}.2.10"
        assert address.port != 80, "the status carries the port the gateway really listens on"
        result = steps.verify.run(session)
        assert result.ok, result.to_frame().to_string()
        assert result.rows[0].status == 200
    finally:
        session.close()
