"""The runbook's steps against the in-process sandbox, in order.

Fixtures (tests/conftest.py, provided by the lead): ``sandbox`` (session-scoped; sets
EGRESS_SANDBOX_HOME; has .home, .cloud, .store, .audit) and ``params`` (sandbox.yaml).
Each step: plan, apply, re-plan shows only unchanged/wait/check, a second apply changes
nothing. Tests run in file order and share the sandbox's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from egress_lib import NotApproved, Parameters, Session, connect, steps
from egress_lib.errors import PreconditionFailed
from egress_lib.plan import Plan


@pytest.fixture
def session(sandbox: Any, params: Parameters) -> Iterator[Session]:
    # These tests apply: they say yes explicitly (sandbox.yaml, like every default, says no).
    s = connect(params.model_copy(update={"approve": True}))
    yield s
    s.close()


def writes(plan: Plan) -> list[str]:
    return [
        f"{c.action} {c.kind}/{c.name}"
        for c in plan.changes
        if c.action in ("create", "update", "delete")
    ]


def test_session_description_hides_secret(sandbox: Any, session: Session) -> None:
    import json

    secret = json.loads((sandbox.home / "sandbox.json").read_text())["access_key_secret"]
    assert secret not in repr(session) and secret not in session.target_description


def test_preflight(session: Session) -> None:
    facts = steps.preflight.facts(session)
    frames = facts.to_frames()
    assert session.params.gateway.vswitches[0] in set(frames["vswitches"]["VSwitchId"])
    assert (
        frames["vswitches"]
        .set_index("VSwitchId")
        .loc[session.params.gateway.vswitches[0], "Gateway"]
    )
    found = steps.preflight.checks(session, facts)
    assert all(c.ok for c in found if c.level == "error"), [c for c in found if not c.ok]
    result = steps.preflight.apply(session)
    assert "checks" in result.tables and not result.changed


def test_not_approved_changes_nothing(session: Session, params: Parameters) -> None:
    s = connect(params.model_copy(update={"approve": False}))
    try:
        plan = steps.controller.plan(s)
        assert plan.has_changes
        with pytest.raises(NotApproved):
            steps.controller.apply(s)
        assert steps.controller.installed_version(s) is None
    finally:
        s.close()


def _idempotent(module: Any, session: Session) -> Any:
    first = module.plan(session)
    result = module.apply(session, first)
    again = module.plan(session)
    assert writes(again) == [], str(again)
    second = module.apply(session)
    assert not second.changed, str(second)
    return first, result


def test_01_controller(sandbox: Any, session: Session) -> None:
    first, result = _idempotent(steps.controller, session)
    # The notebook shows the add-on and the IngressClass as the cluster has them, on the first
    # run and on every re-run (when there is nothing to change).
    assert [o["kind"] for o in result.objects] == ["Deployment", "IngressClass"]
    again = steps.controller.apply(session)
    assert [o["kind"] for o in again.objects] == ["Deployment", "IngressClass"]
    kinds = [c.kind for c in first.changes if c.action == "create"]
    assert kinds[:2] == ["IngressClass", "Addon"]  # IngressClass first: no default gateway
    assert steps.controller.installed_version(session)
    # The add-on must not have created the default internet-facing gateway.
    from egress_lib import kube

    default = f"mse-ingress-premium-{session.params.cluster_id}"
    assert kube.get(session, "MseIngressConfig", default) is None


def test_02_gateway(sandbox: Any, session: Session) -> None:
    first, result = _idempotent(steps.gateway, session)
    assert ("create", "MseIngressConfig") in {(c.action, c.kind) for c in first.changes}
    mic = result.objects[0]
    assert mic["status"]["phase"] == "Listening"
    # What MSE reports: one private SLB, no Internet-facing one.
    clb = steps.gateway.clb_frame(session)
    assert len(clb) == 1 and clb.iloc[0]["Type"] == "PRIVATE_NET"
    assert steps.gateway.expected_address(session) == clb.iloc[0]["Address"]


def test_03_snat(sandbox: Any, session: Session) -> None:
    first, _ = _idempotent(steps.snat, session)
    assert writes(first) == [f"create SnatEntry/{v}" for v in session.params.gateway.vswitches]
    table = steps.snat.snat_frame(session)
    ours = table[table["SourceVSwitchId"].isin(session.params.gateway.vswitches)]
    assert list(ours["Status"]) == ["Available"] * len(session.params.gateway.vswitches)
    assert set(ours["Name"]) == {session.params.snat.entry_name}


def test_03_snat_rejects_foreign_eip(session: Session, params: Parameters) -> None:
    snat = params.snat.model_copy(update={"snat_ip": "1.2.3.4"})
    s = connect(params.model_copy(update={"snat": snat, "approve": True}))
    try:
        with pytest.raises(PreconditionFailed, match=r"1\.2\.3\.4"):
            steps.snat.plan(s)
    finally:
        s.close()


def test_04_services(session: Session) -> None:
    _, result = _idempotent(steps.services, session)
    svc = result.objects[0]
    assert svc["spec"]["type"] == "ExternalName" and svc["spec"]["externalName"] == "www.aliyun.com"
    assert "managedFields" not in svc["metadata"]


def test_05_ingress(session: Session) -> None:
    _, result = _idempotent(steps.ingress, session)
    (addr,) = steps.ingress.wait_for_clb_address(session)
    assert addr.ingress == "mse-ingress" and addr.ip
    frame = result.tables["addresses"]
    assert bool(frame.iloc[0]["Matches CLB"])


def test_06_verify(session: Session) -> None:
    result = steps.verify.verify(session)
    frame = result.to_frame()
    assert result.ok, frame.to_string()
    assert frame.iloc[0]["HTTP status"] < 400
    from egress_lib import kube

    assert list(frame["Path"]) == ["via gateway", "direct"]
    assert list(frame["Result"]) == ["pass", "pass"]  # the EIP seen, the direct path blocked
    names = [
        steps.verify.pod_name(session, session.params.destinations[0]),
        steps.verify.direct_pod_name(session),
    ]
    for name in names:
        assert kube.get(session, "Pod", name, session.params.namespace) is None  # cleaned up


def test_99_teardown(sandbox: Any, session: Session) -> None:
    plan = steps.teardown.plan(session)
    assert {"MseIngressConfig", "Ingress", "Service", "IngressClass", "SnatEntry"} <= {
        c.kind for c in plan.changes if c.action == "delete"
    }
    steps.teardown.apply(session, plan)
    again = steps.teardown.plan(session)
    assert writes(again) == [], str(again)
    from egress_lib import kube

    assert kube.get(session, "MseIngressConfig", session.params.gateway.config_name) is None
    assert steps.snat.entries_to_delete(session) == []
