"""Step 07 on a fresh sandbox: `egress-runbook run parameters/sandbox-policies.yaml` passes
every policy check; an edit of the parameters plans exactly its annotation; an Ingress edited
behind the runbook's back (SNI removed, the pods' addresses refused) fails its check, and
07's apply puts it back."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import connect, load_parameters, retry
from egress_lib.cli import main as runbook_main
from egress_lib.errors import StepFailed
from egress_lib.plan import CHANGING
from egress_lib.policy_annotations import (
    LIMIT_BURST,
    LIMIT_RPS,
    PROXY_SSL_NAME,
    PROXY_SSL_SERVER_NAME,
    TIMEOUT,
    WHITELIST,
)
from egress_lib.steps import egress_policies
from egress_lib.steps.policy_probes import THROTTLED_REASON

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox-policies.yaml"
BLOCK = 40

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # The kernels papermill starts inherit EGRESS_SANDBOX_HOME and find this sandbox.
    with sandbox_home(tmp_path_factory.mktemp("policies-home"), BLOCK) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def ran(box: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole runbook, 00 to 07, headless: the run folder."""
    out = tmp_path_factory.mktemp("runs")
    assert runbook_main(["run", str(PARAMS), "--approve", "--out", str(out)]) == 0
    (folder,) = (out / "sandbox-policies").iterdir()
    return folder


def session() -> Any:
    return connect(load_parameters(PARAMS, {"approve": True}))


def _rows(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((folder / "policies.json").read_text())
    return rows


def test_plan_lists_07_with_its_objects_and_probe_pods(
    box: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runbook_main(["plan", str(PARAMS), "--out", str(tmp_path), "-q"]) == 3
    out = capsys.readouterr().out
    assert "Plan for 07-egress-policies" in out
    # Without a policy the step is not part of the run (parameters/sandbox.yaml).
    assert runbook_main(["plan", str(REPO / "parameters" / "sandbox.yaml"), "-q"]) == 3
    assert "07-egress-policies" not in capsys.readouterr().out


def test_the_run_passes_every_policy_check(ran: Path) -> None:
    record = json.loads((ran / "run.json").read_text())
    assert record["status"] == "ok"
    assert [s["step"] for s in record["steps"]][-2:] == ["06-verify", "07-egress-policies"]
    rows = _rows(ran)
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert failed == []
    by = {(r["destination"], r["policy"], r["check"].split(" (")[0]): r for r in rows}
    policies = {r["policy"] for r in rows if r["outcome"] == "pass"}
    # Every policy of the file has a passing check (the gateway-wide list its positive one).
    assert {
        "ip_access_control",
        "source_ips",
        "domain_source_ips",
        "rate_limit",
        "load_balancing",
        "retries",
        "timeout_seconds",
        "upstream_tls",
        "sni",
        "tls_offload",
        "mirror",
        "request_headers",
        "response_headers",
        "upstream_vhost",
    } <= policies
    # The hostNetwork pod (the node's address) is refused by payments' allow list and by
    # packages' domain deny list; the pod passes both.
    node = [r for r in rows if "hostNetwork" in r["check"]]
    assert {(r["destination"], r["check"].split(":")[0]) for r in node} == {
        ("payments", "denied source"),
        ("maps", "allowed source"),
        ("packages", "denied source"),
    }
    throttle = by[("payments", "rate_limit", "25 requests on one connection")]
    assert re.match(r"\d+ passed, then \d+ x 429 local_rate_limited", throttle["observed"])
    tls = by[("payments", "upstream_tls", "TLS from the gateway to the destination")]
    assert "sni api.payments.example, client certificate egress-gateway" in tls["observed"]
    mirror = next(r for r in rows if r["policy"] == "mirror")
    assert "4 of 4 copies seen, Host with -shadow" in mirror["observed"]
    timeout = next(r for r in rows if r["check"].startswith("GET /delay/7"))
    assert "HTTP 504 'upstream request timeout'" in timeout["observed"]
    # The temporary pods are gone.
    s = session()
    try:
        left = s.core.list_namespaced_pod(
            "default", label_selector="app.kubernetes.io/name=egress-policy-probe"
        )
        assert left.items == []
    finally:
        s.close()


def test_after_the_run_the_plan_changes_nothing_and_an_edit_shows_its_annotation(
    ran: Path, tmp_path: Path
) -> None:
    s = session()
    try:
        assert not egress_policies.plan(s).has_changes
    finally:
        s.close()
    edited = tmp_path / "edited.yaml"
    edited.write_text(PARAMS.read_text().replace("rps: 5", "rps: 7"))
    s = connect(load_parameters(edited))
    try:
        plan = egress_policies.plan(s)
    finally:
        s.close()
    (change,) = [c for c in plan.changes if c.action in CHANGING]
    assert (change.action, change.kind, change.name) == ("update", "Ingress", "payments")
    assert "route-limit-rps" in change.detail and "'5' -> '7'" in change.detail


def _edit_ingress(s: Any, name: str, edit: Any) -> None:
    obj = s.api_client.sanitize_for_serialization(
        s.networking.read_namespaced_ingress(name, "default")
    )
    edit(obj["metadata"]["annotations"])
    s.networking.replace_namespaced_ingress(name, "default", obj)


def test_sni_removed_behind_the_runbooks_back_fails_the_tls_check_and_07_restores_it(
    ran: Path,
) -> None:
    s = session()
    try:
        _edit_ingress(
            s, "payments", lambda a: [a.pop(PROXY_SSL_NAME), a.pop(PROXY_SSL_SERVER_NAME)]
        )
        result = egress_policies.check(s)
        bad = {(r.destination, r.policy) for r in result.failed}
        assert ("payments", "upstream_tls") in bad, result
        tls = next(r for r in result.failed if r.policy == "upstream_tls")
        assert "HTTP 503" in tls.observed and "destinations[0].sni" in tls.parameter
        with pytest.raises(StepFailed) as err:
            result.raise_for_failures()
        assert "destinations[0].sni" in err.value.remedy
        # The plan sees the missing annotations, and apply puts them back: the checks pass.
        plan = egress_policies.plan(s)
        (change,) = [c for c in plan.changes if c.action in CHANGING]
        assert change.name == "payments" and "proxy-ssl-name (missing)" in change.detail
        egress_policies.apply(s, plan)
    finally:
        s.close()


def _throttle_retries() -> int:
    return retry.counts().get(THROTTLED_REASON, 0)


def _tiny_limit(a: dict[str, str]) -> None:
    a[LIMIT_RPS], a[LIMIT_BURST] = "1", "1"  # one token per replica: the probe is throttled


def _main_rows(result: Any) -> list[Any]:
    """payments' rows from its main probe (TLS, offload, mirror), not the throttle's."""
    return [r for r in result.rows if r.destination == "payments" and r.policy == "mirror"]


def test_a_probe_its_own_route_throttles_runs_again_after_the_refill(ran: Path) -> None:
    # A drained bucket (other traffic, or a check just before) is not a failed policy.
    s = session()
    try:
        before = _throttle_retries()
        _edit_ingress(s, "payments", _tiny_limit)
        restored = threading.Event()

        def restore_once_retried() -> None:
            deadline = time.monotonic() + 120
            while _throttle_retries() == before and time.monotonic() < deadline:
                time.sleep(0.05)
            # The runbook waits for the refill: a restored limit is a fresh, full bucket.
            _edit_ingress(s, "payments", lambda a: a.update({LIMIT_RPS: "5", LIMIT_BURST: "2"}))
            restored.set()

        t = threading.Thread(target=restore_once_retried, daemon=True)
        t.start()
        result = egress_policies.check(s)
        t.join(130)
        assert restored.is_set() and _throttle_retries() == before + 1
        (mirror,) = _main_rows(result)
        assert mirror.outcome == "pass", mirror
    finally:
        s.close()


def test_a_probe_throttled_again_says_so_in_its_failure(ran: Path) -> None:
    s = session()
    try:
        before = _throttle_retries()
        _edit_ingress(s, "payments", _tiny_limit)
        result = egress_policies.check(s)
        assert _throttle_retries() == before + 1  # once, not in a loop
        (mirror,) = _main_rows(result)
        assert mirror.outcome == "fail"
        assert "met the route's own rate limit, 429 local_rate_limited" in mirror.observed
        assert "run the check again later" in mirror.observed
        egress_policies.apply(s, egress_policies.plan(s))  # the limit back to 5 rps x 2
    finally:
        s.close()


def test_the_probe_pods_address_refused_fails_the_ip_check(ran: Path) -> None:
    s = session()
    try:

        def refuse(a: dict[str, str]) -> None:
            a[WHITELIST] = "10.0.0.0/8"  # not the pods' 127.244.0.0/16

        _edit_ingress(s, "payments", refuse)
        result = egress_policies.check(s)
        ip = next(r for r in result.rows if r.check.startswith("allowed source: a pod"))
        assert ip.destination == "payments" and ip.outcome == "fail", result
        assert (
            ip.observed.startswith("HTTP 403")
            and ip.parameter == "destinations[0].policies.source_ips"
        )
        egress_policies.apply(s, egress_policies.plan(s))  # back to 127.244.0.0/16
    finally:
        s.close()


def test_a_policy_annotation_the_parameters_do_not_declare_is_a_warning(ran: Path) -> None:
    # An update lays the parameters over the live Ingress and cannot remove a key.
    s = session()
    try:
        _edit_ingress(s, "payments", lambda a: a.update({TIMEOUT: "1"}))
        (warning,) = egress_policies.plan(s).warnings
        assert (
            TIMEOUT in warning
            and f"kubectl annotate ingress payments -n default {TIMEOUT}-" in warning
        )
        _edit_ingress(s, "payments", lambda a: a.pop(TIMEOUT))
        assert egress_policies.plan(s).warnings == []
    finally:
        s.close()


def test_a_probe_pod_a_stopped_run_left_is_planned_for_delete_and_removed_by_apply(
    ran: Path,
) -> None:
    from egress_lib import ownership, pod_probe

    s = session()
    try:
        pod = pod_probe.manifest(
            s,
            "egress-policy-left-0000",
            ["-s", "http://127.0.0.1/"],
            labels={"app.kubernetes.io/name": "egress-policy-probe"},
        )
        pod["metadata"]["labels"][ownership.RUN_LABEL] = "stopped1"
        s.core.create_namespaced_pod("default", pod)
        plan = egress_policies.plan(s)
        (delete,) = [c for c in plan.changes if c.action == "delete"]
        assert (delete.kind, delete.name) == ("Pod", "egress-policy-left-0000")
        assert delete.detail.startswith("leftover policy-probe pod of run stopped1: ")
        done = egress_policies.apply(s, plan)
        assert any(c.action == "delete" and c.name == delete.name for c in done.changes_applied)
        left = s.core.list_namespaced_pod("default", label_selector=ownership.selector(s.params))
        assert left.items == []
    finally:
        s.close()
