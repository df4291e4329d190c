"""The ``endpoints:`` block: its validation and the endpoint each SDK client is built with."""

from __future__ import annotations

from typing import Any

import pytest

from egress_lib.clients import openapi_clients
from egress_lib.endpoints import SERVICES
from egress_lib.errors import ParameterError
from egress_lib.parameters import Parameters, load_parameters

CLUSTER_ID = "c0123456789abcdef0123456789abcdef"
VPC_ENDPOINTS = {
    "vpc": "vpc-vpc.cn-hangzhou.aliyuncs.com",
    "slb": "slb-vpc.cn-hangzhou.aliyuncs.com",
    "cs": "cs-vpc.cn-hangzhou.aliyuncs.com",
    "mse": "mse-vpc.cn-hangzhou.aliyuncs.com",
    "ram": "ram.vpc-proxy.aliyuncs.com",
}
# What connect() shares between the clients, minus the credential chain (which would look
# for real credentials): an AccessKey is enough to build a client, and no call is made.
COMMON = {
    "region_id": "cn-hangzhou",
    "access_key_id": "LTAI5tExample0000",
    "access_key_secret": "example-secret",
}


def aliyun(**kw: Any) -> dict[str, Any]:
    return {
        "cluster_name": "c1",
        "target": "aliyun",
        "region_id": "cn-hangzhou",
        "cluster_id": CLUSTER_ID,
        "gateway": {"vswitches": ["vsw-bp1exampleexample0001"]},
        "destinations": [{"name": "a", "host": "a.example.com", "port": 80}],
        **kw,
    }


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ParameterError) as info:
        load_parameters(data)
    return {p.path: str(p) for p in info.value.problems}


def test_endpoints_default_to_none() -> None:
    p = load_parameters(aliyun())
    assert p.endpoints.overrides() == {}
    assert p.to_injectable()["endpoints"] == dict.fromkeys(SERVICES)


def test_vpc_endpoints_are_accepted_for_aliyun() -> None:
    p = load_parameters(aliyun(endpoints=VPC_ENDPOINTS))
    assert p.endpoints.overrides() == VPC_ENDPOINTS


def test_one_endpoint_by_override() -> None:
    p = load_parameters(aliyun(), overrides={"endpoints.vpc": "vpc-vpc.cn-hangzhou.aliyuncs.com"})
    assert p.endpoints.overrides() == {"vpc": "vpc-vpc.cn-hangzhou.aliyuncs.com"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("https://vpc-vpc.cn-hangzhou.aliyuncs.com", "is not a bare host name"),
        ("vpc-vpc.cn-hangzhou.aliyuncs.com:443", "is not a bare host name"),
        ("vpc-vpc.cn-hangzhou.aliyuncs.com/", "is not a bare host name"),
        ("VPC.aliyuncs.com", "is not a host name"),
        ("localhost", "is not a host name"),
        ("vpc_vpc.aliyuncs.com", "is not a host name"),
    ],
)
def test_bad_endpoint_names_the_key_value_and_form(value: str, fragment: str) -> None:
    text = problems(aliyun(endpoints={"vpc": value}))["endpoints.vpc"]
    assert repr(value) in text and fragment in text
    assert "expected a host name such as 'vpc-vpc.cn-hangzhou.aliyuncs.com'" in text


def test_unknown_endpoint_key() -> None:
    text = problems(aliyun(endpoints={"ecs": "ecs.aliyuncs.com"}))["endpoints.ecs"]
    assert "unknown key 'ecs'" in text and "cs, mse, ram, slb, vpc" in text


def test_endpoint_wrong_type() -> None:
    assert "endpoints.cs" in problems(aliyun(endpoints={"cs": 443}))


def test_endpoints_are_refused_for_the_sandbox() -> None:
    data = aliyun(target="sandbox", endpoints={"mse": "mse-vpc.cn-hangzhou.aliyuncs.com"})
    found = problems(data)
    assert list(found) == ["endpoints.mse"]
    assert (
        "'mse-vpc.cn-hangzhou.aliyuncs.com' is set while target is 'sandbox'"
        in found["endpoints.mse"]
    )
    assert "the sandbox decides its endpoint" in found["endpoints.mse"]


def test_null_endpoints_are_fine_for_the_sandbox() -> None:
    assert load_parameters(aliyun(target="sandbox", endpoints=dict.fromkeys(SERVICES)))


def endpoints_of(clients: dict[str, Any]) -> dict[str, str]:
    return {name: client._endpoint for name, client in clients.items()}


def test_each_client_gets_its_override() -> None:
    p = load_parameters(aliyun(endpoints=VPC_ENDPOINTS))
    assert endpoints_of(openapi_clients(p, COMMON)) == VPC_ENDPOINTS


def test_clients_without_override_keep_the_sdk_default() -> None:
    default = endpoints_of(openapi_clients(load_parameters(aliyun()), COMMON))
    assert all(host.endswith(".aliyuncs.com") for host in default.values()), default
    assert default["vpc"] != VPC_ENDPOINTS["vpc"]
    one = load_parameters(aliyun(endpoints={"vpc": VPC_ENDPOINTS["vpc"]}))
    assert endpoints_of(openapi_clients(one, COMMON)) == {**default, "vpc": VPC_ENDPOINTS["vpc"]}


def test_sandbox_clients_ignore_endpoints_even_when_unvalidated() -> None:
    # model_validate skips the cross-checks: the client builder refuses on its own to send the
    # sandbox's AccessKey anywhere but the sandbox's endpoint.
    p = Parameters.model_validate(aliyun(target="sandbox", endpoints=VPC_ENDPOINTS))
    sandbox = {**COMMON, "endpoint": "127.0.0.36:18080", "protocol": "http"}
    assert set(endpoints_of(openapi_clients(p, sandbox)).values()) == {"127.0.0.36:18080"}
