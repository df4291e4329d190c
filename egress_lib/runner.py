"""Plan, approve and run the runbook's notebooks with papermill; one record per run.

A run goes: validate the parameters once; take the cluster's lock (when it may write); plan
every step in this process (reads only) and show the plans; get approval (``approve``,
``--approve``, or a yes at the terminal prompt); write the approved plan into the run folder;
then execute each step's notebook with the complete, validated parameters injected. A
notebook's step may apply only changes the approved plan holds (:mod:`egress_lib.steps._common`).
Each run writes ``runs/<cluster>/<UTC time>-<short id>/``: the executed notebooks, ``run.json``
(:mod:`egress_lib.records`), ``summary.md`` and ``verify.json``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from egress_lib import records, retry, run_reports
from egress_lib.clients import RUN_ID_ENV, Session, connect, read_sandbox_info, sandbox_home
from egress_lib.errors import EgressError, LockHeld
from egress_lib.parameters import Parameters, load_parameters
from egress_lib.plan import APPROVED_PLAN_FILE, CHANGING, CONVERGING, RUN_DIR_ENV, Plan
from egress_lib.progress import STEP_ENV, duration
from egress_lib.steps import FULL, TEARDOWN, Step, applicable

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# Every step a run may have; 07-egress-policies only when a policy is declared.
STEPS: tuple[str, ...] = tuple(s.name for s in FULL)

# Exit codes of `egress-runbook run|plan|teardown`.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_APPROVED = 3
EXIT_INTERRUPTED = 130


@dataclass
class StepPlan:
    """A step's plan as computed before the run, or why it could not be computed."""

    step: Step
    plan: Plan | None
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error) or bool(self.plan and self.plan.conflicts)


@dataclass
class Outcome:
    """How a run ended, for the CLI: the exit code and the record."""

    code: int
    record: records.RunRecord
    plans: list[StepPlan] = field(default_factory=list)
    message: str = ""


def distinct_changes(plans: Sequence[StepPlan]) -> int:
    """Creates, updates and deletes over all plans, counting a change two steps share once."""
    seen = {
        c.fingerprint for sp in plans if sp.plan for c in sp.plan.changes if c.action in CHANGING
    }
    return len(seen)


def plan_steps(
    session: Session, steps: Sequence[Step], echo: Callable[[str], None], *, quiet: bool = False
) -> list[StepPlan]:
    """Each step's plan, in order; planning stops at the first step that fails."""
    from egress_lib.steps import preflight

    out: list[StepPlan] = []
    for s in steps:
        try:
            with _env({STEP_ENV: s.number}):  # its retries are counted for the step
                plan = preflight.plan(session) if s.module is preflight else s.module.plan(session)
            if s.module is preflight:
                failed = preflight.failed_checks(plan)
                if failed:
                    out.append(StepPlan(s, plan, f"PreconditionFailed: {failed}"))
                    echo(str(plan))  # all of it, even when quiet: it says what failed
                    break
        except EgressError as e:
            out.append(StepPlan(s, None, f"{type(e).__name__}: {e}"))
            echo(f"Plan for {s.name}: FAILED\n{type(e).__name__}: {e}")
            break
        out.append(StepPlan(s, plan))
        echo(str(plan).splitlines()[0] if quiet else str(plan))
    return out


def _approved_plan(plans: Sequence[StepPlan]) -> dict[str, list[str]]:
    return {
        sp.step.name: [c.fingerprint for c in sp.plan.changes if c.action in CHANGING]
        for sp in plans
        if sp.plan
    }


@contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    # The kernels papermill starts inherit these: the run folder and the run ID.
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # SIGTERM ends a run the way Ctrl-C does: the record says interrupted, no traceback.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(step: Step, out_dir: Path, injected: dict[str, Any], notebooks_dir: Path) -> str:
    """Run one step's notebook; '' when it passed, else ``Name: message`` of its error."""
    import papermill as pm

    src = notebooks_dir / f"{step.name}.ipynb"
    dst = out_dir / f"{step.name}.ipynb"
    try:
        pm.execute_notebook(
            str(src),
            str(dst),
            parameters=injected,
            cwd=str(notebooks_dir),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            # ipykernel logs to our stderr: that its local TCP ports are unencrypted, and
            # "KeyboardInterrupt caught" when papermill shuts it down. Cell errors still
            # reach the notebook and the run record.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            # Every cell has finished and written its files; a graceful shutdown only waits
            # (about 0.7 s a notebook) for atexit hooks that egress_lib does not register.
            shutdown_kernel="immediate",
        )
    except pm.PapermillExecutionError as e:
        return f"{e.ename}: {e.evalue}"
    return ""


def _step_result(out_dir: Path, step: Step) -> dict[str, Any]:
    path = out_dir / f"{step.name}.result.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run(
    params_file: Path,
    *,
    command: str = "run",
    out: Path | None = None,
    steps: Sequence[Step] = FULL,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    overrides: Mapping[str, object] | None = None,
    approve: bool = False,
    confirm: Callable[[str], bool] | None = None,
    wait_lock: float = 0,
    echo: Callable[[str], None] = lambda text: print(text, flush=True),
    quiet: bool = False,
) -> Outcome:
    """Plan ``steps`` against the cluster ``params_file`` describes, then (if approved) run them.

    ``command`` "plan" only plans. ``confirm`` asks the operator (a terminal prompt) when
    neither ``approve`` nor the parameters approve; without it an unapproved run is plan-only.
    Step 07 (egress policies) is left out when the parameters declare no policy.
    Raises :class:`~egress_lib.errors.ParameterError` before anything is written.
    """
    params: Parameters = load_parameters(params_file, overrides)
    steps = applicable(params, steps)
    if params.target == "sandbox":
        # A stopped sandbox is named now, not inside the first notebook.
        read_sandbox_info(sandbox_home(params.sandbox_home))
    root = out or records.runs_root()
    records.mark_killed(root, params.cluster_name)
    injectable = params.to_injectable()
    record = records.new_run(
        root,
        params.cluster_name,
        command=command,
        parameters=injectable,
        parameters_file=str(params_file),
    )
    out_dir = Path(record.out_dir)
    env = {RUN_DIR_ENV: str(out_dir.resolve()), RUN_ID_ENV: record.run_id}
    with ExitStack() as stack:
        stack.enter_context(_env(env))
        stack.enter_context(_sigterm_as_interrupt())
        try:
            outcome = _run(
                params,
                record,
                command,
                steps,
                notebooks_dir,
                approve,
                confirm,
                wait_lock,
                echo,
                stack,
                quiet,
            )
        except EgressError as e:
            # After the record exists (connect, the lock, planning): finish it, say why.
            running = next((s.step for s in record.steps if s.status == "running"), None)
            record.finish("failed", failed_step=running, message=f"{type(e).__name__}: {e}")
            outcome = Outcome(EXIT_FAILED, record, message=f"{type(e).__name__}: {e}")
        except KeyboardInterrupt:
            # nbclient's pending cell task fails with DeadKernelError once its kernel is shut
            # down; asyncio would print that task's traceback when it is collected at exit.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            running = next((s.step for s in record.steps if s.status == "running"), None)
            record.finish(
                "interrupted", failed_step=running, message="interrupted (Ctrl-C or SIGTERM)"
            )
            outcome = Outcome(EXIT_INTERRUPTED, record, message="interrupted")
    run_reports.write_summary(record)
    return outcome


def _run(
    params: Parameters,
    record: records.RunRecord,
    command: str,
    steps: Sequence[Step],
    notebooks_dir: Path,
    approve: bool,
    confirm: Callable[[str], bool] | None,
    wait_lock: float,
    echo: Callable[[str], None],
    stack: ExitStack,
    quiet: bool = False,
) -> Outcome:
    from egress_lib import lock

    session = connect(params)
    stack.callback(session.close)
    may_write = command != "plan" and (params.approve or approve or confirm is not None)
    if may_write:
        from egress_lib.steps._common import holder

        try:
            stack.enter_context(lock.acquire(session, holder(session), wait_seconds=wait_lock))
        except LockHeld as e:
            record.finish("failed", message=str(e))
            return Outcome(EXIT_FAILED, record, message=str(e))

    plans = plan_steps(session, steps, echo, quiet=quiet)
    for sp in plans:
        status = "failed" if sp.failed else "planned"
        error = sp.error or (
            "; ".join(f"{c.ref}: {c.detail}" for c in sp.plan.conflicts) if sp.plan else ""
        )
        record.add_step(
            sp.step.name,
            status,
            seconds=0.0,
            error=error,
            plan=[c.to_dict() for c in sp.plan.changes] if sp.plan else [],
            retries=retry.step_counts(Path(record.out_dir), sp.step.number),
        )
    failed = next((sp for sp in plans if sp.failed), None)
    if failed:
        what = "its plan has conflicts" if not failed.error else "while planning"
        error = failed.error or "; ".join(
            f"{c.ref}: {c.detail}" for c in (failed.plan.conflicts if failed.plan else [])
        )
        message = f"step {failed.step.name} failed ({what}): {error}"
        record.finish("failed", failed_step=failed.step.name, message=message)
        return Outcome(EXIT_FAILED, record, plans, message)

    n = distinct_changes(plans)
    needs = any(sp.plan and sp.plan.needs_approval for sp in plans)
    # Found but not converged (an install in flight, an entry Pending): waiting writes nothing,
    # so those steps run without approval, as their apply waits like a first run's.
    converging = [sp for sp in plans if sp.plan and sp.plan.converging]
    if command != "plan" and not needs and converging:
        return _wait_only(record, converging, params, echo, notebooks_dir)
    if command == "plan" or not needs:
        verdict = f"{n} change(s) planned, none applied" if n else "nothing to change"
        if command != "plan" and not params.approve and not approve:
            verdict += "; the steps were not run (nothing needed approval)"
        record.finish("plan-only" if command == "plan" else "ok", message=verdict)
        return Outcome(EXIT_NOT_APPROVED if n else EXIT_OK, record, plans, verdict)
    approved = params.approve or approve
    via = "approve: true in the parameters" if params.approve else "--approve"
    if not approved and confirm is not None:
        what = f"{n} change(s)" if n else "the verification pods"
        approved = confirm(f"apply {what} to cluster {params.cluster_name}? [y/N] ")
        via = "yes at the terminal prompt"
    if not approved:
        verdict = (
            f"plan only: {n} change(s) not applied (approve with --approve)"
            if n
            else "nothing to change; the verify pods were not started (approve with --approve)"
        )
        record.finish("plan-only", message=verdict)
        return Outcome(EXIT_NOT_APPROVED if n else EXIT_OK, record, plans, verdict)

    record.approval = records.approval(via)
    out_dir = Path(record.out_dir)
    (out_dir / APPROVED_PLAN_FILE).write_text(
        json.dumps(_approved_plan(plans), indent=2) + "\n", encoding="utf-8"
    )
    injected = {**params.to_injectable(), "approve": True}
    for sp in plans:
        error = _run_step(record, sp, out_dir, injected, notebooks_dir, echo, sp.step.summary)
        if error:
            message = f"step {sp.step.name} failed: {error}"
            record.finish("failed", failed_step=sp.step.name, message=message)
            return Outcome(EXIT_FAILED, record, plans, message)
    record.finish("ok", message=f"{len(plans)} step(s) ran")
    return Outcome(EXIT_OK, record, plans)


def _run_step(
    record: records.RunRecord,
    sp: StepPlan,
    out_dir: Path,
    injected: dict[str, Any],
    notebooks_dir: Path,
    echo: Callable[[str], None],
    what: str,
) -> str:
    """Execute one step's notebook and record it; the error text, or "" when it passed."""
    step = sp.step
    record.update_step(step.name, status="running", seconds=0.0)
    echo(f"{step.number} {step.name} started: {what}")
    started = time.monotonic()
    with _env({STEP_ENV: step.number}):  # the kernel's wait lines say which step waits
        error = _execute(step, out_dir, injected, notebooks_dir)
    result = _step_result(out_dir, step)
    took = duration(time.monotonic() - started)
    retries = retry.step_counts(out_dir, step.number)  # planning and applying
    retried = f" (API retries: {run_reports.retries_text(retries)})" if retries else ""
    echo(f"{step.number} {step.name} {'FAILED' if error else 'ok'} after {took}{retried}")
    record.update_step(
        step.name,
        status="failed" if error else "ok",
        seconds=time.monotonic() - started,
        output=str(out_dir / f"{step.name}.ipynb"),
        error=error,
        applied=result.get("changes_applied") or [],
        request_ids=result.get("request_ids") or [],
        retries=retries,
    )
    return error


def _wait_only(
    record: records.RunRecord,
    plans: list[StepPlan],
    params: Parameters,
    echo: Callable[[str], None],
    notebooks_dir: Path,
) -> Outcome:
    """Run the steps whose plans only wait; approve stays as given, since they write nothing."""
    out_dir = Path(record.out_dir)
    (out_dir / APPROVED_PLAN_FILE).write_text(
        json.dumps(_approved_plan(plans), indent=2) + "\n", encoding="utf-8"
    )
    waited: list[str] = []
    for sp in plans:
        waiting = sp.plan.converging if sp.plan else []
        what = f"{CONVERGING}{'; '.join(waiting)}"
        error = _run_step(record, sp, out_dir, params.to_injectable(), notebooks_dir, echo, what)
        if error:
            message = f"step {sp.step.name} failed: {error}"
            record.finish("failed", failed_step=sp.step.name, message=message)
            return Outcome(EXIT_FAILED, record, plans, message)
        waited += waiting
    message = "nothing to change; waited for " + "; ".join(waited)
    record.finish("ok", message=message)
    return Outcome(EXIT_OK, record, plans, message)


def teardown_steps() -> tuple[Step, ...]:
    """The one step of ``egress-runbook teardown``."""
    return (TEARDOWN,)
