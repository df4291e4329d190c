"""The one retry policy (egress_lib.retry): what is retried, how long, and what the operator sees.

No sleeping and no timing asserts: every policy here has a fake clock that its sleep moves on,
so a two-minute deadline passes in no time and each wait is a value to compare.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from egress_lib import records, retry
from egress_lib.cloud import call, call_with_id, register_client, retry_options
from egress_lib.error_display import render
from egress_lib.errors import CloudApiError, CloudConnectionError, KubernetesApiError
from egress_lib.kube import k8s_errors
from egress_lib.kube_retry import RetryableAnswer, kube_verdict
from egress_lib.plan import RUN_DIR_ENV
from egress_lib.progress import STEP_ENV
from egress_lib.retry import RetryPolicy, Verdict
from egress_lib.run_reports import format_run, write_summary

REQUEST_ID = "5C6B2A8E-2222"


class FakeTime:
    """A clock that only ``sleep`` moves; remembers every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def policy(self, deadline: float = 120.0, **kw: Any) -> RetryPolicy:
        return RetryPolicy(
            deadline_seconds=deadline, sleep=self.sleep, clock=self.clock, rand=lambda: 0.5, **kw
        )


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def sdk_error(cls: type[Any], status: int, code: str, **kw: Any) -> Any:
    body = {"RequestId": REQUEST_ID, "Code": code, "Message": f"{code} happened"}
    return cls(
        status_code=status,
        code=code,
        message=f"code: {status}, {code} happened request id: {REQUEST_ID}",
        request_id=REQUEST_ID,
        data=dict(body),
        **kw,
    )


def transport_error(cause: BaseException) -> UnretryableException:
    """What the SDK raises when the request got no answer: the requests error as context."""
    try:
        try:
            raise cause
        except OSError as e:
            raise RetryError(str(e))  # as darabonba does: the cause is its __context__  # noqa: B904
    except RetryError as r:
        inner = r
    return UnretryableException(RetryPolicyContext(retries_attempted=1, exception=inner))


def refused() -> BaseException:
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))


def reset() -> BaseException:
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
        )
    )


class Sdk:
    """An SDK client stand-in: each call pops the next outcome (an exception or a body)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def describe_nat_gateways(self, *_: Any) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else {"RequestId": "R-ok"}
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    install_cluster_addons = describe_nat_gateways
    create_snat_entry = describe_nat_gateways


def registered(policy: RetryPolicy, *outcomes: Any) -> Sdk:
    sdk = Sdk(*outcomes)
    register_client(sdk, "the test's AccessKey LTAI****0000", policy)
    return sdk


# --- the backoff -------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered() -> None:
    low = RetryPolicy(base_delay=1, max_delay=15, jitter=0.5, rand=lambda: 0.0)
    high = RetryPolicy(base_delay=1, max_delay=15, jitter=0.5, rand=lambda: 1.0)
    assert [low.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1, 2, 4, 7.5, 7.5]
    assert [high.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 15, 15]


def test_the_policy_of_a_session_takes_its_deadline_from_the_parameters() -> None:
    from egress_lib.parameters import load_parameters

    params = load_parameters(Path(__file__).resolve().parents[2] / "parameters" / "sandbox.yaml")
    params = params.model_copy(
        update={"timeouts": params.timeouts.model_copy(update={"api_retry_seconds": 42})}
    )
    assert retry.policy_for(params).deadline_seconds == 42


# --- the loop ----------------------------------------------------------------------------------


def flaky(*outcomes: Any) -> Any:
    queue = list(outcomes)

    def attempt(_n: int) -> Any:
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt


def by_message(e: Exception) -> Verdict | None:
    return Verdict(str(e)) if str(e).startswith("busy") else None


def test_retries_until_it_works_logging_and_counting_each_retry(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    before = retry.counts().get("busy now", 0)
    attempt = flaky(ValueError("busy now"), ValueError("busy now"), "done")
    with caplog.at_level(logging.WARNING, logger="egress_lib.retry"):
        assert retry.run(fake.policy(), "vpc:X", attempt, by_message) == "done"
    assert fake.waits == [0.75, 1.5]  # base 1 s, doubling, half of it random (0.5 here)
    assert retry.counts()["busy now"] - before == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "egress_lib.retry"]
    assert lines == [
        "vpc:X: attempt 1 failed (busy now); retrying in 0.8 s (backing off)",
        "vpc:X: attempt 2 failed (busy now); retrying in 1.5 s (backing off)",
    ]


def test_a_final_error_is_raised_at_once(fake: FakeTime) -> None:
    attempt = flaky(ValueError("denied"), "never")
    with pytest.raises(ValueError, match="denied") as info:
        retry.run(fake.policy(), "vpc:X", attempt, by_message)
    assert fake.waits == [] and retry.exhausted_of(info.value) is None


def test_the_wait_the_server_asks_for_is_honoured(fake: FakeTime) -> None:
    def asked(e: Exception) -> Verdict:
        return Verdict("Throttling.User", retry_after=7.0)

    attempt = flaky(ValueError("x"), ValueError("x"), "done")
    assert retry.run(fake.policy(), "vpc:X", attempt, asked) == "done"
    assert fake.waits == [7.0, 7.0]


def test_a_server_asked_wait_past_the_deadline_is_not_started(fake: FakeTime) -> None:
    def asked(e: Exception) -> Verdict:
        return Verdict("HTTP 429", retry_after=30.0)

    with pytest.raises(ValueError) as info:
        retry.run(fake.policy(deadline=20), "GET /api/v1/x", flaky(ValueError("x")), asked)
    assert fake.waits == []  # never slept past the deadline
    exhausted = retry.exhausted_of(info.value)
    assert exhausted is not None and exhausted.asked_wait == 30.0
    assert exhausted.describe() == (
        "tried once over 0.0 s; the server then asked to wait 30 s, past the deadline "
        "(timeouts.api_retry_seconds: 20 s)"
    )


def test_retries_stop_at_the_deadline_and_say_so(fake: FakeTime) -> None:
    attempt = flaky(*[ValueError("busy") for _ in range(100)])
    with pytest.raises(ValueError) as info:
        retry.run(fake.policy(deadline=60), "vpc:X", attempt, by_message)
    assert sum(fake.waits) == pytest.approx(60)  # the last wait is cut to the deadline
    exhausted = retry.exhausted_of(info.value)
    assert exhausted is not None
    # 0.75 + 1.5 + 3 + 6 + 4 x 11.25 (capped at 15, half random) + 3.75 (cut) = 60 s
    assert (exhausted.call, exhausted.reason, exhausted.attempts) == ("vpc:X", "busy", 10)
    assert exhausted.describe() == "tried 10 times over 60.0 s (timeouts.api_retry_seconds: 60 s)"


# --- what the cloud side retries ---------------------------------------------------------------


def cloud_error(exc: BaseException, action: str = "DescribeNatGateways") -> CloudApiError:
    with pytest.raises(CloudApiError) as info:
        call("vpc", action, Sdk(exc).describe_nat_gateways)  # not registered: one attempt
    return info.value


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (ClientException, 400, "Throttling"),
        (ClientException, 400, "Throttling.User"),
        (ClientException, 400, "Throttling.Api"),
        (ServerException, 503, "ServiceUnavailable"),
        (ServerException, 500, "InternalError"),
        (ServerException, 502, "BadGateway"),
        (ClientException, 400, "OperationConflict"),
        (ClientException, 400, "IncorrectStatus.NATGW"),
        (ClientException, 400, "IncorretSnatEntryStatus"),
    ],
)
def test_throttling_5xx_and_busy_codes_are_retried(cls: type[Any], status: int, code: str) -> None:
    err = cloud_error(sdk_error(cls, status, code))
    assert retry.cloud_verdict(err, "CreateSnatEntry") == Verdict(code)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "Forbidden.RAM"),
        (400, "InvalidParameter"),
        (404, "InvalidSnatTableId.NotFound"),
        (409, "Conflict"),
        (400, "InvalidAccessKeyId.NotFound"),
    ],
)
def test_client_errors_are_not_retried(status: int, code: str) -> None:
    err = cloud_error(sdk_error(ClientException, status, code))
    assert retry.cloud_verdict(err, "DescribeNatGateways") is None


def test_x_acs_retry_after_becomes_the_wait() -> None:
    exc = sdk_error(ThrottlingException, 400, "Throttling.User", retry_after=1500)
    assert retry.cloud_verdict(cloud_error(exc), "DescribeNatGateways") == Verdict(
        "Throttling.User", 1.5
    )


@pytest.mark.parametrize(
    ("action", "cause", "verdict"),
    [
        ("DescribeNatGateways", reset, "connection reset"),  # reads: always
        ("DescribeNatGateways", refused, "connection refused"),
        ("InstallClusterAddons", refused, "connection refused"),  # never sent: safe
        ("InstallClusterAddons", reset, None),  # may have been carried out: not repeated
        ("CreateSnatEntry", reset, "connection reset"),  # its ClientToken makes it safe
        ("DeleteSnatEntry", reset, "connection reset"),  # a repeat answers NotFound: done
    ],
)
def test_transport_failures_are_retried_where_a_repeat_is_safe(
    action: str, cause: Any, verdict: str | None
) -> None:
    err = cloud_error(transport_error(cause()), action)
    assert isinstance(err, CloudConnectionError)
    found = retry.cloud_verdict(err, action)
    assert (found.reason if found else None) == verdict


def test_a_read_timeout_is_a_timeout() -> None:
    cause = requests.exceptions.ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=20)")
    assert retry.transport_reason(transport_error(cause).inner_exception) == ("timeout", True)


def test_the_sdk_does_not_retry_on_its_own() -> None:
    assert retry_options().retryable is False


# --- cloud.call under a policy -----------------------------------------------------------------


def test_throttling_that_lasts_gets_through(fake: FakeTime) -> None:
    throttled = [sdk_error(ClientException, 400, "Throttling.User") for _ in range(8)]
    sdk = registered(fake.policy(), *throttled, {"RequestId": "R-ok"})
    body, ids = call_with_id("vpc", "DescribeNatGateways", sdk.describe_nat_gateways)
    assert body == {"RequestId": "R-ok"} and ids["request_id"] == "R-ok"
    assert sdk.calls == 9 and len(fake.waits) == 8


def test_throttling_past_the_deadline_says_what_was_tried_and_what_to_do(fake: FakeTime) -> None:
    throttled = [sdk_error(ClientException, 400, "Throttling.User") for _ in range(100)]
    sdk = registered(fake.policy(deadline=30), *throttled)
    with pytest.raises(CloudApiError) as info:
        call("vpc", "DescribeNatGateways", sdk.describe_nat_gateways)
    err = info.value
    assert (err.code, err.status_code, err.request_id) == ("Throttling.User", 400, REQUEST_ID)
    assert str(err).startswith(
        "vpc:DescribeNatGateways failed, HTTP 400, Throttling.User: Throttling.User happened; "
        "tried 7 times over 30.0 s (timeouts.api_retry_seconds: 30 s) (RequestId 5C6B2A8E-2222)"
    )
    assert isinstance(err.__cause__, ClientException)
    text = str(render(err))
    print(text)
    assert "vpc:DescribeNatGateways kept answering Throttling.User" in text
    assert "raise timeouts.api_retry_seconds" in text and "re-running is safe" in text
    assert f"RequestId: {REQUEST_ID}" in text


def test_a_final_answer_is_not_retried_and_reads_as_before(fake: FakeTime) -> None:
    sdk = registered(fake.policy(), sdk_error(ClientException, 403, "Forbidden.RAM"))
    with pytest.raises(CloudApiError) as info:
        call("vpc", "DescribeNatGateways", sdk.describe_nat_gateways)
    assert sdk.calls == 1 and fake.waits == []
    assert "tried" not in str(info.value) and "RAM action" in info.value.remedy


def test_once_makes_one_attempt(fake: FakeTime) -> None:
    sdk = registered(fake.policy(), sdk_error(ServerException, 503, "ServiceUnavailable"))
    with pytest.raises(CloudApiError):
        call_with_id("vpc", "CreateSnatEntry", sdk.create_snat_entry, once=True)
    assert sdk.calls == 1


# --- the Kubernetes side -----------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}


@pytest.mark.parametrize(
    ("err", "verdict"),
    [
        (RetryableAnswer(Answer(429, {"Retry-After": "3"})), Verdict("HTTP 429", 3.0)),
        (RetryableAnswer(Answer(503)), Verdict("HTTP 503")),
        (RetryableAnswer(Answer(504, {"Retry-After": "Fri, 07 Nov 2025"})), Verdict("HTTP 504")),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104)),
            Verdict("connection reset"),
        ),
        (urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out."), Verdict("timeout")),
        (urllib3.exceptions.NewConnectionError(None, "refused"), Verdict("connection refused")),
        (urllib3.exceptions.SSLError("certificate verify failed"), None),
        (ValueError("not a transport error"), None),
    ],
)
def test_what_the_kubernetes_side_retries(err: Exception, verdict: Verdict | None) -> None:
    assert kube_verdict(err) == verdict


def test_a_kubernetes_call_retried_to_the_deadline_says_so() -> None:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=503, reason="Service Unavailable")
    exc.body = json.dumps({"kind": "Status", "reason": "ServiceUnavailable", "message": "etcd"})
    retry.mark(exc, retry.Exhausted("POST /api/v1/namespaces/x/services", 5, 12.5, 12, "HTTP 503"))
    with pytest.raises(KubernetesApiError) as info, k8s_errors("create", "Service", "s"):
        raise exc
    err = info.value
    assert err.status == 503 and err.reason == "ServiceUnavailable"
    assert str(err) == (
        "create Service/s failed: HTTP 503 ServiceUnavailable: etcd; tried 5 times over 12.5 s "
        "(timeouts.api_retry_seconds: 12 s)"
    )
    text = str(render(err))
    print(text)
    assert "POST /api/v1/namespaces/x/services kept answering HTTP 503" in text
    assert "/readyz" in text and "re-running is safe" in text


def test_the_kubernetes_client_retries_nothing_itself(tmp_path: Path) -> None:
    from kubernetes import client as k8s

    from egress_lib.kube_retry import RetryingApiClient

    api = RetryingApiClient(k8s.Configuration(), RetryPolicy())
    assert api.configuration.retries is False


# --- counted for the run record ----------------------------------------------------------------


def test_retries_are_recorded_per_step_in_the_run_folder(
    fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(STEP_ENV, "03")
    attempt = flaky(ValueError("busy a"), ValueError("busy a"), ValueError("busy b"), "ok")
    retry.run(fake.policy(), "vpc:X", attempt, by_message)
    monkeypatch.setenv(STEP_ENV, "05")
    retry.run(fake.policy(), "vpc:Y", flaky(ValueError("busy c"), "ok"), by_message)
    with (tmp_path / retry.RETRIES_FILE).open("a") as f:
        f.write('{"step": "03", "reas')  # a line cut short by a killed kernel
    assert retry.step_counts(tmp_path, "03") == {"busy a": 2, "busy b": 1}
    assert retry.step_counts(tmp_path, "05") == {"busy c": 1}
    assert retry.step_counts(tmp_path, "06") == {}
    assert retry.step_counts(tmp_path / "none", "03") == {}


def test_runs_show_and_the_summary_list_the_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "git_revision", lambda repo=None: (None, False))
    record = records.new_run(
        tmp_path, "demo", command="run", parameters={}, parameters_file="p.yaml"
    )
    record.add_step("03-configure-snat", "ok", seconds=3, retries={"Throttling.User": 4})
    record.add_step("04-externalname-services", "ok", seconds=1)
    record.update_step("04-externalname-services", retries={"HTTP 503": 1, "HTTP 429": 2})
    loaded = records.RunRecord.load(record.out_dir)
    assert loaded.step("03-configure-snat").retries == {"Throttling.User": 4}
    shown = format_run(loaded)
    assert "    retries: 4 (Throttling.User x4)" in shown
    assert "    retries: 3 (HTTP 429 x2, HTTP 503 x1)" in shown
    summary = write_summary(loaded).read_text()
    assert "## Retries" in summary
    assert "- 03-configure-snat: 4 (Throttling.User x4)" in summary
