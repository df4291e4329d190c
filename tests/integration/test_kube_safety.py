"""egress_lib.kube relies on server-side dry run, resourceVersion preconditions and watches;
these tests prove the sandbox refuses what a real apiserver refuses, and that kube.py uses them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from egress_lib import Parameters, Session, connect, kube
from egress_lib.errors import KubernetesApiError
from egress_lib.ownership import labels

NS = "default"


@pytest.fixture
def session(sandbox: Any, params: Parameters) -> Iterator[Session]:
    s = connect(params)
    yield s
    s.close()


def _bad_ingress(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "rules": [
                {
                    "host": "safety.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Sometimes",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


def test_plan_of_an_invalid_manifest_is_a_422_naming_the_field_and_stores_nothing(
    sandbox: Any, session: Session
) -> None:
    with pytest.raises(KubernetesApiError) as e:
        kube.plan_object(session, _bad_ingress("safety-bad"))
    assert e.value.status == 422
    assert "spec.rules[0].http.paths[0].pathType" in e.value.message
    assert kube.get(session, "Ingress", "safety-bad", NS) is None
    assert any("dryRun=All" in r.path for r in sandbox.audit.records() if r.status == 422)


def test_a_planned_update_is_refused_when_the_object_changed_since_the_plan(
    sandbox: Any, session: Session
) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "safety-race", "namespace": NS, "labels": labels(session.params)},
        "spec": {"ports": [{"port": 80}]},
    }
    kube.apply_change(session, kube.plan_object(session, svc))
    changed = {**svc, "metadata": {**svc["metadata"], "annotations": {"owner": "runbook-v2"}}}
    planned = kube.plan_object(session, changed)
    assert planned.action == "update" and "+    owner: runbook-v2" in planned.body

    # Someone else writes between our plan and our apply.
    rt = sandbox.store.types.get("", "v1", "services")
    other = sandbox.store.get(rt, NS, "safety-race")
    other["metadata"].setdefault("annotations", {})["other"] = "x"
    sandbox.store.update(rt, other)

    with pytest.raises(kube.StaleObject, match="changed since the plan"):
        kube.apply_change(session, planned)
    live = kube.get(session, "Service", "safety-race", NS)
    assert live is not None
    assert live["metadata"]["annotations"] == {"other": "x"}  # theirs kept, ours not applied
    conflicts = [r for r in sandbox.audit.records() if r.status == 409 and "safety-race" in r.path]
    assert conflicts and conflicts[0].error_code == "Conflict"


def test_wait_for_uses_a_watch_rather_than_polling(sandbox: Any, session: Session) -> None:
    rt = sandbox.store.types.get("", "v1", "services")
    name = "safety-wait"
    before = len(sandbox.audit.records())

    def create_later() -> None:
        time.sleep(1.0)
        body = {"metadata": {"name": name, "namespace": NS}, "spec": {"ports": [{"port": 80}]}}
        sandbox.store.create(rt, body)

    threading.Thread(target=create_later, daemon=True).start()
    obj = kube.wait_for(
        session, "Service", name, NS, lambda o: o is not None, timeout=20, reason="test"
    )
    assert obj["metadata"]["name"] == name
    recent = sandbox.audit.records()[before:]
    assert any(r.action == "watch" for r in recent)
    assert sum(1 for r in recent if r.action in ("get", "list") and "services" in r.path) <= 2


def test_an_object_the_runbook_did_not_create_is_a_conflict_unless_adopted(
    sandbox: Any, session: Session
) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "safety-theirs", "namespace": NS},
        "spec": {"type": "ExternalName", "externalName": "old.example.com"},
    }
    session.core.create_namespaced_service(NS, theirs)
    ours = {
        **theirs,
        "metadata": {**theirs["metadata"], "labels": labels(session.params)},
        "spec": {"type": "ExternalName", "externalName": "new.example.com"},
    }
    change = kube.plan_object(session, ours)
    assert change.action == "conflict"
    assert "adopt" in change.detail and "Service/safety-theirs" in change.detail

    adopting = connect(session.params.model_copy(update={"adopt": ["Service/safety-theirs"]}))
    try:
        change = kube.plan_object(adopting, ours)
        assert change.action == "update" and change.detail.startswith("adopt")
        assert "+    app.kubernetes.io/managed-by: egress-runbook" in change.body
        assert "-  externalName: old.example.com" in change.body
        kube.apply_change(adopting, change)
    finally:
        adopting.close()
    # Taken over: now it is ours, for plans without adopt too.
    assert kube.plan_object(session, ours).action == "unchanged"
