"""Runs killed half-way leave nothing behind (issue 11), each test on a fresh sandbox (block 56).

A killed run is a process of its own (tests/faults/fault_forkserver.py forks it), SIGKILLed
while the sandbox holds its write (a latency fault): the write lands after the run died.

- 03 killed inside CreateSnatEntry: the entry it made is in no ledger row but a pending one.
  The re-run's plan shows a confirm (the same call, the same ClientToken); plan-only writes
  nothing; apply records the entry as ours, and teardown deletes it. Teardown straight after
  the kill confirms and deletes it too.
- A pending row whose ClientToken made nothing: an entry someone else made with the same name
  and EIP stays theirs (the token decides, not the name); with no entry, the create is
  completed with that token; teardown with such a row does not fail.
- 06 killed inside the probe pod's create: the pod lands after the run died. The next 06
  plans its delete ("leftover verify pod of run X"), plan-only keeps it, apply deletes it.

The sandbox is the witness: its SNAT table, its ClientToken record, its pods and audit log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alibabacloud_vpc20160428 import models as vpc_models
from sandbox_clients import vpc
from sandbox_env import sandbox_home

from egress_lib import (
    NotApproved,
    Session,
    connect,
    kube,
    ledger,
    load_parameters,
    ownership,
    steps,
)
from egress_lib.plan import Plan

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
FORKSERVER = REPO / "tests" / "faults" / "fault_forkserver.py"
BLOCK = 56
HOLD_MS = 1500  # how long the sandbox holds the write the run is killed inside
OVERRIDES: dict[str, object] = {"approve": True}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def topology() -> Topology:
    from egress_sandbox.topology import Topology, Transition, Transitions

    now = Transition(mode="immediate", seconds=0)
    topo = Topology.loopback(BLOCK)
    topo.transitions = Transitions(
        snat_entry=now, nat_gateway=now, addon_install=now, mse_gateway=now
    )
    return topo


@pytest.fixture
def box() -> Iterator[Sandbox]:
    home = Path(tempfile.mkdtemp(prefix="sbxk-"))  # short: the pod network is a UNIX socket
    try:
        with sandbox_home(home / "h", BLOCK, topology()) as sandbox:
            yield sandbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


def session_for(approve: bool = True) -> Session:
    return connect(load_parameters(PARAMS, {**OVERRIDES, "approve": approve}))


@pytest.fixture
def session(box: Sandbox) -> Iterator[Session]:
    s = session_for()
    yield s
    s.close()


def set_up_to(s: Session, *modules: Any) -> None:
    for module in modules:
        module.apply(s, module.plan(s))


# ---- killing a run inside its write --------------------------------------------------------


class Runs:
    """The fork server: each request is a runbook run of one step, a process of its own."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline(), "the fork server did not start"

    def spawn(self, step: str, log: Path) -> int:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request = {
            "params": str(PARAMS),
            "overrides": OVERRIDES,
            "step": step,
            "env": {"EGRESS_SANDBOX_HOME": os.environ["EGRESS_SANDBOX_HOME"]},
            "log": str(log),
        }
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return int(json.loads(self._proc.stdout.readline())["pid"])

    def close(self) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc.stdout.close()


@pytest.fixture
def runs() -> Iterator[Runs]:
    server = Runs()
    yield server
    server.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _faults_left(box: Sandbox) -> int:
    listed = box.controls.list_faults()
    return sum(int(f["count"]) for f in [*listed["cloud"], *listed["k8s"]])


def kill_inside(
    box: Sandbox, runs: Runs, step: str, fault: dict[str, Any], write: Callable[[Any], bool]
) -> None:
    """Run ``step`` in its own process, SIGKILL it while the sandbox holds its ``write``, and
    return once the held write has landed."""
    seen = sum(1 for r in box.audit.records() if write(r))
    box.controls.add_fault({**fault, "latency_ms": HOLD_MS, "count": 1})
    with tempfile.TemporaryDirectory(prefix="kill-log-") as tmp:
        log = Path(tmp) / "run.log"
        pid = runs.spawn(step, log)
        try:
            held = _until(lambda: not _alive(pid) or not _faults_left(box), 60)
            assert held and _alive(pid), f"the run ended before its write: {log.read_text()}"
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        assert _until(lambda: not _alive(pid), 10)
    landed = _until(lambda: sum(1 for r in box.audit.records() if write(r)) > seen, 10)
    assert landed, "the held write never landed"


def _create_snat(record: Any) -> bool:
    return bool(record.action == "CreateSnatEntry" and record.status == 200)


def _create_pod(record: Any) -> bool:
    return bool(
        record.api == "k8s"
        and record.action == "create"
        and record.mutating
        and record.path.endswith("/pods")
        and record.status == 201
    )


SNAT_FAULT = {"api": "vpc", "action": "CreateSnatEntry"}
POD_FAULT = {"api": "k8s", "action": "create", "resource": "pods", "skip_dry_runs": True}


# ---- what the sandbox holds ------------------------------------------------------------------


def entries_for(box: Sandbox, vswitch: str) -> list[Any]:
    with box.cloud_lock:
        return [e for e in box.cloud.snat_entries.values() if e.source_vswitch_id == vswitch]


def writes_since(box: Sandbox, mark: int) -> list[str]:
    return [
        f"{r.api} {r.action} {r.path}"
        for r in box.audit.records()[mark:]
        if r.mutating and r.api != "control"
    ]


def snat_changes(plan: Plan) -> list[Any]:
    return [c for c in plan.changes if c.kind == "SnatEntry"]


def plant_pending(s: Session, token: str) -> tuple[str, Any]:
    """A pending ledger row for the gateway vSwitch, as a run stopped inside its create
    leaves it; ``token`` never reached the API. Returns the vSwitch and the NAT choice."""
    nat = steps.snat.discover(s)
    vsw = s.params.gateway.vswitches[0]
    request = steps.snat.create_request(s, nat, vsw)
    ledger.record(s, ledger.pending_entry(s, request, nat.nat_gateway_id, token))
    return vsw, nat


# ---- 03 killed inside CreateSnatEntry ---------------------------------------------------------


def test_a_create_killed_in_flight_is_confirmed_by_its_client_token(
    box: Sandbox, session: Session, runs: Runs
) -> None:
    set_up_to(session, steps.controller, steps.gateway)
    kill_inside(box, runs, "03", SNAT_FAULT, _create_snat)
    vsw = session.params.gateway.vswitches[0]
    (made,) = entries_for(box, vsw)
    (row,) = ledger.pending_entries(session)  # written before the call was sent
    assert (row.vswitch_id, row.snat_ip, row.id) == (vsw, made.snat_ip, "")

    # The re-run's plan shows the confirm; a plan-only run writes nothing.
    readonly = session_for(approve=False)
    plan = steps.snat.plan(readonly)
    (change,) = snat_changes(plan)
    assert change.action == "create"
    assert change.detail.startswith(f"confirm {made.snat_entry_id} ")
    assert f"run {row.run_id} sent CreateSnatEntry for {vsw}" in change.detail
    assert row.client_token in change.body
    mark = len(box.audit.records())
    with pytest.raises(NotApproved):
        steps.snat.apply(readonly, plan)
    assert writes_since(box, mark) == []
    assert ledger.snat_entries(session) == []
    readonly.close()

    # Approved: the same call with the same token answers with the entry; it is ours now.
    rerun = session_for()
    done = steps.snat.apply(rerun, steps.snat.plan(rerun))
    result = next(c for c in done.changes_applied if c.kind == "SnatEntry")
    assert result.result["ours"] is True
    assert f"answers with {made.snat_entry_id}: recorded as ours" in result.detail
    assert [e.snat_entry_id for e in entries_for(box, vsw)] == [made.snat_entry_id]
    assert [e.id for e in ledger.snat_entries(session)] == [made.snat_entry_id]
    assert ledger.pending_entries(session) == []
    assert [c.action for c in snat_changes(steps.snat.plan(rerun))] == ["unchanged"]

    # Teardown deletes it: the runbook made it.
    down = steps.teardown.plan(rerun)
    assert [c.payload["SnatEntryId"] for c in snat_changes(down)] == [made.snat_entry_id]
    steps.teardown.apply(rerun, down)
    assert entries_for(box, vsw) == []
    rerun.close()


def test_teardown_after_a_killed_create_confirms_and_deletes_the_entry(
    box: Sandbox, session: Session, runs: Runs
) -> None:
    set_up_to(session, steps.controller, steps.gateway)
    kill_inside(box, runs, "03", SNAT_FAULT, _create_snat)
    vsw = session.params.gateway.vswitches[0]
    (made,) = entries_for(box, vsw)

    down = steps.teardown.plan(session)
    (change,) = snat_changes(down)
    assert change.action == "delete"
    assert change.detail.startswith(f"{made.snat_entry_id} (egress-gateway, ")
    assert "if it is ours" in change.detail
    steps.teardown.apply(session, down)
    assert entries_for(box, vsw) == []


def test_a_pending_token_that_made_nothing_leaves_a_lookalike_entry_alone(
    box: Sandbox, session: Session
) -> None:
    """Same vSwitch, name and EIP, made by someone else: the name proves nothing."""
    set_up_to(session, steps.controller, steps.gateway)
    vsw, nat = plant_pending(session, "a-token-that-never-reached-the-api")
    theirs = vpc(box).create_snat_entry(
        vpc_models.CreateSnatEntryRequest(
            region_id=session.params.region_id,
            snat_table_id=nat.snat_table_id,
            source_vswitch_id=vsw,
            snat_ip=nat.snat_ip,
            snat_entry_name=session.params.snat.entry_name,
            client_token="someone-else",
        )
    )
    their_id = str(theirs.body.snat_entry_id)

    plan = steps.snat.plan(session)
    (change,) = snat_changes(plan)
    assert change.detail.startswith(f"confirm {their_id} ")
    done = steps.snat.apply(session, plan)
    result = next(c for c in done.changes_applied if c.kind == "SnatEntry")
    assert result.result["ours"] is False
    assert f"{their_id} is not ours: the ClientToken made nothing" in result.detail
    assert "used as it is; teardown leaves it" in result.detail
    assert ledger.snat_entries(session) == [] and ledger.pending_entries(session) == []

    (again,) = snat_changes(steps.snat.plan(session))
    assert again.action == "adopt"  # used as it is, as before the stopped run
    steps.teardown.apply(session, steps.teardown.plan(session))
    assert [e.snat_entry_id for e in entries_for(box, vsw)] == [their_id]


def test_a_pending_create_without_an_entry_is_completed_with_its_token(
    box: Sandbox, session: Session
) -> None:
    set_up_to(session, steps.controller, steps.gateway)
    token = "the-stopped-runs-token"
    vsw, _ = plant_pending(session, token)
    (pending,) = ledger.pending_entries(session)

    plan = steps.snat.plan(session)
    (change,) = snat_changes(plan)
    assert change.action == "create"
    assert f"with the ClientToken of run {pending.run_id}" in change.detail
    steps.snat.apply(session, plan)
    (made,) = entries_for(box, vsw)
    with box.cloud_lock:
        assert box.cloud.client_tokens[f"CreateSnatEntry:{token}"].result == made.snat_entry_id
    (row,) = ledger.snat_entries(session)
    assert (row.id, row.client_token) == (made.snat_entry_id, token)
    assert ledger.pending_entries(session) == []


def test_teardown_with_a_pending_row_and_no_entry_does_not_fail(
    box: Sandbox, session: Session
) -> None:
    set_up_to(session, steps.controller, steps.gateway)
    plant_pending(session, "sent-and-refused")
    down = steps.teardown.plan(session)
    assert snat_changes(down) == []
    steps.teardown.apply(session, down)
    name = ledger.configmap_name(session.params.cluster_name)
    assert kube.get(session, "ConfigMap", name, session.params.namespace) is None


# ---- 06 killed inside a probe pod's create ---------------------------------------------------


def probe_pods(box: Sandbox, s: Session) -> list[dict[str, Any]]:
    rt = box.store.types.get("", "v1", "pods")
    items, _ = box.store.list(rt, s.params.namespace)
    return [o for o in items if ownership.RUN_LABEL in (o["metadata"].get("labels") or {})]


@needs_curl
def test_a_probe_pod_that_lands_after_its_run_died_is_deleted_by_the_next_verify(
    box: Sandbox, session: Session, runs: Runs
) -> None:
    set_up_to(session, steps.controller, steps.gateway, steps.snat, steps.services, steps.ingress)
    kill_inside(box, runs, "06", POD_FAULT, _create_pod)
    (left,) = probe_pods(box, session)
    name = left["metadata"]["name"]
    killed_run = left["metadata"]["labels"][ownership.RUN_LABEL]
    assert killed_run != session.short_run_id

    readonly = session_for(approve=False)
    plan = steps.verify.plan(readonly)
    (delete,) = [c for c in plan.changes if c.action == "delete"]
    assert (delete.kind, delete.name) == ("Pod", name)
    assert delete.detail.startswith(f"leftover verify pod of run {killed_run}: ")
    assert any(
        c.name == name and c.detail.startswith("leftover verify pod")
        for c in steps.teardown.plan(readonly).changes
    )
    with pytest.raises(NotApproved):
        steps.verify.apply(readonly, plan)
    assert [p["metadata"]["name"] for p in probe_pods(box, session)] == [name]
    readonly.close()

    done = steps.verify.apply(session, steps.verify.plan(session))
    assert any(c.action == "delete" and c.name == name for c in done.changes_applied)
    assert probe_pods(box, session) == []
