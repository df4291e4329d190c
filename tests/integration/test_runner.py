"""``egress-runbook run``: the whole runbook headless, twice, against a sandbox of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib.cli import main as runbook_main

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # The kernels papermill starts inherit EGRESS_SANDBOX_HOME and find this sandbox.
    with sandbox_home(tmp_path_factory.mktemp("runner-home"), 20) as sandbox:
        yield sandbox


def _secrets(box: Any) -> list[str]:
    topo = box.topology
    return [
        topo.access_key_secret,
        topo.readonly_access_key_secret,
        box.tokens.admin,
        box.tokens.readonly,
    ]


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_run_twice_succeeds_and_the_second_run_changes_nothing(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runbook_main(["run", str(PARAMS), "--approve", "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "all 7 steps passed" in first
    assert "aliyun-svc-external" in first and " 200 " in first

    since = box.audit.records()[-1].time
    assert runbook_main(["run", str(PARAMS), "--approve", "--out", str(tmp_path)]) == 0
    assert "all 7 steps passed" in capsys.readouterr().out

    # The second run's only writes are the verify pod (created, then deleted) and the run's
    # lock (a Lease, taken and released); access reviews store nothing.
    writes = [
        (r.api, r.action, r.path)
        for r in box.audit.records(since=since, mutating=True)
        if "/pods" not in r.path
        and "selfsubjectaccessreviews" not in r.path
        and "/leases/" not in r.path + "/"
    ]
    assert writes == []

    # No resource exists twice.
    assert len(box.cloud.snat_entries) == 1
    assert len([g for g in box.cloud.gateways.values() if g.config_name == "egress-gateway"]) == 1
    mics, _ = box.store.list(
        box.store.types.get("mse.alibabacloud.com", "v1alpha1", "mseingressconfigs")
    )
    assert [m["metadata"]["name"] for m in mics] == ["egress-gateway"]

    runs = sorted((tmp_path / "sandbox").iterdir())
    assert len(runs) == 2
    record = json.loads((runs[-1] / "run.json").read_text())
    assert record["status"] == "ok"
    assert [s["step"] for s in record["steps"]][-1] == "06-verify"
    assert json.loads((runs[-1] / "verify.json").read_text())[0]["http_status"] == 200

    text = _all_text(tmp_path)
    for secret in _secrets(box):
        assert secret not in text, "a secret reached a run record"


def test_a_failing_step_is_named_and_the_run_exits_non_zero(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    # 203.0.113.7 (TEST-NET-3) is no EIP of the NAT gateway: preflight refuses it, before
    # step 01 changes anything.
    bad.write_text(PARAMS.read_text().replace("snat_ip: null", "snat_ip: 203.0.113.7"))
    assert runbook_main(["run", str(bad), "--approve", "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "step 00-preflight failed" in err
    assert "snat.snat_ip" in err and "203.0.113.7" in err
    record = json.loads(next((tmp_path / "runs").rglob("run.json")).read_text())
    assert [s["status"] for s in record["steps"]] == ["failed"]


def test_a_step_that_fails_in_its_notebook_tells_the_terminal_what_to_do(
    box: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The whole runbook (quick when an earlier test has run it), whose verify pod's create is
    # refused (as RBAC would): the kernel's error box goes to the notebook, and its summary
    # and remedy to the runner's terminal, prefixed with the step.
    box.controls.add_fault(
        {
            "api": "k8s",
            "action": "create",
            "resource": "pods",
            "code": "Forbidden",
            "status": 403,
            "count": 5,
        }
    )
    try:
        code = runbook_main(["run", str(PARAMS), "--approve", "--out", str(tmp_path)])
    finally:
        box.controls.clear_faults()
    assert code == 1
    captured = capfd.readouterr()
    err = captured.err
    assert "step 06-verify failed" in captured.out + err
    assert "06 KubernetesApiError: " in err
    assert "06 What to do: " in err
    assert "06 What to do: " in err and "re-run the step" in err


def test_bad_parameters_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PARAMS.read_text().replace("replicas: 3", "replicas: 31"))
    assert runbook_main(["run", str(bad), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "gateway.replicas" in err and "31" in err
    assert not (tmp_path / "runs").exists()


def test_a_credential_passed_as_a_parameter_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-Value-0123456789"
    out = tmp_path / "runs"
    code = runbook_main(["run", str(PARAMS), "--out", str(out), "-p", "access_key_secret", secret])
    assert code == 2
    err = capsys.readouterr().err
    assert "access_key_secret" in err and "credential" in err
    assert secret not in err
    assert not out.exists()


def test_steps_can_be_picked_and_runs_can_be_listed_and_shown(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = runbook_main(["plan", str(PARAMS), "--out", str(out), "--steps", "00,services"])
    text = capsys.readouterr().out
    assert code in (0, 3)
    assert "Plan for 00-preflight" in text and "Plan for 04-external-services" in text
    assert "Plan for 02-create-gateway" not in text
    code = runbook_main(["plan", str(PARAMS), "--out", str(out), "--from", "05", "-n", "default"])
    text = capsys.readouterr().out
    assert "Plan for 05-ingress-routes" in text and "Plan for 04-external-services" not in text

    assert runbook_main(["runs", "--out", str(out)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("plan-only") == 2
    # By start time: two runs in the same second sort by their random suffix.
    started = {
        p.name: json.loads((p / "run.json").read_text())["started"]
        for p in (out / "sandbox").iterdir()
    }
    (first, _) = sorted(started, key=started.__getitem__)
    assert runbook_main(["runs", "show", first[-6:], "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert first in shown and "00-preflight" in shown


def test_run_asks_on_a_terminal_and_no_changes_nothing(box: Any, tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    # An override whose plan has a change: one more gateway replica; the answer is no.
    since = box.audit.records()[-1].time
    master, slave = pty.openpty()
    env = {**os.environ, "EGRESS_SANDBOX_HOME": str(box.home)}
    cmd = [sys.executable, "-m", "egress_lib.cli", "run", str(PARAMS), "--out", str(tmp_path)]
    proc = subprocess.Popen(
        [*cmd, "-p", "gateway.replicas", "4"],
        env=env,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.write(master, b"n\n")
    out, err = proc.communicate(timeout=120)
    os.close(master)
    os.close(slave)
    assert proc.returncode == 3, err
    assert "change(s) to cluster sandbox? [y/N]" in out
    assert "+      replicas: 4" in out or "replicas: 4" in out
    writes = [
        r.path
        for r in box.audit.records(since=since, mutating=True)
        if "/leases" not in r.path and "selfsubjectaccessreviews" not in r.path
    ]
    assert writes == []


def test_output_json_quiet_and_version_for_scripts(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = runbook_main(["plan", str(PARAMS), "--out", str(out), "-o", "json", "-q"])
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # stdout is one JSON document and nothing else
    assert code in (0, 3) and record["status"] == "plan-only"
    assert [s["step"] for s in record["steps"]][-1] == "06-verify"
    assert "Plan for 02-create-gateway" in captured.err  # people read stderr
    assert "apiVersion:" not in captured.err  # -q: one line per plan

    assert runbook_main(["runs", "--out", str(out), "-o", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == record["run_id"]

    with pytest.raises(SystemExit) as done:
        runbook_main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("egress-runbook ")
