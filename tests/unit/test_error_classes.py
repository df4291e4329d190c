"""Every error class egress_lib raises, as the operator reads it: message, box and remedy.

Each case builds its error the way the library does (the library's own function where that is
cheap, else its constructor with the library's words) and shows what ``str()`` says, the short
box :func:`egress_lib.error_display.render` makes of it (the first lines a kernel shows, and the
runner's terminal repeats), and the remedy. Classes whose box and remedy another test already
shows are named in :data:`ELSEWHERE`, not repeated here; exceptions that never reach a user
(converted at the call site) are in :data:`INTERNAL`, each with the test proving the conversion.

:func:`test_every_exception_class_of_egress_lib_has_a_case` walks every module of egress_lib and
fails on an exception class in none of the three, so a new class cannot come without one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from kubernetes.client.exceptions import ApiException

import egress_lib
from egress_lib import kube, pod_probe, waiting
from egress_lib.cloud import call
from egress_lib.error_display import ErrorBox, render
from egress_lib.errors import (
    CloudConnectionError,
    EgressError,
    KubernetesApiError,
    LockHeld,
    NotApproved,
    ParameterError,
    PlanConflict,
    PlanStale,
    PreconditionFailed,
    TargetUnavailable,
    WaitTimeout,
)
from egress_lib.lock import lease_name
from egress_lib.parameters import load_parameters
from egress_lib.plan import Change, Plan
from egress_lib.records import RunRecord
from egress_lib.remedies import SAFE_TO_RERUN
from egress_lib.steps._common import apply_kube_changes, require_approval

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "parameters" / "sandbox.yaml"

# Class (qualified name) -> a test elsewhere that shows its message, its box and its remedy.
ELSEWHERE = {
    "egress_lib.errors.CloudApiError": (
        "tests/unit/test_remedies.py::"
        "test_throttling_says_rerun_is_safe_and_keeps_the_recommend_link"
    ),
    "egress_lib.errors.StepFailed": (
        "tests/unit/test_remedies.py::test_verify_503_points_at_the_snat_entry_of_step_03"
    ),
}
# Exceptions egress_lib raises and catches itself: the test that shows what the user gets.
INTERNAL = {
    "egress_lib.kube.StaleObject": (
        "tests/unit/test_error_classes.py::test_a_stale_object_reaches_the_user_as_plan_stale"
    ),
    "egress_lib.parameter_file._Refused": (
        "tests/unit/test_error_classes.py::"
        "test_a_refused_yaml_file_reaches_the_user_as_a_parameter_error"
    ),
    "egress_lib.kube_retry.RetryableAnswer": (
        "tests/unit/test_error_classes.py::"
        "test_a_retryable_answer_reaches_the_user_as_a_kubernetes_api_error"
    ),
}
CASES: dict[str, Callable[..., None]] = {}


def case(cls: type[BaseException]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated test as the case of ``cls``."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        CASES[f"{cls.__module__}.{cls.__qualname__}"] = fn
        return fn

    return register


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as a notebook cell sees it."""
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - any exception is the point
        return e


def caught(fn: Callable[[], object], cls: type[EgressError]) -> Any:
    with pytest.raises(cls) as info:
        fn()
    assert type(info.value) is cls, f"{type(info.value).__name__} is not {cls.__name__}"
    return info.value


def shown(err: BaseException) -> tuple[ErrorBox, list[str]]:
    """The box of ``err`` and its lines above the traceback; the common promises checked."""
    assert isinstance(err, EgressError)
    box = render(err if err.__traceback__ else raised(err))
    text = str(box)
    print(text)  # pytest -s shows each box as the operator reads it
    head = text.split("Traceback (most recent call last)")[0].rstrip().splitlines()
    assert head[0] == f"{type(err).__name__}: {box.summary}"
    assert box.summary and box.summary in str(err)
    assert f"What to do: {err.remedy}" in head
    assert err.remedy.strip() and err.remedy == box.remedy
    html = box._repr_html_()
    assert "<b>What to do:</b>" in html and html.count("<details") == 1
    return box, head


# ---- the base class and the tree --------------------------------------------------------------


@case(EgressError)
def test_egress_error_a_missing_run_record(tmp_path: Path) -> None:
    err = caught(lambda: RunRecord.load(tmp_path), EgressError)
    assert str(err) == f"no run record at {tmp_path / 'run.json'}"
    _, head = shown(err)
    assert head[0] == f"EgressError: no run record at {tmp_path / 'run.json'}"
    assert err.remedy == EgressError.remedy
    assert err.remedy.startswith("Fix what the message names") and SAFE_TO_RERUN in err.remedy


@case(ParameterError)
def test_parameter_error_names_the_key_the_value_and_what_is_expected() -> None:
    err = caught(lambda: load_parameters(PARAMS, {"gateway.replicas": 31}), ParameterError)
    assert err.path == "gateway.replicas" and err.value == 31
    _, head = shown(err)
    assert head[0].startswith("ParameterError: invalid parameter")
    assert "gateway.replicas" in head[0] and "31" in head[0]
    assert err.remedy == ParameterError.remedy and err.remedy.endswith("Nothing was changed.")


@case(CloudConnectionError)
def test_cloud_connection_error_says_the_endpoint_gave_no_answer() -> None:
    refused = ConnectionRefusedError("[Errno 111] Connection refused")
    exc = UnretryableException(RetryPolicyContext(retries_attempted=1, exception=refused))

    def fail(*_: object) -> object:
        raise exc

    err = caught(lambda: call("vpc", "DescribeVpcs", fail), CloudConnectionError)
    assert str(err) == "vpc:DescribeVpcs failed: [Errno 111] Connection refused"
    box, head = shown(err)
    assert (
        head[0] == "CloudConnectionError: vpc:DescribeVpcs failed: [Errno 111] Connection refused"
    )
    assert box.fields == ()  # no code, status or RequestId: nothing answered
    assert err.remedy.startswith("The OpenAPI endpoint gave no usable answer")
    assert "`egress-sandbox status`" in err.remedy and "re-running is safe" in err.remedy


@case(KubernetesApiError)
def test_kubernetes_api_error_shows_status_reason_and_how_to_check_permissions() -> None:
    status = {
        "kind": "Status",
        "status": "Failure",
        "message": 'pods is forbidden: User "ops" cannot create resource "pods"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps(status)

    def create() -> None:
        with kube.k8s_errors("create", "Pod", "egress-verify-direct"):
            raise exc

    err = caught(create, KubernetesApiError)
    assert str(err) == (
        "create Pod/egress-verify-direct failed: HTTP 403 Forbidden: pods is forbidden: "
        'User "ops" cannot create resource "pods"'
    )
    box, head = shown(err)
    assert head[0] == f"KubernetesApiError: {err}"
    assert "HTTP status: 403   Reason: Forbidden" in head
    assert "`kubectl auth can-i VERB RESOURCE`" in err.remedy and SAFE_TO_RERUN in err.remedy
    assert "<code>kubectl auth can-i VERB RESOURCE</code>" in box._repr_html_()


@case(WaitTimeout)
def test_wait_timeout_says_what_was_seen_last_and_that_a_rerun_waits_again() -> None:
    def poll() -> object:
        return waiting.poll(
            lambda: "Pending",
            lambda state: state == "Available",
            timeout=0,
            what="SnatEntry snat-egress-gateway",
            reason="SNAT entry Available",
            describe=lambda state: f"status={state}",
        )

    err = caught(poll, WaitTimeout)
    assert str(err) == (
        "gave up waiting for SnatEntry snat-egress-gateway (SNAT entry Available) after 0s; "
        "last seen: status=Pending"
    )
    assert issubclass(type(err), TimeoutError)  # callers may catch the builtin
    _, head = shown(err)
    assert head[0] == f"WaitTimeout: {err}"
    assert err.remedy == WaitTimeout.remedy
    assert "Nothing failed yet" in err.remedy and "timeouts.* parameter" in err.remedy


@case(PreconditionFailed)
def test_precondition_failed_names_the_fact_and_the_parameter() -> None:
    pod = {
        "metadata": {"name": "egress-verify-direct"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
            ],
        },
    }
    err = caught(lambda: pod_probe._finished(pod), PreconditionFailed)
    assert str(err) == (
        "pod egress-verify-direct cannot pull its image: ErrImagePull: not found (set verify.image)"
    )
    _, head = shown(err)
    assert head[0] == f"PreconditionFailed: {err}"
    assert err.remedy == PreconditionFailed.remedy and "00-preflight" in err.remedy


@case(NotApproved)
def test_not_approved_says_nothing_was_changed_and_how_to_approve() -> None:
    change = Change("create", "Service", "aliyun-svc-external", "ExternalName", "default")
    plan = Plan("04-external-services", [change])
    session: Any = SimpleNamespace(params=SimpleNamespace(approve=False))
    err = caught(lambda: require_approval(session, plan), NotApproved)
    assert str(err).startswith(
        "04-external-services would make 1 change(s) (create Service/default/aliyun-svc-external)"
        " but approve is false: nothing was changed."
    )
    box, head = shown(err)
    # The remedy the message ends with is said once, as "What to do", not in the summary too.
    assert head[0] == (
        "NotApproved: 04-external-services would make 1 change(s) (create "
        "Service/default/aliyun-svc-external) but approve is false: nothing was changed."
    )
    assert err.remedy == NotApproved.remedy and "--approve" in err.remedy
    assert any("Plan for 04-external-services" in line for line in box.details)


@case(PlanStale)
def test_plan_stale_lists_what_changed_and_says_plan_again() -> None:
    err = PlanStale(
        "03-configure-snat",
        ["SnatEntry/vsw-gateway: planned create (EIP 47.96.0.10); not needed any more"],
    )
    assert str(err).startswith("the plan for 03-configure-snat is stale; nothing was written.")
    box, head = shown(err)
    assert head[0] == (
        "PlanStale: the plan for 03-configure-snat is stale; nothing was written. What changed "
        "since the plan:"
    )
    assert box.details == (
        "  - SnatEntry/vsw-gateway: planned create (EIP 47.96.0.10); not needed any more",
    )
    assert err.remedy == "Plan again, review the new plan, then apply it."


@case(PlanConflict)
def test_plan_conflict_names_the_objects_and_how_to_adopt_them() -> None:
    err = PlanConflict(
        "05-ingress-routes",
        ["Ingress/default/mse-ingress: exists and egress-runbook did not create it"],
    )
    box, head = shown(err)
    assert head[0] == (
        "PlanConflict: 05-ingress-routes cannot be applied: 1 object(s) exist that "
        "egress-runbook did not create:"
    )
    assert box.details == (
        "  - Ingress/default/mse-ingress: exists and egress-runbook did not create it",
    )
    assert "adopt: [Ingress/mse-ingress]" in err.remedy


@case(LockHeld)
def test_lock_held_names_the_holder_and_how_to_wait() -> None:
    err = LockHeld(
        lease_name("sandbox"),
        "default",
        "run 20261202T065146Z-eea464 of ops@laptop (pid 4242)",
        "waited 30s; renewed 4s ago",
    )
    _, head = shown(err)
    assert head[0] == (
        "LockHeld: another run holds the lock on this cluster: Lease "
        "default/egress-runbook-sandbox is held by run 20261202T065146Z-eea464 of ops@laptop "
        "(pid 4242); waited 30s; renewed 4s ago."
    )
    assert "--wait-lock SECONDS" in err.remedy and "let the lease expire" in err.remedy


@case(TargetUnavailable)
def test_target_unavailable_without_a_sandbox_says_how_to_start_one(tmp_path: Path) -> None:
    from egress_lib.clients import read_sandbox_info

    err = caught(lambda: read_sandbox_info(tmp_path), TargetUnavailable)
    _, head = shown(err)
    assert head[0] == (
        "TargetUnavailable: the sandbox is not running: start it with `egress-sandbox up` (or "
        f"`make demo`) (no {tmp_path / 'sandbox.json'})"
    )
    assert err.remedy == TargetUnavailable.remedy and "Nothing was changed." in err.remedy


# ---- exceptions that stay inside ---------------------------------------------------------------


def test_a_stale_object_reaches_the_user_as_plan_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    done = Change("create", "Service", "a", "ExternalName", "default")
    gone = Change("update", "Service", "b", "ExternalName", "default")
    outcomes: list[object] = [done, kube.StaleObject(gone.ref, "deleted since the plan")]

    def apply_change(session: object, change: Change) -> Change:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return change

    monkeypatch.setattr(kube, "apply_change", apply_change)
    plan = Plan("04-external-services", [done, gone])
    err = caught(lambda: apply_kube_changes(object(), plan, ("Service",)), PlanStale)  # type: ignore[arg-type]
    assert isinstance(err.__cause__, kube.StaleObject)
    _, head = shown(err)
    assert head[0] == (
        "PlanStale: the plan for 04-external-services is stale; already applied before this was "
        "seen: Service/default/a. What changed since the plan:"
    )
    assert "    - Service/default/b: deleted since the plan" in head


def test_a_refused_yaml_file_reaches_the_user_as_a_parameter_error(tmp_path: Path) -> None:
    bad = tmp_path / "twice.yaml"
    bad.write_text(PARAMS.read_text() + "namespace: other\n")  # namespace is given twice
    err = caught(lambda: load_parameters(bad), ParameterError)
    assert "given twice" in str(err) and "line" in str(err)
    _, head = shown(err)
    assert head[0].startswith("ParameterError: invalid parameter")


def test_a_retryable_answer_reaches_the_user_as_a_kubernetes_api_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes import client as k8s

    from egress_lib.kube_retry import RetryableAnswer, RetryingApiClient
    from egress_lib.retry import RetryPolicy

    class Answer:
        """What urllib3 hands the client: a 503 with a Status body."""

        status, reason, headers = 503, "Service Unavailable", {"Content-Type": "application/json"}
        data = json.dumps(
            {"kind": "Status", "reason": "ServiceUnavailable", "message": "etcd is down"}
        ).encode()

        def read(self) -> bytes:
            return self.data

        def getheaders(self) -> dict[str, str]:
            return self.headers

        def getheader(self, name: str, default: str | None = None) -> str | None:
            return self.headers.get(name, default)

    monkeypatch.setattr(k8s.ApiClient, "call_api", lambda *_, **__: Answer())
    client = RetryingApiClient(k8s.Configuration(), RetryPolicy(deadline_seconds=0.0))

    def create() -> None:
        with kube.k8s_errors("create", "Service", "aliyun-svc-external"):
            client.call_api("POST", "https://127.0.0.1:1/api/v1/namespaces/default/services")

    try:
        err = caught(create, KubernetesApiError)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    assert not any(isinstance(e, RetryableAnswer) for e in (err.__cause__, err.__context__))
    assert (err.status, err.reason) == (503, "ServiceUnavailable")
    _, head = shown(err)
    assert head[0].startswith(
        "KubernetesApiError: create Service/aliyun-svc-external failed: HTTP 503 "
        "ServiceUnavailable: etcd is down"
    )


# ---- the meta-test ------------------------------------------------------------------------------


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in an egress_lib module, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(egress_lib.__path__, "egress_lib."):
        module = importlib.import_module(info.name)
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, BaseException) and member.__module__ == info.name:
                found[f"{member.__module__}.{member.__qualname__}"] = member
    return found


def _test_source(ref: str) -> str:
    path, _, name = ref.partition("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment((ROOT / path).read_text(encoding="utf-8"), node) or ""
    raise AssertionError(f"{ref} does not exist")


def test_every_exception_class_of_egress_lib_has_a_case() -> None:
    classes = exception_classes()
    assert "egress_lib.errors.EgressError" in classes
    covered = set(CASES) | set(ELSEWHERE) | set(INTERNAL)
    missing = sorted(set(classes) - covered)
    assert missing == [], (
        "exception classes without a case (add one to tests/unit/test_error_classes.py): "
        + ", ".join(missing)
    )
    assert sorted(covered - set(classes)) == [], "cases of classes that no longer exist"
    for name, ref in ELSEWHERE.items():
        source = _test_source(ref)
        assert name.rpartition(".")[2] in source and "render(" in source, ref
    for name, ref in INTERNAL.items():
        assert not issubclass(classes[name], EgressError), f"{name} is an EgressError"
        _test_source(ref)


def test_every_class_of_the_tree_is_exported() -> None:
    tree = {n: c for n, c in exception_classes().items() if issubclass(c, EgressError)}
    exported = {getattr(egress_lib, n) for n in egress_lib.__all__}
    assert sorted(n for n, c in tree.items() if c not in exported) == []
