"""The remedies on the real paths: the SDKs and the kubernetes client against a sandbox.

One sandbox for the module (block 29). Wrong and read-only AccessKeys are the sandbox's own
checks (a copy of its home whose sandbox.json holds other credentials); throttling is the
control API's fault injection; a Failed MseIngressConfig is the control API's ``mse_fail``
with the Events the sandbox's controller records. Each test installs what it needs
(re-applying a done step is a no-op), so they do not depend on their order.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import (
    CloudApiError,
    Session,
    StepFailed,
    WaitTimeout,
    connect,
    kube,
    load_parameters,
    steps,
)
from egress_lib.error_display import render
from egress_sandbox.control.client import ControlClient, ControlError

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def box() -> Iterator[Any]:
    home = Path(tempfile.mkdtemp(prefix="sbxr-"))  # short: the pod network is a UNIX socket
    try:
        with sandbox_home(home, 29) as sandbox:
            yield sandbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def control(box: Any) -> Iterator[ControlClient]:
    client = ControlClient.from_home(box.home)
    yield client
    client.reset()  # faults and transition modes; the world stays


@pytest.fixture
def session(box: Any) -> Iterator[Session]:
    s = connect(load_parameters(PARAMS, {"approve": True}))
    yield s
    s.close()


def connect_with(
    box: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **keys: str
) -> tuple[Session, Path]:
    """A session whose OpenAPI credentials are ``keys`` (the sandbox.json of a copied home)."""
    info = json.loads((box.home / "sandbox.json").read_text(encoding="utf-8"))
    info.update(keys)
    home = tmp_path / "home"
    home.mkdir()
    (home / "sandbox.json").write_text(json.dumps(info), encoding="utf-8")
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(home))
    return connect(load_parameters(PARAMS, {"approve": True})), home / "sandbox.json"


@pytest.mark.parametrize(
    ("change", "code", "why"),
    [
        ("access_key_id", "InvalidAccessKeyId.NotFound", "the AccessKey ID is not known"),
        ("access_key_secret", "SignatureDoesNotMatch", "secret does not match its ID"),
    ],
)
def test_a_wrong_access_key_names_the_credential_source(
    box: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: str,
    code: str,
    why: str,
) -> None:
    real = json.loads((box.home / "sandbox.json").read_text(encoding="utf-8"))
    wrong = "LTSAwrongwrongwrong9999" if change == "access_key_id" else "wrong-secret-0123456789"
    s, path = connect_with(box, monkeypatch, tmp_path, **{change: wrong})
    try:
        with pytest.raises(CloudApiError) as info:
            steps.snat.plan(s)
    finally:
        s.close()
    err = info.value
    assert err.code == code and err.request_id and err.recommend
    box_ = render(err)
    text = str(box_)
    print(text)
    assert why in text
    masked = "LTSA****9999" if change == "access_key_id" else "LTSA****0000"
    assert f"They came from the sandbox's AccessKey {masked} from {path}" in text
    shown = text + box_._repr_html_()
    assert real["access_key_secret"] not in shown and wrong not in shown


def test_forbidden_ram_names_the_ram_action_and_the_policy(
    box: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    info = json.loads((box.home / "sandbox.json").read_text(encoding="utf-8"))
    s, _ = connect_with(
        box,
        monkeypatch,
        tmp_path,
        access_key_id=info["readonly_access_key_id"],
        access_key_secret=info["readonly_access_key_secret"],
    )
    try:
        plan = steps.snat.plan(s)  # reading is allowed
        assert plan.has_changes
        with pytest.raises(CloudApiError) as raised:
            steps.snat.apply(s, plan)
    finally:
        s.close()
    err = raised.value
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)
    assert (err.auth_action, err.principal) == ("vpc:CreateSnatEntry", "sandbox-readonly")
    text = str(render(err))
    print(text)
    assert "Code: Forbidden.RAM   HTTP status: 403   RequestId: " in text
    assert "The RAM action vpc:CreateSnatEntry was denied to RAM identity sandbox-readonly" in text
    assert "attach the system policy AliyunVPCFullAccess to it" in text
    assert info["readonly_access_key_secret"] not in text


@pytest.mark.parametrize(
    ("code", "status"), [("Throttling.User", 400), ("ServiceUnavailable", 503)]
)
def test_throttling_and_5xx_say_a_rerun_is_safe_with_the_recommend_link(
    box: Any, control: ControlClient, code: str, status: int
) -> None:
    # Retried with backoff until timeouts.api_retry_seconds (2 s here); then the error says so.
    session = connect(load_parameters(PARAMS, {"approve": True, "timeouts.api_retry_seconds": 2}))
    control.add_fault(api="vpc", action="DescribeNatGateways", code=code, status=status, count=20)
    start = time.monotonic()
    try:
        with pytest.raises(CloudApiError) as info:
            steps.snat.plan(session)
        took = time.monotonic() - start
        err = info.value
        assert (err.code, err.status_code) == (code, status)
        assert "; tried " in str(err) and "(timeouts.api_retry_seconds: 2 s)" in str(err)
        assert err.recommend and err.recommend.startswith("https://api.aliyun.com/troubleshoot?q=")
        assert f"requestId={err.request_id}" in err.recommend and err.recommend in str(err)
        text = str(render(err))
        print(f"{took:.1f}s\n{text}")
        assert "re-running is safe" in text and err.recommend in text.split("Traceback")[0]
        left = control.faults()["cloud"][0]["count"]
        assert left < 20 - 1  # retried before giving up
        control.clear_faults()
        steps.snat.plan(session)  # and a re-run goes through
    finally:
        session.close()


def _mse_fail_when_created(box: Any, control: ControlClient, name: str, message: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = connect(load_parameters(PARAMS))
        try:
            if kube.get(s, "MseIngressConfig", name) is not None:
                control.mse_fail(name, message)
                return
        finally:
            s.close()
        time.sleep(0.1)
    raise AssertionError(f"MseIngressConfig {name} was never created")


def test_a_failed_mse_ingress_config_shows_its_events_and_how_to_recover(
    box: Any, control: ControlClient, session: Session
) -> None:
    name = session.params.gateway.config_name
    steps.controller.apply(session)
    kube.delete(session, "MseIngressConfig", name, wait=True, timeout=30)  # a first run of 02
    control.set_transition("mse_gateway", "manual")  # stays Pending until failed below
    message = "vSwitch has no free IP address for the gateway nodes"
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(steps.gateway.apply, session)
        _mse_fail_when_created(box, control, name, message)
        with pytest.raises(StepFailed) as info:
            running.result(timeout=60)
    err = info.value
    assert str(err) == f"MseIngressConfig {name} is Failed: {message}"
    assert [(e.type, e.reason, e.message) for e in err.events][-1] == ("Warning", "Failed", message)
    box_ = render(err)
    text = str(box_)
    print(text)
    assert "never retries a Failed MseIngressConfig" in text
    assert "re-run 02-create-gateway with approve = True" in text and "deletes the Failed" in text
    assert "Warning  Failed" in text and message in text.split("Traceback")[0]
    assert f'<td style="text-align:left">{message}</td>' in box_._repr_html_()

    control.set_transition("mse_gateway", "timed", 0.05)
    # What the remedy says: a re-run, approved, deletes the Failed config and creates it again.
    result = steps.gateway.apply(session)
    assert result.objects[0]["status"]["phase"] == "Listening"
    recreated = [c.action for c in result.changes_applied if c.kind == "MseIngressConfig"]
    assert recreated == ["delete", "create"]


def test_a_gateway_wait_that_times_out_shows_the_events_and_says_rerun(
    box: Any, control: ControlClient
) -> None:
    params = load_parameters(PARAMS, {"approve": True, "timeouts": {"gateway_seconds": 1}})
    s = connect(params)
    try:
        name = params.gateway.config_name
        steps.controller.apply(s)
        kube.delete(s, "MseIngressConfig", name, wait=True, timeout=30)
        control.set_transition("mse_gateway", "manual")  # Pending for as long as it takes
        with pytest.raises(WaitTimeout) as info:
            steps.gateway.apply(s)
        err = info.value
        assert [e.reason for e in err.events] == ["Creating"]  # not the deleted config's
        text = str(render(err))
        print(text)
        assert "raise timeouts.gateway_seconds (now 1)" in text and "Re-run 02" in text
        assert "Normal   Creating" in text
        # It was only slow: once the controller moves on, a re-run finds it Listening.
        control.set_transition("mse_gateway", "timed", 0.05)
        control.advance(name)  # the transition that was waiting under "manual"
        assert steps.gateway.apply(s).objects[0]["status"]["phase"] == "Listening"
    finally:
        control.set_transition("mse_gateway", "timed", 0.05)
        with contextlib.suppress(ControlError):  # never leave a config waiting for a hand
            control.advance(params.gateway.config_name)
        s.close()


def test_verify_503_points_at_the_snat_entry_of_step_03(session: Session) -> None:
    for step in (steps.controller, steps.gateway, steps.services, steps.ingress):
        step.apply(session)
    for entry in steps.snat.entries_to_delete(session):  # no SNAT: the gateway has no way out
        steps.snat.delete_entry(session, entry)
    with pytest.raises(StepFailed) as info:
        steps.verify.apply(session)
    text = str(render(info.value))
    print(text)
    assert "HTTP 503" in text.splitlines()[1]
    vswitches = ", ".join(session.params.gateway.vswitches)
    assert f"SNAT entry of step 03 (03-configure-snat) for the gateway vSwitch(es) {vswitches}" in (
        text
    )
    # What the remedy says: run 03, then 06 again.
    steps.snat.apply(session)
    try:
        steps.verify.apply(session)
    finally:
        for entry in steps.snat.entries_to_delete(session):
            steps.snat.delete_entry(session, entry)
