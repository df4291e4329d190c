"""Each remedy as the operator reads it: the rendered text of every error the issue names.

The errors are built the way the library builds them (SDK exceptions through
``CloudApiError.from_sdk``, ``VerifyResult.raise_for_failures``, ``connect``); the sandbox
paths are in tests/integration/test_error_remedies.py, the box itself in test_error_display.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)

from egress_lib import remedies, retry
from egress_lib.clients import connect, default_chain_source
from egress_lib.cloud import call, register_client
from egress_lib.error_display import render
from egress_lib.errors import (
    CloudApiError,
    KubeEvent,
    StepFailed,
    TargetUnavailable,
)
from egress_lib.parameters import load_parameters
from egress_lib.steps.verify import VerifyResult, VerifyRow
from egress_lib.steps.verify_rows import VIA

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = "5C6B2A8E-1111"
RECOMMEND = (
    f"https://api.aliyun.com/troubleshoot?q=Throttling.User&product=Vpc&requestId={REQUEST_ID}"
)
SECRET = "sEcReT-AccessKeySecret-0123456789"


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as a notebook cell sees it."""
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - any exception is the point
        return e


def sdk_error(cls: type[Any], status: int, code: str, **extra: Any) -> Any:
    body = {"RequestId": REQUEST_ID, "HostId": "vpc.aliyuncs.com", "Code": code, **extra}
    body.setdefault("Message", "The request processing has failed.")
    kwargs: dict[str, Any] = {}
    if "AccessDeniedDetail" in body:
        kwargs["access_denied_detail"] = body["AccessDeniedDetail"]
    return cls(
        status_code=status,
        code=code,
        message=f"code: {status}, {body['Message']} request id: {REQUEST_ID}",
        request_id=REQUEST_ID,
        data=dict(body),
        **kwargs,
    )


def from_call(exc: BaseException, product: Any = "vpc", action: str = "DescribeNatGateways") -> Any:
    """The CloudApiError egress_lib.cloud.call raises for ``exc``, with its chained cause."""

    def fn(*_: Any) -> Any:
        raise exc

    with pytest.raises(CloudApiError) as info:
        call(product, action, fn)
    return info.value


# ---- MseIngressConfig Failed ------------------------------------------------------------------


def test_failed_mse_ingress_config_shows_events_and_how_to_recover() -> None:
    events = [
        KubeEvent("Normal", "Creating", "Creating MSE gateway egress-gateway", "mse-ingress"),
        KubeEvent("Warning", "Failed", "vSwitch vsw-1 has no free IP address", "mse-ingress"),
    ]
    err = raised(
        StepFailed(
            "MseIngressConfig egress-gateway is Failed: vSwitch vsw-1 has no free IP address",
            remedy=remedies.mse_failed("egress-gateway"),
            events=events,
        )
    )
    box = render(err)
    text = str(box)
    print(text)
    assert text.splitlines()[0] == (
        "StepFailed: MseIngressConfig egress-gateway is Failed: vSwitch vsw-1 has no free IP "
        "address"
    )
    assert "stays Failed" in text and "`kubectl delete mseingressconfig egress-gateway`" in text
    assert "re-run 02-create-gateway" in text and "99-teardown" in text
    assert "Warning  Failed" in text and "x1  vSwitch vsw-1 has no free IP address" in text
    assert text.index("What to do:") < text.index("Events:") < text.index("Traceback")
    html = box._repr_html_()
    assert "<b>Events</b>" in html and "<td" in html and "no free IP address</td>" in html
    assert "<code>kubectl delete mseingressconfig egress-gateway</code>" in html


# ---- throttling and 5xx -----------------------------------------------------------------------


def test_throttling_says_rerun_is_safe_and_keeps_the_recommend_link() -> None:
    exc = sdk_error(
        ThrottlingException,
        400,
        "Throttling.User",
        Message="Request was denied due to user flow control.",
        Recommend=RECOMMEND,
    )
    err = from_call(exc)
    assert err.recommend == RECOMMEND and RECOMMEND in str(err)
    text = str(render(err))
    print(text)
    assert text.splitlines()[0] == (
        "CloudApiError: vpc:DescribeNatGateways failed: Request was denied due to user flow "
        "control."
    )
    assert f"Code: Throttling.User   HTTP status: 400   RequestId: {REQUEST_ID}" in text
    assert "re-running is safe" in text and RECOMMEND in text
    assert text.split("Traceback")[0].count(RECOMMEND) == 1  # in the remedy, not again
    assert f'href="{RECOMMEND.replace("&", "&amp;")}"' in render(err)._repr_html_()


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_server_errors_say_rerun_is_safe(status: int, code: str) -> None:
    err = from_call(sdk_error(ServerException, status, code, Recommend=RECOMMEND))
    assert "re-running is safe" in err.remedy and RECOMMEND in err.remedy
    assert f"HTTP status: {status}" in str(render(err))


def test_throttling_codes_cover_the_retry_policy() -> None:
    # Every code the remedies call throttling is one the retry policy retries.
    assert all(retry.is_retryable_code(code, 400) for code in remedies.THROTTLING_CODES)


def test_cs_errors_have_no_recommend() -> None:
    exc = ClientException(
        status_code=404,
        code="ErrorClusterNotFound",
        message="x",
        data={"code": "ErrorClusterNotFound", "message": "cluster not found", "requestId": "R-1"},
    )
    err = CloudApiError.from_sdk("cs", "DescribeClusterDetail", exc)
    assert err.recommend is None and "Recommend" not in str(err)
    assert err.remedy == CloudApiError.remedy


# ---- verify HTTP 503 --------------------------------------------------------------------------


def _verify_result(status: int | None) -> VerifyResult:
    row = VerifyRow(
        "aliyun-svc-external",
        VIA,
        "http://www.aliyun.com/",
        status,
        "fail",
        f"HTTP {status}: the gateway answered but the route or destination failed",
        seconds=0.01,
        remote="127.16.2.10",
    )
    return VerifyResult(
        [row],
        gateway_vswitches=["vsw-gateway0000000000001", "vsw-gateway0000000000002"],
        snat_entry_name="egress-gateway",
    )


def test_verify_503_points_at_the_snat_entry_of_step_03() -> None:
    with pytest.raises(StepFailed) as info:
        _verify_result(503).raise_for_failures()
    text = str(render(info.value))
    print(text)
    assert text.startswith(
        "StepFailed: 1 check(s) through the gateway failed:\n"
        "    - aliyun-svc-external (http://www.aliyun.com/): HTTP 503"
    )
    assert "SNAT entry of step 03 (03-configure-snat)" in text
    assert "vsw-gateway0000000000001, vsw-gateway0000000000002" in text
    assert "'egress-gateway'" in text and "re-run 06-verify" in text


def _rows(*statuses: int) -> VerifyResult:
    result = _verify_result(statuses[0])
    for i, status in enumerate(statuses[1:], start=1):
        result.rows.append(replace(result.rows[0], destination=f"dest-{i}", status=status))
    return result


def test_all_routes_503_adds_the_externalname_alias_note_after_snat() -> None:
    with pytest.raises(StepFailed) as info:
        _rows(503, 503).raise_for_failures()
    remedy = info.value.remedy
    snat = remedy.index("SNAT entry of step 03 (03-configure-snat)")
    alias = remedy.index("treat an ExternalName Service as an alias")
    assert snat < alias
    assert "DNS-domain service source" in remedy
    assert "https://help.aliyun.com/en/mse/user-guide/create-service" in remedy
    assert "re-run 06-verify" in remedy  # the SNAT remedy is kept whole


def test_some_routes_503_keeps_the_snat_remedy_only() -> None:
    with pytest.raises(StepFailed) as info:
        _rows(503, 404).raise_for_failures()
    remedy = info.value.remedy
    assert "SNAT entry of step 03" in remedy and "ExternalName" not in remedy


def test_503_and_a_passing_route_is_not_the_alias_case() -> None:
    result = _rows(503, 200)
    result.rows[1] = replace(result.rows[1], result="pass")
    with pytest.raises(StepFailed) as info:
        result.raise_for_failures()
    assert "ExternalName" not in info.value.remedy


def test_other_verify_failures_point_at_the_route() -> None:
    with pytest.raises(StepFailed) as info:
        _verify_result(404).raise_for_failures()
    assert "05-ingress-routes" in info.value.remedy and "SNAT" not in info.value.remedy


# ---- a missing kube context -------------------------------------------------------------------


def write_home(home: Path) -> Path:
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(
        """apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "bearer-token-abcdef0123456789"}
contexts:
- name: sandbox
  context: {cluster: sandbox, user: admin}
- name: sandbox-readonly
  context: {cluster: sandbox, user: admin}
current-context: sandbox
""",
        encoding="utf-8",
    )
    info = {
        "aliyun_endpoint": "127.0.0.1:9",
        "kubeconfig": str(kubeconfig),
        "access_key_id": "LTSAexample00000000",
        "access_key_secret": SECRET,
        "region_id": "cn-hangzhou",
        "cluster_id": "c91faf597d38ac44275f9fea2fc1ec992",
        "pid": os.getpid(),
    }
    (home / "sandbox.json").write_text(json.dumps(info), encoding="utf-8")
    return kubeconfig


def test_missing_kube_context_lists_the_contexts_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = write_home(tmp_path)
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path))
    params = load_parameters(ROOT / "parameters" / "sandbox.yaml", {"kube_context": "prod"})
    with pytest.raises(TargetUnavailable) as info:
        connect(params)
    err = info.value
    assert str(err) == (
        f"kube_context 'prod' is not a context of {kubeconfig}; it has: sandbox, "
        "sandbox-readonly (current: sandbox)"
    )
    text = str(render(err))
    print(text)
    assert "Set kube_context to one of the contexts" in text
    assert f"`kubectl config get-contexts --kubeconfig {kubeconfig}`" in text
    assert "Invalid kube-config" not in text.split("Traceback")[0]
    assert "bearer-token" not in text and SECRET not in text


# ---- Forbidden.RAM ----------------------------------------------------------------------------


def test_forbidden_ram_names_the_ram_action_and_the_system_policy() -> None:
    detail = {
        "AuthAction": "vpc:CreateSnatEntry",
        "AuthPrincipalDisplayName": "ops-runner",
        "AuthPrincipalType": "SubUser",
        "NoPermissionType": "ImplicitDeny",
        "EncodedDiagnosticMessage": "eyJBdXRoQWN0aW9uIjoidnBjOkNyZWF0ZVNuYXRFbnRyeSJ9",
    }
    exc = sdk_error(
        ClientException,
        403,
        "Forbidden.RAM",
        Message="User not authorized to operate on the specified resource.",
        AccessDeniedDetail=detail,
    )
    err = from_call(exc, "vpc", "CreateSnatEntry")
    assert (err.auth_action, err.principal) == ("vpc:CreateSnatEntry", "ops-runner")
    text = str(render(err))
    print(text)
    assert "RAM action: vpc:CreateSnatEntry" in text
    assert "The RAM action vpc:CreateSnatEntry was denied to RAM identity ops-runner" in text
    assert "attach the system policy AliyunVPCFullAccess to it" in text
    assert "EncodedDiagnosticMessage" not in text.split("Traceback")[0]


@pytest.mark.parametrize(
    ("product", "action", "ram", "policy"),
    [
        ("cs", "DescribeClusterAddonsVersion", "cs:Queryk8sComponentsUpdateVersion", "AliyunCS"),
        ("cs", "InstallClusterAddons", "cs:InstallClusterAddons", "AliyunCSFullAccess"),
        ("slb", "DescribeLoadBalancers", "slb:DescribeLoadBalancers", "AliyunSLBReadOnlyAccess"),
        ("vpc", "DescribeNatGateways", "vpc:DescribeNatGateways", "AliyunVPCReadOnlyAccess"),
    ],
)
def test_permission_codes_without_detail_map_the_api_action(
    product: str, action: str, ram: str, policy: str
) -> None:
    exc = sdk_error(ClientException, 403, "NoPermission", Message="no permission")
    err = CloudApiError.from_sdk(product, action, exc)
    assert f"The RAM action {ram} was denied" in err.remedy
    assert f"system policy {policy}" in err.remedy


def test_ram_action_and_policy_catalogue() -> None:
    assert remedies.ram_action("vpc", "CreateSnatEntry") == "vpc:CreateSnatEntry"
    assert remedies.system_policy("vpc:CreateSnatEntry") == "AliyunVPCFullAccess"
    assert remedies.system_policy("vpc:DescribeVpcs") == (
        "AliyunVPCReadOnlyAccess (or AliyunVPCFullAccess)"
    )
    assert remedies.system_policy("ecs:DescribeInstances") == ""


# ---- an expired or wrong AccessKey ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("InvalidAccessKeyId.NotFound", "the AccessKey ID is not known"),
        ("SignatureDoesNotMatch", "the AccessKey secret does not match its ID"),
        ("InvalidSecurityToken.Expired", "the STS token is expired"),
    ],
)
def test_bad_access_key_names_the_credential_source_never_the_secret(code: str, why: str) -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tExampleKeyId0042",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": "CAISsts-token-0123456789",
    }
    source = default_chain_source(env, Path("/nonexistent"))
    exc = sdk_error(ClientException, 400, code, Message="Specified access key is not found.")

    class Sdk:  # an SDK client stands in: cloud.call finds its source through the method
        def describe_vpcs(self, *_: Any) -> Any:
            raise exc

    client = Sdk()
    register_client(client, source)
    with pytest.raises(CloudApiError) as info:
        call("vpc", "DescribeVpcs", client.describe_vpcs)
    box = render(info.value)
    text = str(box)
    print(text)
    assert f"Alibaba Cloud refused the credentials: {why}" in text
    assert (
        "They came from the environment variables ALIBABA_CLOUD_ACCESS_KEY_ID (LTAI****0042), "
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET and ALIBABA_CLOUD_SECURITY_TOKEN."
    ) in text
    for secret in (SECRET, "CAISsts-token", "LTAI5tExampleKeyId0042"):
        assert secret not in text and secret not in box._repr_html_()


def test_no_credentials_at_all_names_the_chain() -> None:
    from darabonba.exceptions import UnretryableException
    from darabonba.policy.retry import RetryPolicyContext

    inner = RuntimeError("CredentialException: unable to load credentials from any provider")
    exc = UnretryableException(RetryPolicyContext(retries_attempted=0, exception=inner))
    err = CloudApiError.from_sdk("vpc", "DescribeVpcs", exc, credential_source="the chain X")
    assert "No credentials could be loaded for the OpenAPI call (from the chain X)" in err.remedy


def test_credential_sources_of_the_default_chain(tmp_path: Path) -> None:
    cli = tmp_path / ".aliyun" / "config.json"
    cli.parent.mkdir()
    profiles = [
        {"name": "default", "mode": "AK", "access_key_secret": SECRET},
        {"name": "prod", "mode": "RamRoleArn", "access_key_secret": SECRET},
    ]
    cli.write_text(json.dumps({"current": "default", "profiles": profiles}), encoding="utf-8")
    chosen = default_chain_source({"ALIBABA_CLOUD_PROFILE": "prod"}, tmp_path)
    assert chosen == f"the Alibaba Cloud CLI profile 'prod' (mode RamRoleArn) in {cli}"
    assert SECRET not in chosen
    rrsa = {
        "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/egress",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/ack",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/token",
    }
    assert default_chain_source(rrsa, tmp_path).startswith("RRSA (OIDC): role acs:ram::1:role/")
    nothing = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    assert "found nothing" in default_chain_source(nothing, tmp_path / "empty")
    assert "ECS instance RAM role" in default_chain_source({}, tmp_path / "empty")


def test_connect_records_the_sandbox_credential_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_home(tmp_path)
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path))
    session = connect(load_parameters(ROOT / "parameters" / "sandbox.yaml"))
    try:
        assert session.credential_source == (
            f"the sandbox's AccessKey LTSA****0000 from {tmp_path / 'sandbox.json'}"
        )
    finally:
        session.close()
