"""The optional ``endpoints:`` parameters block: OpenAPI host names for target aliyun.

The SDKs pick each product's public endpoint from their own endpoint map. A runbook that runs
inside a VPC without internet access has to name the VPC endpoints instead, e.g.
``vpc-vpc.cn-hangzhou.aliyuncs.com`` (each product's API reference has an "Endpoints" page,
e.g. https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-endpoint ).
The sandbox serves every API on its own loopback endpoint, so there the block must stay empty.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from egress_lib.validators import DNS1123_SUBDOMAIN, fail

OpenApiService = Literal["vpc", "slb", "cs", "mse", "ram"]
SERVICES: tuple[OpenApiService, ...] = ("vpc", "slb", "cs", "mse", "ram")

_HOST_FORM = "a host name such as 'vpc-vpc.cn-hangzhou.aliyuncs.com', without scheme, port or path"


def _endpoint_host(value: str) -> str:
    # The SDK builds "https://" + endpoint + path: a scheme, port or path here would end up
    # inside the URL (and the signed Host), so only a bare DNS name is accepted.
    if "://" in value or "/" in value or ":" in value:
        raise fail(f"{value!r} is not a bare host name", _HOST_FORM)
    if len(value) > 253 or "." not in value or not DNS1123_SUBDOMAIN.match(value):
        raise fail(f"{value!r} is not a host name", _HOST_FORM)
    return value


EndpointHost = Annotated[StrictStr, AfterValidator(_endpoint_host)]


class Endpoints(BaseModel):
    """OpenAPI endpoints for target aliyun; null: the SDK's default (public) endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vpc: EndpointHost | None = Field(
        default=None,
        description="VPC API host, e.g. vpc-vpc.cn-hangzhou.aliyuncs.com; null: the SDK's default "
        "endpoint",
    )
    slb: EndpointHost | None = Field(
        default=None, description="SLB (CLB) API host; null: the SDK's default endpoint"
    )
    cs: EndpointHost | None = Field(
        default=None, description="ACK (CS) API host; null: the SDK's default endpoint"
    )
    mse: EndpointHost | None = Field(
        default=None, description="MSE API host; null: the SDK's default endpoint"
    )
    ram: EndpointHost | None = Field(
        default=None, description="RAM API host; null: the SDK's default endpoint"
    )

    def overrides(self) -> dict[OpenApiService, str]:
        """The endpoints that are set, by service."""
        return {s: host for s in SERVICES if (host := getattr(self, s)) is not None}
