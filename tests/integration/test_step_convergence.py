"""Steps that converge, recover and fail fast (issue 11), each against a fresh sandbox (block 46).

- A Failed MseIngressConfig of the runbook's is recreated by 02 once approved (a delete and a
  create in its plan, its Events shown); without approval nothing is written.
- 05's and 06's waits stop at once when the gateway the IngressClass names is Failed.
- "Unchanged" means converged: 01 while the add-on is still installing, 02 while the config is
  not Listening and 03 while the SNAT entry is Pending wait, as a first run would.
- 01 joins an install another run (here: a direct CS call) has in flight.
- Verify pods are unique per attempt, and one whose create got no answer is deleted anyway.

The sandbox's audit log is the witness of what was written; faults, Failed configs and manual
transitions come from its control API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cs20151215 import models as cs_models
from sandbox_clients import MSE_ADDON, cs
from sandbox_env import sandbox_home
from waiting import wait_for

from egress_lib import (
    KubernetesApiError,
    NotApproved,
    Session,
    StepFailed,
    connect,
    kube,
    ledger,
    load_parameters,
    ownership,
    steps,
)
from egress_lib.error_display import render
from egress_sandbox.control.client import ControlClient

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
BLOCK = 46
MESSAGE = "vSwitch has no free IP address for the gateway nodes"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture
def box() -> Iterator[Any]:
    home = Path(tempfile.mkdtemp(prefix="sbxc-"))  # short: the pod network is a UNIX socket
    try:
        with sandbox_home(home, BLOCK) as sandbox:
            yield sandbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def control(box: Any) -> Iterator[ControlClient]:
    client = ControlClient.from_home(box.home)
    yield client
    client.reset()


def session_for(approve: bool = True, **timeouts: int) -> Session:
    params = load_parameters(PARAMS)
    return connect(
        params.model_copy(
            update={"approve": approve, "timeouts": params.timeouts.model_copy(update=timeouts)}
        )
    )


@pytest.fixture
def session(box: Any) -> Iterator[Session]:
    s = session_for(ingress_status_seconds=30)
    yield s
    s.close()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def writes_since(control: ControlClient, since: str) -> list[tuple[str, str, str]]:
    return [
        (r["api"], r["action"], r["path"])
        for r in control.audit(since=since, mutating=True)
        if r["api"] != "control"
    ]


def set_up_to(session: Session, *names: str) -> None:
    for name in names:
        getattr(steps, name).apply(session)


def fail_gateway(session: Session, control: ControlClient) -> str:
    name = session.params.gateway.config_name
    control.mse_fail(name, MESSAGE)
    return name


# ---- 1. a Failed MseIngressConfig is recoverable --------------------------------------------


def test_a_failed_gateway_is_deleted_and_recreated_once_approved(
    box: Any, control: ControlClient, session: Session
) -> None:
    set_up_to(session, "controller", "gateway")
    name = fail_gateway(session, control)
    old_uid = kube.get(session, "MseIngressConfig", name)["metadata"]["uid"]

    no = session_for(approve=False)
    try:
        plan = steps.gateway.plan(no)
        text = str(plan)
        print(text)
        mine = [c for c in plan.changes if c.kind == "MseIngressConfig"]
        assert [c.action for c in mine] == ["delete", "create", "wait"]
        assert MESSAGE in mine[0].detail and "never retries" in mine[0].detail
        assert f"MseIngressConfig {name} is Failed; Events: " in text
        assert f"Warning Failed (x1): {MESSAGE}" in text
        since = now()
        with pytest.raises(NotApproved) as refused:
            steps.gateway.apply(no)
        assert f"recreate MseIngressConfig/{name}" in str(refused.value)
        assert writes_since(control, since) == []  # without approval nothing is written
    finally:
        no.close()

    since = now()
    result = steps.gateway.apply(session, plan)
    listening = result.objects[0]
    assert listening["status"]["phase"] == "Listening"
    assert listening["metadata"]["uid"] != old_uid
    assert [c.action for c in result.changes_applied if c.kind == "MseIngressConfig"] == [
        "delete",
        "create",
    ]
    wrote = [
        (api, verb) for api, verb, path in writes_since(control, since) if "mseingress" in path
    ]
    assert ("k8s", "delete") in wrote and ("k8s", "create") in wrote
    # One gateway, not the Failed one's left behind next to the new one.
    assert steps.gateway.mse_gateway(session) is not None
    again = steps.gateway.plan(session)
    assert [c.action for c in again.changes if c.kind == "MseIngressConfig"] == [
        "unchanged",
        "wait",
    ]


def test_a_failed_gateway_the_runbook_did_not_create_is_not_recreated(
    control: ControlClient, session: Session
) -> None:
    set_up_to(session, "controller", "gateway")
    name = session.params.gateway.config_name
    obj = kube.get(session, "MseIngressConfig", name)
    obj["metadata"]["labels"].pop(ownership.MANAGED_BY)  # as if someone else had made it
    session.custom.replace_cluster_custom_object(
        "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs", name, obj
    )
    fail_gateway(session, control)
    s = connect(session.params.model_copy(update={"adopt": [f"MseIngressConfig/{name}"]}))
    try:
        plan = steps.gateway.plan(s)
        assert "delete" not in [c.action for c in plan.changes]
        assert any("is not recreated" in w for w in plan.warnings), plan.warnings
    finally:
        s.close()


# ---- 2. waits fail fast when the gateway is Failed ------------------------------------------


def test_05_and_06_stop_at_once_naming_the_failed_gateway(
    control: ControlClient, session: Session
) -> None:
    set_up_to(session, "controller", "gateway", "snat", "services")
    name = fail_gateway(session, control)
    plan = steps.ingress.plan(session)
    assert any(f"MseIngressConfig {name}" in w and "is Failed" in w for w in plan.warnings)

    # ingress_status_seconds is 30: without the fail-fast this would be a WaitTimeout.
    with pytest.raises(StepFailed) as info:
        steps.ingress.apply(session, plan)
    err = info.value
    text = str(render(err))
    print(text)
    assert f"MseIngressConfig {name}, the gateway of IngressClass mse, is Failed: {MESSAGE}" in (
        str(err)
    )
    assert ("Warning", "Failed", MESSAGE) in [(e.type, e.reason, e.message) for e in err.events]
    assert "re-run 02-create-gateway with approve = True" in err.remedy
    assert "re-run 05-ingress-routes" in err.remedy

    with pytest.raises(StepFailed) as info:
        steps.verify.verify(session)
    assert "is Failed" in str(info.value) and "re-run 06-verify" in info.value.remedy

    # What the remedy says: 02 approved recreates it; then 05 gets its addresses.
    steps.gateway.apply(session)
    (addr,) = steps.ingress.apply(session).tables["addresses"]["Address"]
    assert addr


# ---- 3. "unchanged" means converged ---------------------------------------------------------


def _direct_install(box: Any) -> str:
    """InstallClusterAddons through CS, as another run or the console would; its task ID."""
    name, version = MSE_ADDON
    body = cs_models.InstallClusterAddonsRequestBody(name=name, version=version)
    task = cs(box).install_cluster_addons(
        box.cluster_id, cs_models.InstallClusterAddonsRequest(body=[body])
    )
    return str(task.body.task_id)


def test_01_waits_for_an_install_in_flight_instead_of_calling_it_installed(
    box: Any, control: ControlClient, session: Session
) -> None:
    control.set_transition("addon_install", "manual")
    task_id = _direct_install(box)  # in flight until advanced
    plan = steps.controller.plan(session)
    print(plan)
    (addon,) = [c for c in plan.changes if c.kind == "Addon"]
    assert addon.action == "wait" and addon.detail.startswith("no change; waiting for add-on")
    assert "(initial)" in addon.detail and not plan.has_changes
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(steps.controller.apply, session, plan)
        control.advance(task_id)
        result = running.result(timeout=60)
    kinds = {o["kind"] for o in result.objects}
    assert "Deployment" in kinds  # the controller is there: 02 can create its config
    installs = [r for r in control.audit(api="cs", mutating=True) if "install" in r["path"]]
    assert len(installs) == 1  # the one in flight; none of ours


@pytest.mark.parametrize("when", ["before apply", "during apply"])
def test_01_joins_an_install_another_run_started_after_its_plan(
    box: Any, control: ControlClient, session: Session, when: str
) -> None:
    plan = steps.controller.plan(session)
    assert [c.action for c in plan.changes if c.kind in ("IngressClass", "Addon")] == [
        "create",
        "create",
    ]
    control.set_transition("addon_install", "manual")
    with ThreadPoolExecutor(1) as pool:
        if when == "before apply":
            task_id = _direct_install(box)
            running = pool.submit(steps.controller.apply, session, plan)
        else:
            # The IngressClass create (the stale checks make no dry run) is held on the
            # server; the other install starts during it, so this run's InstallClusterAddons
            # meets an install in flight.
            control.add_fault(
                api="k8s", action="create", resource="ingressclasses", latency_ms=1500, count=1
            )
            running = pool.submit(steps.controller.apply, session, plan)
            wait_for(lambda: not control.faults()["k8s"], 30, "the IngressClass create")
            task_id = _direct_install(box)
        wait_for(
            lambda: (
                running.done()
                or any(
                    r.get("error_code") == "AddonStateConflict"
                    for r in control.audit(api="cs", mutating=True)
                )
            ),
            30,
            "this run's install to meet the one in flight",
        )
        control.advance(task_id)
        result = running.result(timeout=60)
    (addon,) = [c for c in result.changes_applied if c.kind == "Addon"]
    assert "installed meanwhile by another run" in addon.detail, addon.detail
    assert "Deployment" in {o["kind"] for o in result.objects}
    ok = [
        r
        for r in control.audit(api="cs", mutating=True)
        if "install" in r["path"] and r["status"] < 400
    ]
    assert len(ok) == 1  # one install, not two


def test_02_and_03_rerun_while_not_converged_wait_and_say_so(
    control: ControlClient, session: Session
) -> None:
    set_up_to(session, "controller")
    control.set_transition("mse_gateway", "manual")
    control.set_transition("snat_entry", "manual")
    name = session.params.gateway.config_name
    quick = session_for(gateway_seconds=1, snat_seconds=1)
    try:
        for step in (steps.gateway, steps.snat):  # a first run that stopped while waiting
            with pytest.raises(Exception, match="gave up waiting"):
                step.apply(quick)
    finally:
        quick.close()
    (entry,) = ledger.snat_entries(session)

    gw_plan = steps.gateway.plan(session)
    snat_plan = steps.snat.plan(session)
    print(gw_plan, snat_plan, sep="\n")
    assert not gw_plan.has_changes and not snat_plan.has_changes
    assert f"no change; waiting for MseIngressConfig {name} (Pending) to be Listening" in (
        gw_plan.notes
    )
    (wait,) = [c for c in snat_plan.changes if c.kind == "SnatEntry"]
    assert wait.detail.startswith(f"no change; waiting for {entry.id} (Pending)")
    with ThreadPoolExecutor(2) as pool:
        gw_run = pool.submit(steps.gateway.apply, session, gw_plan)
        snat_run = pool.submit(steps.snat.apply, session, snat_plan)
        control.set_transition("mse_gateway", "timed", 0.05)
        control.set_transition("snat_entry", "timed", 0.05)
        control.advance(name)
        control.advance(entry.id)
        assert gw_run.result(timeout=60).objects[0]["status"]["phase"] == "Listening"
        snat_done = snat_run.result(timeout=60)
    (waited,) = [c for c in snat_done.changes_applied if c.kind == "SnatEntry"]
    assert waited.detail == f"{entry.id} Available"


@pytest.mark.timeout(300)
def test_a_run_while_the_snat_entry_is_pending_waits_for_it_without_approval(
    box: Any, control: ControlClient, session: Session, tmp_path: Path
) -> None:
    # `egress-runbook run` used to end "nothing to change" without running the step, and 06
    # then failed with 503: a wait writes nothing, so the step runs although approve is false.
    from egress_lib import runner

    set_up_to(session, "controller", "gateway")
    control.set_transition("snat_entry", "manual")
    quick = session_for(snat_seconds=1)
    try:
        with pytest.raises(Exception, match="gave up waiting"):
            steps.snat.apply(quick)  # a first run that stopped while waiting
    finally:
        quick.close()
    (entry,) = ledger.snat_entries(session)
    since = now()
    lines: list[str] = []

    def release_when_started() -> None:
        wait_for(lambda: any("started" in line for line in lines), timeout=120, what="03 start")
        control.set_transition("snat_entry", "timed", 0.05)
        control.advance(entry.id)

    # The runner stays on this thread (its kernels' event loops belong to it).
    with ThreadPoolExecutor(1) as pool:
        released = pool.submit(release_when_started)
        outcome = runner.run(PARAMS, out=tmp_path, steps=[steps.RUNBOOK[3]], echo=lines.append)
        released.result(timeout=10)
    print("\n".join(lines), outcome.message, sep="\n")
    assert outcome.code == runner.EXIT_OK
    started = f"03 03-configure-snat started: no change; waiting for {entry.id} (Pending)"
    assert any(line.startswith(started) for line in lines)
    assert outcome.message.startswith(f"nothing to change; waited for {entry.id} (Pending)")
    assert outcome.record.approval == {}  # nothing was approved: nothing needed it
    assert [w for w in writes_since(control, since) if "/leases" not in w[2]] == []
    assert box.cloud.snat_entries[entry.id].status == "Available"


# ---- 5. verify pods ---------------------------------------------------------------------------


def _run_pods(session: Session) -> list[str]:
    p = session.params
    found = session.core.list_namespaced_pod(
        p.namespace,
        label_selector=f"{ownership.selector(p)},{ownership.RUN_LABEL}={session.short_run_id}",
        _preload_content=False,
    )
    return [i["metadata"]["name"] for i in json.loads(found.data)["items"]]


def _pod_creates(control: ControlClient, since: str) -> list[dict[str, Any]]:
    return [
        r
        for r in control.audit(since=since, api="k8s", mutating=True)
        if r["action"] == "create" and r["path"].endswith("/pods")
    ]


@needs_curl
def test_two_verify_runs_of_one_run_id_never_share_a_pod(
    control: ControlClient, session: Session
) -> None:
    set_up_to(session, "controller", "gateway", "snat", "services", "ingress")
    twin = dataclasses.replace(session_for(), run_id=session.run_id)  # e.g. two kernels
    since = now()
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(steps.verify.verify, [session, twin]))
    finally:
        twin.close()
    for result in results:  # each reports its own pods' answers
        assert result.ok, result.to_frame().to_string()
    # Two pods per run (the destination, the direct path), each created once, none refused.
    assert [r["status"] for r in _pod_creates(control, since)] == [201] * 4
    assert _run_pods(session) == []


@needs_curl
def test_a_verify_pod_whose_create_timed_out_is_not_left_behind(
    control: ControlClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_up_to(session, "controller", "gateway", "snat", "services", "ingress")
    # The client gives up after 1 s; the server stores the pod after 3 s.
    monkeypatch.setattr("egress_lib.kinds.REQUEST_TIMEOUT", (5, 1))
    control.add_fault(api="k8s", action="create", resource="pods", latency_ms=3000)
    since = now()
    try:
        result = steps.verify.verify(session)
    except KubernetesApiError as e:
        print(render(e))
        assert "deleted the pod if it appeared" in e.remedy
        creates = 1  # the one create, stored after the client gave up
    else:
        # A retried create made the pod; the held one lands later (after the pod's delete,
        # making it anew, or before it, meeting AlreadyExists): two creates, one each way.
        assert result.ok, result.to_frame().to_string()
        creates = 3  # the destination's (twice) and the direct path's
    wait_for(
        lambda: len(_pod_creates(control, since)) >= creates,
        30,
        "the held create to finish on the server",
    )
    wait_for(lambda: _run_pods(session) == [], 30, "no verify pod of this run left")
