"""Two runs against the same cluster at the same moment (block 55, a fresh sandbox each test).

Whoever gets there first does the work; the other either finds the cluster locked
(LockHeld, naming the run that holds it), finds the world changed under its plan (PlanStale,
nothing written), or finds everything done and converges. Either way the cluster ends with
exactly one SNAT entry and one set of objects, all owned, and no probe pod or held lock left:
the sandbox's state and audit log say so (fault_checks).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fault_checks
import pytest
from fault_world import CELL_OVERRIDES, PARAMS, run_step, session, short_home
from sandbox_env import sandbox_home

from egress_lib import load_parameters
from egress_lib.errors import EgressError, LockHeld, PlanStale

pytestmark = pytest.mark.slow
BLOCK = 55
STEPS = ("01", "02", "03", "04", "05", "06")
# Deadlines of a normal run: the other run's steps may hold the world up for a while.
OVERRIDES: dict[str, object] = {**CELL_OVERRIDES, "timeouts.api_retry_seconds": 30}
for _key in ("controller", "gateway", "snat", "ingress_status"):
    OVERRIDES[f"timeouts.{_key}_seconds"] = 60


@dataclass
class Run:
    name: str
    run_id: str = ""
    done: list[str] = field(default_factory=list)
    stopped: BaseException | None = None


@pytest.fixture
def box() -> Iterator[Any]:
    import shutil

    from egress_sandbox.topology import Topology

    home = short_home()
    try:
        # Timed transitions (50 ms): each run's waits really wait, so the two overlap.
        with sandbox_home(home, BLOCK, Topology.loopback(BLOCK)) as sandbox:
            yield sandbox
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)


def _both(runs: tuple[Run, Run]) -> None:
    start = threading.Barrier(2)

    def go(run: Run) -> None:
        try:
            with session(OVERRIDES) as s:
                run.run_id = s.run_id
                start.wait(30)
                for step in STEPS:
                    run_step(s, step)
                    run.done.append(step)
        except BaseException as e:  # noqa: BLE001 - what the run found is the result
            run.stopped = e

    threads = [threading.Thread(target=go, args=(r,), name=f"run-{r.name}") for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads), "a run hung"


def test_two_runs_at_once_end_with_one_set_of_objects(box: Any) -> None:
    p = load_parameters(PARAMS, OVERRIDES)
    start = fault_checks.before(box, p)
    runs = (Run("a"), Run("b"))
    _both(runs)

    finished = [r for r in runs if r.stopped is None]
    assert finished, f"neither run finished: {[(r.name, r.done, r.stopped) for r in runs]}"
    for r in runs:
        if r.stopped is None:
            assert r.done == list(STEPS)
            continue
        # The slower run says what it found, as an egress_lib error with a remedy.
        other = next(o for o in runs if o is not r)
        err = r.stopped
        assert isinstance(err, (LockHeld, PlanStale)), f"run {r.name} after {r.done}: {err!r}"
        assert isinstance(err, EgressError) and err.remedy
        if isinstance(err, LockHeld):
            assert other.run_id in str(err), str(err)  # names the run that holds the lock
        else:
            assert "nothing was written" in str(err), str(err)
    assert fault_checks.problems(box, p, "06", start) == []


def test_a_stopped_run_converges_when_run_again(box: Any) -> None:
    # What the slower operator does next: run again; it changes nothing and passes.
    p = load_parameters(PARAMS, OVERRIDES)
    start = fault_checks.before(box, p)
    runs = (Run("a"), Run("b"))
    _both(runs)
    mark = len(box.audit.records())
    with session(OVERRIDES) as s:
        for step in STEPS:
            run_step(s, step)
    assert fault_checks.problems(box, p, "06", start) == []
    # The re-run wrote only its own bookkeeping: the lock Lease and the probe pods.
    again = [r for r in box.audit.records()[mark:] if r.mutating]
    assert all("/leases" in r.path or "/pods" in r.path for r in again if r.api == "k8s"), again
    assert not [r for r in again if r.api != "k8s"], again


@pytest.mark.timeout(600)
def test_two_operators_run_the_cli_at_once(box: Any, tmp_path: Path) -> None:
    """Two ``egress-runbook run --approve`` at the same moment: the runner holds the lock for
    the whole run, so the slower one stops at once, naming the run that holds it."""
    p = load_parameters(PARAMS, OVERRIDES)
    start = fault_checks.before(box, p)
    runbook = Path(sys.executable).with_name("egress-runbook")
    procs = []
    for name in ("a", "b"):
        out = tmp_path / name
        cmd = [str(runbook), "run", str(PARAMS), "--approve", "-o", "json", "--out", str(out)]
        log = (tmp_path / f"{name}.err").open("w")
        procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True), log))
    results = []
    for proc, log in procs:
        stdout, _ = proc.communicate(timeout=540)
        log.close()
        results.append((proc.returncode, json.loads(stdout)))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    ((_, done),) = [r for r in results if r[0] == 0]
    ((_, slower),) = [r for r in results if r[0] == 1]
    assert done["status"] == "ok"
    assert slower["status"] == "failed"
    assert "holds the lock" in slower["message"] and done["run_id"] in slower["message"]
    assert fault_checks.problems(box, p, "06", start) == []
