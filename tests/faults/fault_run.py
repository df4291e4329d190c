"""Playing one cell: the world before the step, the fault, the step, the verdict.

A cell passes when the run converges with no duplicate and no orphan, or stops with an
egress_lib error that names the cause and a fault-free re-run then converges, as the cell
expects (:mod:`fault_cells`). A killed run is a process of its own (forked by
fault_forkserver.py), SIGKILLed while the server holds its write: the write lands after the
runbook died, not knowing its outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import fault_checks
from fault_cells import Attack, Cell, Context, Hold, Kill, remaining
from fault_world import (
    CELL_OVERRIDES,
    MODULES,
    PARAMS,
    Worlds,
    parameters,
    run_step,
    session,
    steps_through,
)

from egress_lib.errors import EgressError

if TYPE_CHECKING:
    from egress_lib import Session
    from egress_sandbox.sandbox import Sandbox

CONVERGED = "converged"
STOPPED = "stopped, re-run converged"
KILLED = "killed, re-run converged"
NA = "n/a"
FAILED = "FAILED"
STEP_SECONDS = 60  # a step that runs longer than this under a fault is hung
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class Verdict:
    outcome: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome != FAILED


def summary(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first[:300]}"


def unclear(err: BaseException, cell: Cell) -> str | None:
    """Why ``err`` is not a clear stop for ``cell`` (None: it is)."""
    if not isinstance(err, EgressError):
        tb = "".join(traceback.format_exception(err)[-3:]).strip()
        return f"not an egress_lib error: {tb[-600:]}"
    text = str(err)
    if "Traceback (most recent call last)" in text:
        return f"the error carries a traceback: {summary(err)}"
    if len(text) > MAX_ERROR_CHARS:
        return f"the error is {len(text)} characters long: {summary(err)}"
    lowered = text.lower()
    for words in cell.cause:
        if not any(w.lower() in lowered for w in words):
            return f"the error does not name the cause ({' or '.join(words)}): {summary(err)}"
    if not err.remedy:
        return f"the error has no remedy: {summary(err)}"
    return None


def settle(box: Sandbox, seconds: float = 5.0) -> None:
    """Wait until the sandbox's scheduler has run everything that is due (released holds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = threading.Event()
        box.scheduler.call_later(0, done.set, "fault matrix: settle")
        done.wait(seconds)
        if not box.scheduler.pending():
            return


def run_driven(
    step: str, s: Session, attack: Attack, ctx: Context
) -> tuple[BaseException | None, bool]:
    """Run the step on a thread while the attack drives; (its error, whether it finished)."""
    result: list[BaseException | None] = []

    def target() -> None:
        try:
            run_step(s, step)
            result.append(None)
        except BaseException as e:  # noqa: BLE001 - reported, never raised on the thread
            result.append(e)

    thread = threading.Thread(target=target, name=f"fault-matrix-{step}", daemon=True)
    thread.start()
    try:
        attack.drive(ctx, thread.is_alive)
    finally:
        thread.join(STEP_SECONDS)
    if thread.is_alive():
        return None, False
    return result[0], True


# How long a re-run applies against a resource still held before the hold is let go: it
# waits by then (well within the cells' deadline), or has wrongly returned.
HELD_RERUN_SECONDS = 0.5


def _rerun_then_release(box: Sandbox, cell: Cell) -> BaseException | None:
    """Plan the re-run while the resource is held, apply it, and let the resource go."""
    result: list[BaseException | None] = []
    module = MODULES[cell.step]
    with session() as s:
        try:
            plan = module.plan(s)
        except Exception as e:  # noqa: BLE001 - the verdict reports any failure
            box.controls.reset()
            return e

        def apply() -> None:
            try:
                module.apply(s, plan)
                result.append(None)
            except BaseException as e:  # noqa: BLE001 - reported, never raised on the thread
                result.append(e)

        thread = threading.Thread(target=apply, name="fault-rerun")
        thread.start()
        try:
            thread.join(HELD_RERUN_SECONDS)
        finally:
            box.controls.reset()
            thread.join(STEP_SECONDS)
    if thread.is_alive():
        return TimeoutError(f"the re-run was still running after {STEP_SECONDS} s")
    settle(box)
    return result[0]


def rerun(cell: Cell) -> BaseException | None:
    """The fault-free re-run an operator makes: the step again (from ``rerun_from``)."""
    try:
        with session() as s:
            for step in steps_through(cell.step, cell.rerun_from or cell.step):
                run_step(s, step)
    except Exception as e:  # noqa: BLE001 - the verdict reports any failure
        return e
    return None


def play(cell: Cell, worlds: Worlds, forks: Forks) -> Verdict:
    if cell.expect == "n/a" or cell.attack is None:
        return Verdict(NA, cell.why)
    with worlds.before(cell.step) as box:
        p = parameters()
        start = fault_checks.before(box, p)
        attack = cell.attack()
        if isinstance(attack, Kill):
            killed = kill_half_way(box, cell, attack, forks)
            if killed is not None:
                return Verdict(FAILED, killed)
            return _after_stop(box, cell, start, None)
        ctx = Context(box, p)
        with session() as s:
            attack.inject(ctx)
            error, finished = run_driven(cell.step, s, attack, ctx)
        if not finished:
            return Verdict(FAILED, f"the step was still running after {STEP_SECONDS} s")
        missed = attack.not_fired(ctx)
        if missed is not None:
            return Verdict(FAILED, f"the fault never fired: {missed}")
        if error is None:
            problems = fault_checks.problems(box, p, cell.step, start)
            if cell.expect == "stop":
                problems.insert(0, "reported success although the fault lasts (false success)")
            if problems:
                return Verdict(FAILED, "; ".join(problems))
            return Verdict(CONVERGED)
        return _after_stop(box, cell, start, error, still_held=isinstance(attack, Hold))


def _after_stop(
    box: Sandbox,
    cell: Cell,
    start: fault_checks.Before,
    error: BaseException | None,
    *,
    still_held: bool = False,
) -> Verdict:
    """The run stopped (``error``) or was killed (None): clear the faults, re-run, judge.

    ``still_held``: the operator re-runs while the resource is still Pending (the cloud is
    still at it); it moves on a moment later. "Unchanged" must mean converged: a re-run that
    reports success before the resource is ready leaves it Pending, which the checks see.
    """
    if still_held:
        again = _rerun_then_release(box, cell)
    else:
        box.controls.reset()  # faults and holds gone, held steps resumed, transitions reset
        settle(box)
        again = rerun(cell)
    problems = fault_checks.problems(box, parameters(), cell.step, start)
    after = f"; the re-run {'failed: ' + summary(again) if again else 'converged'}"
    if problems:
        after += f", but: {'; '.join(problems)}"
    if error is not None and cell.expect == "converge":
        return Verdict(FAILED, f"expected to converge, stopped: {summary(error)}{after}")
    if error is not None:
        why = unclear(error, cell)
        if why is not None:
            return Verdict(FAILED, why + after)
    if again is not None or problems:
        return Verdict(FAILED, after.removeprefix("; "))
    return Verdict(KILLED if error is None else STOPPED, summary(error) if error else "")


# ---- killed half-way ------------------------------------------------------------------------

FORKSERVER = Path(__file__).with_name("fault_forkserver.py")


class Forks:
    """The fork server (fault_forkserver.py): runbook runs as processes of their own, warm."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        if not ready:
            raise RuntimeError(f"{FORKSERVER.name} did not start (exit {self._proc.wait()})")

    def spawn(self, step: str, log: Path) -> int:
        """Start a run of ``step`` against ``EGRESS_SANDBOX_HOME``; its pid."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request = {
            "params": str(PARAMS),
            "overrides": CELL_OVERRIDES,
            "step": STEP_ARG.get(step, step),
            "env": {"EGRESS_SANDBOX_HOME": os.environ["EGRESS_SANDBOX_HOME"]},
            "log": str(log),
        }
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return int(json.loads(self._proc.stdout.readline())["pid"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


STEP_ARG = {"99": "teardown"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_half_way(box: Sandbox, cell: Cell, kill: Kill, forks: Forks) -> str | None:
    """Run the step in its own process and SIGKILL it inside its write; None when done so."""
    spec = kill.spec()
    target = kill.target
    seen = sum(1 for r in box.audit.records() if target.matches(r))
    box.controls.add_fault(dict(spec))
    with tempfile.TemporaryDirectory(prefix="flt-log-") as tmp:
        log = Path(tmp) / "run.log"
        pid = forks.spawn(cell.step, log)
        try:
            reached = _wait(lambda: not _alive(pid) or not remaining(box, spec), 60)
            if not _alive(pid) or not reached:
                tail = log.read_text()[-800:] if log.exists() else ""
                return f"the run ended before it sent {target}: {tail}"
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid), 10)
    # The held write completes in the server after its client died.
    done = _wait(lambda: sum(1 for r in box.audit.records() if target.matches(r)) > seen, 10)
    return None if done else f"the server never finished the write {target} the run sent"


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def matrix_file() -> Path:
    """Where the matrix is written for the closing note (test-artifacts/ is gitignored)."""
    root = Path(os.environ.get("EGRESS_TEST_ARTIFACTS") or PARAMS.parents[1] / "test-artifacts")
    return root / "faults" / "matrix.txt"
