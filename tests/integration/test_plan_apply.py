"""Plan, approve, apply exactly that: the runbook is safe to point at a production cluster.

Each test gets a fresh sandbox (block 28, one at a time) and drives ``egress-runbook`` as an
operator does. The sandbox's audit log is the witness: it records every request the SDKs and
the kubernetes client make, and whether it wrote anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox_env import sandbox_home

from egress_lib import PlanStale, connect, load_parameters, steps
from egress_lib.cli import main as runbook_main
from egress_lib.steps import RUNBOOK

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Any]:
    with sandbox_home(tmp_path / "home", 28) as sandbox:
        yield sandbox


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def writes_since(box: Any, since: str) -> list[tuple[str, str, str]]:
    """Mutating requests since ``since``: (api, action, path)."""
    return [(r.api, r.action, r.path) for r in box.audit.records(since=since, mutating=True)]


def records(out: Path) -> list[dict[str, Any]]:
    found = sorted(out.rglob("run.json"))
    return [json.loads(p.read_text()) for p in found]


def owned_snat_entries(box: Any) -> list[Any]:
    return list(box.cloud.snat_entries.values())


def session_for(approve: bool, **overrides: object) -> Any:
    return connect(load_parameters(PARAMS, {"approve": approve, **overrides}))


def test_plan_on_a_fresh_sandbox_shows_every_step_and_writes_nothing(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = now()
    assert runbook_main(["plan", str(PARAMS), "--out", str(tmp_path / "runs")]) == 3
    out = capsys.readouterr().out
    for step in RUNBOOK:
        assert f"Plan for {step.name}" in out, step.name
    # Creates show the whole object, as the server's dry run returns it; cloud changes their
    # request's fields.
    assert "kind: Service" in out and "type: ExternalName" in out
    assert "vpc:CreateSnatEntry" in out and "SourceVSwitchId:" in out
    assert "has no address yet" in out  # verify cannot know the CLB address before 02/05
    assert writes_since(box, since) == []
    (record,) = records(tmp_path / "runs")
    assert record["status"] == "plan-only"
    assert (tmp_path / "runs" / "sandbox" / record["run_id"] / "summary.md").exists()


def test_run_without_approval_and_without_a_terminal_is_plan_only(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = now()
    assert runbook_main(["run", str(PARAMS), "--out", str(tmp_path / "runs")]) == 3
    captured = capsys.readouterr()
    assert "FAILED" not in captured.out + captured.err
    assert "not applied" in captured.out
    assert writes_since(box, since) == []
    (record,) = records(tmp_path / "runs")
    assert record["status"] == "plan-only"
    assert {s["status"] for s in record["steps"]} == {"planned"}


def test_a_stale_plan_raises_plan_stale_and_writes_nothing(box: Any) -> None:
    yes = session_for(True)
    steps.snat.apply(yes)
    steps.services.apply(yes)
    no = session_for(False)
    snat_plan = steps.snat.plan(no)
    services_plan = steps.services.plan(no)
    assert not snat_plan.has_changes and not services_plan.has_changes

    # Someone deletes the SNAT entry and the Service after the plans were made.
    (entry,) = steps.snat.entries_to_delete(yes)
    steps.snat.delete_entry(yes, entry)
    p = yes.params
    yes.core.delete_namespaced_service(p.destinations[0].name, p.namespace)

    since = now()
    with pytest.raises(PlanStale, match="SnatEntry") as err:
        steps.snat.apply(no, snat_plan)
    assert "planned" in str(err.value) and "nothing was written" in str(err.value)
    with pytest.raises(PlanStale, match=p.destinations[0].name):
        steps.services.apply(no, services_plan)
    assert writes_since(box, since) == []


def _run(*args: str) -> int:
    return runbook_main(list(args))


def _plant(box: Any) -> dict[str, str]:
    """Objects someone else made before the runbook ever ran."""
    s = session_for(True)
    nat = steps.snat.discover(s)
    from alibabacloud_vpc20160428 import models as m

    planted = s.vpc.create_snat_entry(
        m.CreateSnatEntryRequest(
            region_id=s.params.region_id,
            snat_table_id=nat.snat_table_id,
            source_vswitch_id=s.params.gateway.vswitches[0],
            snat_ip=nat.snat_ip,
            snat_entry_name="someone-elses",
        )
    ).body.snat_entry_id
    deadline = time.monotonic() + 30
    while box.cloud.snat_entries[planted].status != "Available":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ns = s.params.namespace
    s.networking.create_namespaced_ingress(
        ns,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "mse-ingress"},
            "spec": {
                "rules": [
                    {
                        "host": "intranet.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "unrelated", "port": {"number": 80}}
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        },
    )
    s.core.create_namespaced_service(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "unrelated"},
            "spec": {"type": "ExternalName", "externalName": "intranet.example.com"},
        },
    )
    s.networking.create_ingress_class(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "someone-elses"},
            "spec": {"controller": "example.com/other"},
        }
    )
    s.close()
    return {"snat": str(planted)}


def test_planted_objects_conflict_a_removed_destination_goes_and_teardown_spares_theirs(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = _plant(box)
    out = str(tmp_path / "runs")

    # The seed's Ingress name is taken: the plan says so and cannot be applied.
    assert _run("plan", str(PARAMS), "--out", out) == 1
    text = capsys.readouterr()
    assert "conflict" in text.out and "Ingress/default/mse-ingress" in text.out + text.err
    assert "adopt" in text.out + text.err

    # Under another Ingress name it runs, with a second destination. The planted SNAT entry
    # already gives the gateway vSwitch the EIP, so it is adopted (used, not created).
    data = yaml.safe_load(PARAMS.read_text())
    data["destinations"][0]["ingress_name"] = "egress-routes"
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(data))
    data["destinations"].append(
        {"name": "extra-api", "host": "api.example.com", "port": 80, "ingress_name": "extra"}
    )
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump(data))
    assert _run("run", str(two), "--approve", "--out", out) == 0
    capsys.readouterr()
    assert {e.snat_entry_id for e in owned_snat_entries(box)} == {planted["snat"]}

    # The second destination leaves the parameters: the plan shows its deletes, apply does them.
    assert _run("plan", str(one), "--out", out) == 3
    plan_text = capsys.readouterr().out
    assert "delete     Service" in plan_text and "default/extra-api" in plan_text
    assert "delete     Ingress" in plan_text and "default/extra " in plan_text
    assert _run("run", str(one), "--approve", "--out", out) == 0
    s = session_for(False)
    ns = s.params.namespace
    from egress_lib import kube

    assert kube.get(s, "Service", "extra-api", ns) is None
    assert kube.get(s, "Ingress", "extra", ns) is None
    assert kube.get(s, "Service", "aliyun-svc-external", ns) is not None

    assert _run("teardown", str(one), "--approve", "--out", out) == 0
    assert planted["snat"] in box.cloud.snat_entries
    assert kube.get(s, "Ingress", "mse-ingress", ns) is not None
    assert kube.get(s, "Service", "unrelated", ns) is not None
    assert kube.get(s, "IngressClass", "someone-elses") is not None
    assert kube.get(s, "Ingress", "egress-routes", ns) is None
    assert kube.get(s, "MseIngressConfig", s.params.gateway.config_name) is None
    s.close()


def test_two_runs_at_once_then_teardown_then_setup_again(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**os.environ, "EGRESS_SANDBOX_HOME": str(box.home)}
    cmd = [sys.executable, "-m", "egress_lib.cli", "run", str(PARAMS), "--approve"]
    out = tmp_path / "runs"
    procs = [
        subprocess.Popen(
            [*cmd, "--out", str(out)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in (1, 2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], results
    loser = results[codes.index(1)]
    assert "another run holds the lock" in loser[1] and "run " in loser[1]
    first_entries = {e.snat_entry_id for e in owned_snat_entries(box)}
    assert len(first_entries) == 1
    mics = [g for g in box.cloud.gateways.values() if g.config_name == "egress-gateway"]
    assert len(mics) == 1

    assert _run("teardown", str(PARAMS), "--approve", "--out", str(out)) == 0
    assert owned_snat_entries(box) == []
    # Teardown is idempotent: a second one has nothing to do (and needs no approval).
    assert _run("teardown", str(PARAMS), "--out", str(out)) == 0

    # Setup after teardown: a new ClientToken, so a new entry, not the deleted one's ID.
    assert _run("run", str(PARAMS), "--approve", "--out", str(out)) == 0
    second_entries = {e.snat_entry_id for e in owned_snat_entries(box)}
    assert len(second_entries) == 1 and second_entries.isdisjoint(first_entries)
    capsys.readouterr()

    runs = records(out)
    by_status = sorted((r["command"], r["status"]) for r in runs)
    assert by_status == [
        ("run", "failed"),
        ("run", "ok"),
        ("run", "ok"),
        ("teardown", "ok"),
        ("teardown", "ok"),
    ]
    last = max((r for r in runs if r["command"] == "run"), key=lambda r: r["started"])
    snat = next(s for s in last["steps"] if s["step"] == "03-configure-snat")
    created = [c for c in snat["applied"] if c["action"] == "create"]
    assert created and created[0]["result"]["snat_entry_id"] in second_entries
    assert any(r["action"] == "CreateSnatEntry" and r["request_id"] for r in snat["request_ids"])


def test_papermill_with_a_file_that_omits_approve_changes_nothing(box: Any, tmp_path: Path) -> None:
    import papermill as pm

    data = yaml.safe_load(PARAMS.read_text())
    data.pop("approve")
    since = now()
    for name in [s.name for s in RUNBOOK] + ["99-teardown"]:
        pm.execute_notebook(
            str(REPO / "notebooks" / f"{name}.ipynb"),
            str(tmp_path / f"{name}.ipynb"),
            parameters=data,
            cwd=str(REPO / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    assert writes_since(box, since) == []
    text = (tmp_path / "02-create-gateway.ipynb").read_text()
    assert "not applied" in text


def test_papermill_with_an_aliyun_file_that_omits_cluster_id_names_it(tmp_path: Path) -> None:
    import papermill as pm

    data = yaml.safe_load((REPO / "parameters" / "example-ack.yaml").read_text())
    data.pop("cluster_id")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(REPO / "notebooks" / "00-preflight.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters=data,
            cwd=str(REPO / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    assert err.value.ename == "ParameterError"
    assert "cluster_id" in err.value.evalue


class _Stream:
    """A run's merged stdout and stderr, read line by line as it comes (as `| cat` would)."""

    def __init__(self, box: Any, out: Path) -> None:
        env = {**os.environ, "EGRESS_SANDBOX_HOME": str(box.home)}
        cmd = [sys.executable, "-m", "egress_lib.cli", "run", str(PARAMS), "--approve"]
        self.proc = subprocess.Popen(
            [*cmd, "--out", str(out)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, fragment: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "\n".join(self.seen)
                continue
            self.seen.append(line)
            if fragment in line:
                return line
        raise AssertionError(f"no line with {fragment!r}:\n" + "\n".join(self.seen))

    def rest(self) -> str:
        self.proc.wait(timeout=120)
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "\n".join(self.seen)


def test_a_run_streams_each_step_and_its_waits_as_they_happen(box: Any, tmp_path: Path) -> None:
    box.controls.hold({"kind": "mse_gateway", "id": "*"})  # step 02 waits until released
    run = _Stream(box, tmp_path / "runs")
    run.until("01 01-install-controller ok after")
    run.until("02 02-create-gateway started")
    # The gateway is held, so step 02 has not ended: these lines came while it ran.
    waiting = run.until("02 waiting for MseIngressConfig egress-gateway:")
    assert " / 15m" in waiting  # the deadline, timeouts.gateway_seconds
    assert run.proc.poll() is None
    box.controls.clear_faults()
    run.until("02 02-create-gateway ok after")
    text = run.rest()
    assert run.proc.returncode == 0, text
    assert "all 7 steps passed" in text
    # The wait lines went to the terminal, not into the run record's notebooks.
    (record,) = records(tmp_path / "runs")
    notebook = (Path(record["out_dir"]) / "02-create-gateway.ipynb").read_text()
    assert "waiting for MseIngressConfig" not in notebook


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_says_so_and_names_the_step(
    box: Any, tmp_path: Path, signum: int
) -> None:
    box.controls.hold({"kind": "mse_gateway", "id": "*"})  # step 02 then waits
    out = tmp_path / "runs"
    run = _Stream(box, out)
    run.until("02 waiting for MseIngressConfig")  # inside the notebook's wait
    run.proc.send_signal(signum)
    text = run.rest()
    assert run.proc.returncode == 130, text
    assert "Traceback" not in text
    (record,) = records(out)
    assert record["status"] == "interrupted"
    assert record["failed_step"] == "02-create-gateway"
    from egress_lib import lock

    s = session_for(False)
    assert lock.current_holder(s) is None  # the lock was released on the way out
    s.close()


def test_a_killed_run_is_marked_by_the_next_one(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box.controls.hold({"kind": "mse_gateway", "id": "*"})
    out = tmp_path / "runs"
    run = _Stream(box, out)
    run.until("02 02-create-gateway started")
    run.proc.kill()
    run.rest()
    assert _run("runs", "--out", str(out)) == 0
    listing = capsys.readouterr().out
    assert "killed" in listing
    (record,) = records(out)
    assert record["status"] == "killed"
    # Its lock died with it: the holder's process is gone on this machine, so the next run
    # need not wait for the lease to expire.
    assert _run("run", str(PARAMS), "--approve", "--steps", "00", "--out", str(out)) == 0


def test_a_create_whose_id_the_table_never_shows_fails_within_seconds(box: Any) -> None:
    from egress_lib import StepFailed

    s = session_for(True)
    nat = steps.snat.discover(s)
    request = steps.snat.create_request(s, nat, s.params.gateway.vswitches[0])
    entry_id, _ = steps.snat.create_entry(s, request)
    steps.snat.wait_available(s, nat.snat_table_id, entry_id)
    from alibabacloud_vpc20160428 import models as m

    s.vpc.delete_snat_entry(
        m.DeleteSnatEntryRequest(
            region_id=s.params.region_id, snat_table_id=nat.snat_table_id, snat_entry_id=entry_id
        )
    )
    while entry_id in box.cloud.snat_entries:
        time.sleep(0.1)
    # The same run's ClientToken again: the VPC API replays the first answer, a deleted ID.
    replayed, _ = steps.snat.create_entry(s, request)
    assert replayed == entry_id
    # StepFailed from the absence check, not WaitTimeout at the end of snat_seconds (300 s).
    with pytest.raises(StepFailed, match="does not exist"):
        steps.snat.wait_available(s, nat.snat_table_id, replayed)
    # A new run sends a new token, and gets a new entry.
    fresh = session_for(True)
    new_id, _ = steps.snat.create_entry(fresh, request)
    assert new_id != entry_id
    s.close()
    fresh.close()
