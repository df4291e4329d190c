"""Step 03's choices against a sandbox (block 35): which EIP, busy tables, Pending entries.

The NAT gateway has two EIPs; a SNAT entry the runbook did not create already gives the node
vSwitch the second one, so DescribeNatGateways lists it UsedBySnatTable and the first Idle.
Faults (OperationConflict, IncorrectStatus.NATGW) come from the control API's fault injection;
Pending entries from the ``snat_entry`` transition in manual mode. Steps 01-02 run once for
the module; each test removes the runbook's own SNAT entries first, so their order is free.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import Session, WaitTimeout, connect, ledger, load_parameters, steps
from egress_lib.plan import Change, Plan, StepResult
from egress_sandbox.control.client import ControlClient
from egress_sandbox.topology import NatSpec, Topology

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
FIRST_EIP, SECOND_EIP = "47.96.0.11", "47.96.0.12"  # the topology's deterministic addresses

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def box() -> Iterator[Any]:
    base = Topology.loopback(35)
    nat = NatSpec(eips=2, snat_entries=[{"vswitch": "nodes", "snat_ip": SECOND_EIP}])
    home = Path(tempfile.mkdtemp(prefix="sbxs-"))  # short: the pod network is a UNIX socket
    try:
        with sandbox_home(home, 35, base.model_copy(update={"nat_gateways": [nat]})) as sandbox:
            s = connect(load_parameters(PARAMS).model_copy(update={"approve": True}))
            try:
                steps.controller.apply(s)  # 03 comes after the controller and the gateway
                steps.gateway.apply(s)
            finally:
                s.close()
            yield sandbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def control(box: Any) -> Iterator[ControlClient]:
    client = ControlClient.from_home(box.home)
    yield client
    client.reset()  # faults and transition modes; the world stays


def connect_with(**updates: Any) -> Session:
    params = load_parameters(PARAMS)
    snat = params.snat.model_copy(update=updates.pop("snat", {}))
    timeouts = params.timeouts.model_copy(update=updates.pop("timeouts", {}))
    return connect(
        params.model_copy(update={"approve": True, "snat": snat, "timeouts": timeouts, **updates})
    )


@pytest.fixture
def session(box: Any, control: ControlClient) -> Iterator[Session]:
    s = connect_with()
    for change in steps.snat.entries_to_delete(s):  # a clean table but the foreign entry
        steps.snat.delete_entry(s, change)
    yield s
    s.close()


def gateway_changes(done: Plan | StepResult, session: Session) -> list[Any]:
    vsw = session.params.gateway.vswitches[0]
    changes = done.changes if isinstance(done, Plan) else done.changes_applied
    return [c for c in changes if c.kind == "SnatEntry" and c.name == vsw]


def ours_in_table(session: Session) -> list[Any]:
    vsw = session.params.gateway.vswitches[0]
    table = steps.snat.snat_frame(session)
    return list(table[table["SourceVSwitchId"] == vsw]["SnatEntryId"])


def creates(control: ControlClient) -> list[dict[str, Any]]:
    return [
        e for e in control.audit(api="vpc", mutating=True) if e.get("action") == "CreateSnatEntry"
    ]


def test_the_eip_already_used_by_snat_is_chosen_and_shown(session: Session) -> None:
    plan = steps.snat.plan(session)
    [change] = gateway_changes(plan, session)
    assert change.action == "create"
    assert change.payload["SnatIp"] == SECOND_EIP
    assert f"EIP {SECOND_EIP}: chosen by UsingStatus: already used by SNAT entries" in (
        change.detail
    )
    assert SECOND_EIP in plan.to_frame().to_string()


def test_an_explicit_snat_ip_wins_and_says_so(box: Any) -> None:
    s = connect_with(snat={"snat_ip": FIRST_EIP})
    try:
        [change] = gateway_changes(steps.snat.plan(s), s)
    finally:
        s.close()
    assert change.payload["SnatIp"] == FIRST_EIP
    assert "snat.snat_ip, idle" in change.detail


@pytest.mark.parametrize("code", ["OperationConflict", "IncorrectStatus.NATGW"])
def test_a_busy_table_is_retried_and_one_entry_made(
    session: Session, control: ControlClient, code: str
) -> None:
    before = len(creates(control))
    control.add_fault(api="vpc", action="CreateSnatEntry", code=code, status=400, count=2)
    result = steps.snat.apply(session)
    [change] = [c for c in result.changes_applied if c.action == "create"]
    assert change.detail.endswith("Available after 2 busy answer(s)"), change.detail
    assert [a.split(" ")[0] for a in change.result["busy_answers"]] == [code, code]
    assert len(ours_in_table(session)) == 1
    assert len(creates(control)) - before == 3  # two refused, one accepted


def test_retries_stop_at_the_deadline(box: Any, control: ControlClient) -> None:
    s = connect_with(timeouts={"snat_seconds": 1})
    try:
        for change in steps.snat.entries_to_delete(s):
            steps.snat.delete_entry(s, change)
        control.add_fault(
            api="vpc", action="CreateSnatEntry", code="OperationConflict", status=400, count=1000
        )
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as info:
            steps.snat.apply(s)
        assert time.monotonic() - started < 15  # 1 s of backing off, not a hang
        assert "OperationConflict" in str(info.value)
        assert ours_in_table(s) == []
    finally:
        s.close()


def _pending_entry(session: Session, control: ControlClient) -> str:
    """An entry of ours left Pending, as by a run stopped while it waited."""
    control.set_transition("snat_entry", "manual")
    nat = steps.snat.discover(session)
    vsw = session.params.gateway.vswitches[0]
    entry_id, _ = steps.snat.create_entry(session, steps.snat.create_request(session, nat, vsw))
    ledger.record(
        session,
        ledger.created_entry(
            session, entry_id, nat.snat_table_id, vsw, nat.nat_gateway_id, nat.snat_ip
        ),
    )
    return entry_id


def test_a_pending_entry_is_waited_for_not_created_again(
    session: Session, control: ControlClient
) -> None:
    entry_id = _pending_entry(session, control)
    plan = steps.snat.plan(session)
    [change] = gateway_changes(plan, session)
    assert change.action == "wait" and entry_id in change.detail and "Pending" in change.detail
    assert not plan.has_changes
    before = len(creates(control))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(steps.snat.apply, session, plan)
        time.sleep(1.0)
        assert not running.done()  # waiting for the Pending entry
        control.advance(entry_id)
        result = running.result(timeout=30)
    [done] = gateway_changes(result, session)
    assert done.action == "wait" and done.detail == f"{entry_id} Available"
    assert len(creates(control)) == before  # nothing created while it was Pending
    assert ours_in_table(session) == [entry_id]
    [again] = gateway_changes(steps.snat.plan(session), session)
    assert again.action == "unchanged"


def test_a_plan_that_waited_is_not_stale_once_the_entry_is_available(
    session: Session, control: ControlClient
) -> None:
    entry_id = _pending_entry(session, control)
    plan = steps.snat.plan(session)
    control.advance(entry_id)  # Available before apply: what the plan waited for
    result = steps.snat.apply(session, plan)
    [done] = gateway_changes(result, session)
    assert done.detail == f"{entry_id} Available"


def test_someone_elses_pending_entry_is_waited_for_then_used_as_it_is(
    session: Session, control: ControlClient
) -> None:
    control.set_transition("snat_entry", "manual")
    nat = steps.snat.discover(session)
    vsw = session.params.gateway.vswitches[0]
    other = connect_with()  # another run: its entry is not in our ledger
    try:
        entry_id, _ = steps.snat.create_entry(other, steps.snat.create_request(other, nat, vsw))
    finally:
        other.close()
    try:
        plan = steps.snat.plan(session)
        [change] = gateway_changes(plan, session)
        assert change.action == "wait" and "not created by egress-runbook" in change.detail
        control.advance(entry_id)
        [done] = gateway_changes(steps.snat.apply(session, plan), session)
        assert done.detail == f"{entry_id} Available"
        [again] = gateway_changes(steps.snat.plan(session), session)
        assert again.action == "adopt"
    finally:
        control.set_transition("snat_entry", "timed", 0.05)
        steps.snat.delete_entry(
            session,
            Change(
                "delete",
                "SnatEntry",
                vsw,
                payload={"SnatEntryId": entry_id, "SnatTableId": nat.snat_table_id},
            ),
        )
