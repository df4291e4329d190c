"""The worlds the fault matrix starts its cells from, and the runbook's steps by number.

Building a world by running the steps before a cell would cost seconds per cell; instead the
session runs the runbook once on a fresh sandbox and saves the world before each step (the
sandbox's own ``state.json``, written by ``stop()``) as a template home. A cell copies the
template and starts a sandbox from the copy: a loaded world, as after ``egress-sandbox
down``/``up``, in a few hundredths of a second. Every transition is immediate, so a step waits
only where a cell makes it wait (manual transitions, stuck holds).

One sandbox runs at a time, on block 51 (tests/conftest.py); the runbook finds it through
``EGRESS_SANDBOX_HOME`` as an operator's machine does.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sandbox_env import sandbox_home

from egress_lib import Parameters, Session, connect, load_parameters, steps

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
BLOCK = 51

# Every mutating step, by the number the matrix shows; 99 is teardown.
STEPS: tuple[str, ...] = ("01", "02", "03", "04", "05", "06", "99")
MODULES: dict[str, ModuleType] = {
    "01": steps.controller,
    "02": steps.gateway,
    "03": steps.snat,
    "04": steps.services,
    "05": steps.ingress,
    "06": steps.verify,
    "99": steps.teardown,
}
TITLES = {
    "01": "01 controller",
    "02": "02 gateway",
    "03": "03 SNAT",
    "04": "04 Services",
    "05": "05 Ingresses",
    "06": "06 verify pods",
    "99": "99 teardown",
}

# Short deadlines: a wait that cannot succeed (a held resource, a fault for good) gives up in
# seconds, so the cells that must stop do so quickly. Nothing else in the runbook changes.
DEADLINE_SECONDS = 2
CELL_OVERRIDES: dict[str, object] = {
    "approve": True,
    "timeouts.controller_seconds": DEADLINE_SECONDS,
    "timeouts.gateway_seconds": DEADLINE_SECONDS,
    "timeouts.snat_seconds": DEADLINE_SECONDS,
    "timeouts.ingress_status_seconds": DEADLINE_SECONDS,
    "timeouts.api_retry_seconds": DEADLINE_SECONDS,
}


def topology(block: int = BLOCK) -> Topology:
    """The default world on ``127.<block>/16`` with every transition immediate."""
    from egress_sandbox.topology import Topology, Transition, Transitions

    now = Transition(mode="immediate", seconds=0)
    topo = Topology.loopback(block)
    topo.transitions = Transitions(
        snat_entry=now, nat_gateway=now, addon_install=now, mse_gateway=now
    )
    return topo


def parameters(overrides: dict[str, object] | None = None) -> Parameters:
    return load_parameters(PARAMS, {**CELL_OVERRIDES, **(overrides or {})})


@contextlib.contextmanager
def session(overrides: dict[str, object] | None = None) -> Iterator[Session]:
    """A new Session (a new run ID) for the sandbox ``EGRESS_SANDBOX_HOME`` names."""
    s = connect(parameters(overrides))
    try:
        yield s
    finally:
        s.close()


def run_step(s: Session, step: str) -> None:
    """Plan and apply one step, as its notebook does with approve true."""
    module = MODULES[step]
    module.apply(s, module.plan(s))


def steps_through(step: str, first: str = "01") -> tuple[str, ...]:
    """The steps from ``first`` through ``step`` (teardown: teardown alone)."""
    if step == "99":
        return ("99",)
    return tuple(s for s in STEPS if first <= s <= step)


def _ignore(_: str, names: list[str]) -> list[str]:
    # The pod network's socket and the running sandbox's sandbox.json belong to one process.
    return [n for n in names if n.endswith(".sock") or n == "sandbox.json"]


def short_home() -> Path:
    # Short: the pod network is a UNIX socket in the home, and its path has a length limit.
    return Path(tempfile.mkdtemp(prefix="flt-")) / "home"


class Worlds:
    """Template homes: the saved world before each step, built once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.homes: dict[str, Path] = {}

    def build(self) -> None:
        home = short_home()
        try:
            for step in STEPS:
                with sandbox_home(home, BLOCK, topology()):
                    if step != "01":
                        with session() as s:
                            run_step(s, _previous(step))
                # Stopped: state.json holds the world after the previous step.
                self.homes[step] = self.root / f"before-{step}"
                shutil.copytree(home, self.homes[step], ignore=_ignore)
        finally:
            shutil.rmtree(home.parent, ignore_errors=True)

    @contextlib.contextmanager
    def before(self, step: str) -> Iterator[Sandbox]:
        """A running sandbox holding the world as it was before ``step``."""
        home = short_home()
        shutil.copytree(self.homes[step], home, ignore=_ignore)
        try:
            with sandbox_home(home, BLOCK, topology()) as box:
                yield box
        finally:
            shutil.rmtree(home.parent, ignore_errors=True)


def _previous(step: str) -> str:
    if step == "99":
        return "06"
    return STEPS[STEPS.index(step) - 1]


def k8s_type(box: Sandbox, plural: str) -> Any:
    """The sandbox's ResourceType for a plural (None: not served, e.g. before the CRD)."""
    for group, version, name in (
        ("", "v1", plural),
        ("networking.k8s.io", "v1", plural),
        ("coordination.k8s.io", "v1", plural),
        ("mse.alibabacloud.com", "v1alpha1", plural),
    ):
        rt = box.store.types.get(group, version, name)
        if rt is not None:
            return rt
    return None
