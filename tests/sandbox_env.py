"""Start a Sandbox and point ``EGRESS_SANDBOX_HOME`` at it, as ``egress-sandbox up`` + ``env`` do.

egress_lib (and the notebook kernels papermill starts, which inherit the environment) find a
sandbox only through that variable, so every test sandbox the runbook talks to goes through here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology


@contextlib.contextmanager
def sandbox_home(home: Path, block: int, topology: Topology | None = None) -> Iterator[Sandbox]:
    """A running Sandbox on ``127.<block>.0.0/16``; the variable is restored afterwards.

    ``topology`` replaces ``Topology.loopback(block)`` (build it from that, to keep the block).
    """
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    old = os.environ.get("EGRESS_SANDBOX_HOME")
    with Sandbox(home, topology or Topology.loopback(block)) as box:
        os.environ["EGRESS_SANDBOX_HOME"] = str(home)
        try:
            yield box
        finally:
            if old is None:
                os.environ.pop("EGRESS_SANDBOX_HOME", None)
            else:
                os.environ["EGRESS_SANDBOX_HOME"] = old
