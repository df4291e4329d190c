"""`egress-sandbox audit` and its filters; re-running a step changes nothing, per the audit log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from control_helpers import cli, configmap, kube
from kubernetes import client as k8s

from egress_sandbox.cli.control import parse_since
from egress_sandbox.control.client import ControlClient
from egress_sandbox.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[3]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def cli_records(box: Sandbox, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    capsys.readouterr()
    assert cli(box, "audit", "--json", *args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_audit_filters(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    mark = now()
    core = k8s.CoreV1Api(kube(box))
    core.create_namespaced_config_map("default", configmap("audited"))
    core.read_namespaced_config_map("audited", "default")
    recs = cli_records(box, capsys, "--since", mark, "--api", "k8s")
    assert [r["action"] for r in recs] == ["create", "get"]
    assert all(r["principal"] == "sandbox-admin" and r["status"] < 300 for r in recs)
    assert recs[0]["path"] == "/api/v1/namespaces/default/configmaps"
    assert recs[0]["request_id"]
    mutating = cli_records(box, capsys, "--since", mark, "--api", "k8s", "--mutating")
    assert [r["action"] for r in mutating] == ["create"]
    assert cli_records(box, capsys, "--since", "10m", "--api", "k8s")[-1]["action"] == "get"
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    assert cli_records(box, capsys, "--since", future) == []
    assert cli(box, "audit", "--since", mark, "--api", "k8s") == 0  # the table
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["TIME", "PRINCIPAL", "API", "ACTION"]
    assert len(table) == 3


def test_errors_and_control_calls_are_audited(box: Sandbox, control: ControlClient) -> None:
    mark = now()
    control.add_fault(api="k8s", action="get", resource="configmaps", code="Timeout", status=504)
    with pytest.raises(k8s.ApiException):
        k8s.CoreV1Api(kube(box)).read_namespaced_config_map("audited", "default")
    recs = control.audit(since=mark)
    assert [(r["api"], r["action"]) for r in recs] == [
        ("control", "POST /faults"),
        ("k8s", "get"),
    ]
    assert (recs[1]["status"], recs[1]["error_code"]) == (504, "Timeout")


def test_access_review_is_not_mutating(box: Sandbox, control: ControlClient) -> None:
    mark = now()
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(verb="create", resource="services")
        )
    )
    k8s.AuthorizationV1Api(kube(box)).create_self_subject_access_review(review)
    (rec,) = control.audit(since=mark, api="k8s")
    assert (rec["action"], rec["mutating"], rec["status"]) == ("create", False, 201)


def test_rerunning_apply_changes_nothing(
    box: Sandbox, control: ControlClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from egress_lib import connect, load_parameters
    from egress_lib.kube import apply_change, plan_object
    from egress_lib.ownership import labels

    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(box.home))
    session = connect(load_parameters(REPO / "parameters" / "sandbox.yaml"))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "rerun-svc", "namespace": "default", "labels": labels(session.params)},
        "spec": {"type": "ExternalName", "externalName": "www.aliyun.com"},
    }
    try:
        first_mark = now()
        assert apply_change(session, plan_object(session, service)).action == "create"
        second_mark = now()
        assert plan_object(session, service).action == "unchanged"
    finally:
        session.close()
    first = control.audit(since=first_mark, mutating=True)
    assert [(r["action"], r["path"]) for r in first] == [
        ("create", "/api/v1/namespaces/default/services")
    ]
    assert control.audit(since=second_mark, mutating=True) == []
    assert control.audit(since=second_mark, api="k8s")  # it did read


def test_parse_since() -> None:
    base = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("10m", base) == "2026-01-01T11:50:00.000000+00:00"
    assert parse_since("2026-01-01T12:00:00Z") == "2026-01-01T12:00:00.000000+00:00"
    assert parse_since("2026-01-01T20:00:00+08:00") == "2026-01-01T12:00:00.000000+00:00"
    with pytest.raises(ValueError):
        parse_since("yesterday")
