"""SDK and Kubernetes client exceptions become egress_lib errors with the useful fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from kubernetes.client.exceptions import ApiException

from egress_lib.cloud import call
from egress_lib.errors import (
    CloudApiError,
    CloudConnectionError,
    KubernetesApiError,
    ParameterError,
    Problem,
    WaitTimeout,
)

BODY = {
    "RequestId": "5C6B2A8E-1111",
    "HostId": "vpc.aliyuncs.com",
    "Code": "InvalidSnatTableId.NotFound",
    "Message": "The specified SnatTableId does not exist.",
}


def raiser(exc: BaseException) -> Any:
    def fn(*_: Any) -> Any:
        raise exc

    return fn


def test_client_exception_becomes_cloud_api_error() -> None:
    exc = ClientException(
        status_code=404,
        code=BODY["Code"],
        message=f"code: 404, {BODY['Message']} request id: {BODY['RequestId']}",
        request_id=BODY["RequestId"],
        data=dict(BODY),
    )
    with pytest.raises(CloudApiError) as info:
        call("vpc", "DescribeSnatTableEntries", raiser(exc), object())
    err = info.value
    assert (err.product, err.action, err.code) == ("vpc", "DescribeSnatTableEntries", BODY["Code"])
    assert err.status_code == 404 and err.request_id == "5C6B2A8E-1111"
    assert err.message == BODY["Message"]
    assert err.__cause__ is exc
    assert not isinstance(err, CloudConnectionError)
    assert "vpc:DescribeSnatTableEntries failed, HTTP 404" in str(err)


def test_server_and_throttling_exceptions() -> None:
    server = ServerException(status_code=500, code="InternalError", message="boom", data={})
    err = CloudApiError.from_sdk("slb", "DescribeLoadBalancers", server)
    assert err.status_code == 500 and err.code == "InternalError"
    throttled = ThrottlingException(
        status_code=400, code="Throttling.User", message="slow down", retry_after=2000, data={}
    )
    assert CloudApiError.from_sdk("cs", "X", throttled).code == "Throttling.User"


def test_cs_lower_case_error_body() -> None:
    exc = ClientException(
        status_code=404,
        code="ErrorClusterNotFound",
        message="cluster not found",
        data={"code": "ErrorClusterNotFound", "message": "cluster not found", "requestId": "R-1"},
    )
    err = CloudApiError.from_sdk("cs", "DescribeClusterDetail", exc)
    assert err.request_id == "R-1" and err.message == "cluster not found"


def test_transport_failure_is_connection_error() -> None:
    ctx = RetryPolicyContext(
        retries_attempted=1, exception=ConnectionRefusedError("Connection refused")
    )
    exc = UnretryableException(ctx)
    with pytest.raises(CloudConnectionError, match="Connection refused"):
        call("vpc", "DescribeVpcs", raiser(exc))


def test_kubernetes_status_body_is_parsed() -> None:
    status = {
        "kind": "Status",
        "status": "Failure",
        "message": 'ingresses.networking.k8s.io "x" is forbidden',
        "reason": "Forbidden",
        "details": {"name": "x", "kind": "ingresses"},
        "code": 403,
    }
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps(status)
    err = KubernetesApiError.from_api_exception(exc, operation="create")
    assert (err.status, err.reason, err.kind, err.name) == (403, "Forbidden", "ingresses", "x")
    assert "create ingresses/x failed: HTTP 403 Forbidden" in str(err)


def test_wait_timeout_message() -> None:
    err = WaitTimeout("MseIngressConfig/egress-gateway", 900, "phase=Pending", "gateway listening")
    assert "900s" in str(err) and "phase=Pending" in str(err) and "gateway listening" in str(err)


def test_parameter_error_carries_first_problem() -> None:
    err = ParameterError([Problem("a.b", 1, "two"), Problem("c", 2, "three")])
    assert (err.path, err.value, err.expected) == ("a.b", 1, "two")
    assert "2 invalid parameters" in str(err)
