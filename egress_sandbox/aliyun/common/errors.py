"""Alibaba Cloud OpenAPI errors: a catalogue of codes, rendered the way the real service does.

Two renderings exist (the SDK's error handling in alibabacloud_tea_openapi, and the common error
codes at https://api.aliyun.com/document/Vpc/2016-04-28/errorCode):

* POP gateway / RPC products (VPC, SLB) and gateway-level errors on every product
  (authentication, signature, unknown action, throttling): PascalCase
  ``{RequestId, HostId, Code, Message, Recommend}`` (+ ``AccessDeniedDetail`` for RAM denials).
* CS (ACK) business errors: lower-case ``{code, message, requestId}`` [UNCONFIRMED casing and
  status; the SDK reads either casing, so SDK users see the same attributes].

``CATALOGUE`` is the single table of every code the emulator itself raises, with its HTTP status,
default message and whether the reference confirms the status; docs/aliyun-emulation.md lists
the same rows (a test keeps the two in step). Injected faults may carry any other code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

Source = Literal["DOC", "UNCONFIRMED"]


class ErrorSpec(NamedTuple):
    status: int
    message: str
    source: Source  # DOC: the reference documents code and status; else our choice
    scope: str  # where it can come from: gateway | vpc | slb | cs | rpc


# One row per code. Messages are the real service's wording where the reference quotes it.
CATALOGUE: dict[str, ErrorSpec] = {
    # --- gateway: authentication and signature ---------------------------------------------
    "InvalidAccessKeyId.NotFound": ErrorSpec(
        404, "Specified access key is not found.", "DOC", "gateway"
    ),
    "SignatureDoesNotMatch": ErrorSpec(
        400, "Specified signature is not matched with our calculation.", "UNCONFIRMED", "gateway"
    ),
    "IncompleteSignature": ErrorSpec(
        400, "The request signature does not conform to Aliyun standards.", "UNCONFIRMED", "gateway"
    ),
    "SignatureNonceUsed": ErrorSpec(
        400, "Specified signature nonce was used already.", "DOC", "gateway"
    ),
    "InvalidTimeStamp.Expired": ErrorSpec(
        400, "Specified time stamp or date value is expired.", "DOC", "gateway"
    ),
    "InvalidTimeStamp.Format": ErrorSpec(
        400, "Specified time stamp or date value is not well formatted.", "DOC", "gateway"
    ),
    "InvalidSecurityToken.Expired": ErrorSpec(
        400, "Specified SecurityToken is expired.", "UNCONFIRMED", "gateway"
    ),
    "InvalidSecurityToken.MisMatch": ErrorSpec(
        400, "Specified SecurityToken mismatch with the AccessKey.", "UNCONFIRMED", "gateway"
    ),
    "InvalidSecurityToken.Malformed": ErrorSpec(
        400, "Specified SecurityToken is malformed.", "UNCONFIRMED", "gateway"
    ),
    "InvalidBearerToken.NotFound": ErrorSpec(
        401, "Specified bearer token is not found or expired.", "UNCONFIRMED", "gateway"
    ),
    "Forbidden.RAM": ErrorSpec(
        403,
        "User not authorized to operate on the specified resource, "
        "or this API doesn't support RAM.",
        "UNCONFIRMED",
        "gateway",
    ),
    # --- gateway: routing, flow control, failures ------------------------------------------
    "InvalidAction.NotFound": ErrorSpec(
        404,
        "Specified api is not found, please check your url and method.",
        "UNCONFIRMED",
        "gateway",
    ),
    "InvalidVersion": ErrorSpec(
        400, "Specified parameter Version is not valid.", "UNCONFIRMED", "gateway"
    ),
    "Throttling.User": ErrorSpec(
        400, "Request was denied due to user flow control.", "UNCONFIRMED", "gateway"
    ),
    "InternalError": ErrorSpec(
        500, "The request processing has failed due to some unknown error.", "DOC", "gateway"
    ),
    # --- gateway: the HTTP layer (limits checked before authentication) --------------------
    "RequestEntityTooLarge": ErrorSpec(
        413, "The request body is too large.", "UNCONFIRMED", "gateway"
    ),
    "BadRequest": ErrorSpec(400, "The request could not be read.", "UNCONFIRMED", "gateway"),
    # --- common parameter errors (RPC products; CS uses InvalidParameter too) ---------------
    "InvalidParameter": ErrorSpec(
        400, "The specified parameter is not valid.", "UNCONFIRMED", "rpc+cs"
    ),
    "DryRunOperation": ErrorSpec(
        400, "Request validation has been passed with DryRun flag set.", "UNCONFIRMED", "rpc"
    ),
    "InvalidRegionId.NotFound": ErrorSpec(
        404, "The specified RegionId does not exist in our records.", "DOC", "rpc"
    ),
    "IdempotentParameterMismatch": ErrorSpec(
        400,
        "The request uses the same client token as a previous, but non-identical request.",
        "UNCONFIRMED",
        "vpc",
    ),
    # --- VPC / NAT ------------------------------------------------------------------------
    "InvalidVSwitchId.NotFound": ErrorSpec(
        404, "The specified vSwitch does not exist.", "DOC", "vpc"
    ),
    "InvalidNatGatewayId.NotFound": ErrorSpec(
        404, "The specified NAT gateway does not exist.", "UNCONFIRMED", "vpc"
    ),
    "InvalidSnatTableId.NotFound": ErrorSpec(
        404, "The specified SnatTableId does not exist.", "DOC", "vpc"
    ),
    "InvalidSnatEntryId.NotFound": ErrorSpec(
        404, "The specified SnatEntryId does not exist.", "DOC", "vpc"
    ),
    "InvalidSnatIp.NotFound": ErrorSpec(
        404, "The specified SnatIp is not bound to the NAT gateway.", "DOC", "vpc"
    ),
    "InvalidSnatIp.Malformed": ErrorSpec(400, "The specified SnatIp is malformed.", "DOC", "vpc"),
    "Forbidden.SourceVSwitchId.Duplicated": ErrorSpec(
        400, "The specified SourceCIDR is duplicated.", "DOC", "vpc"
    ),
    "OperationUnsupported.CidrConflict": ErrorSpec(
        400,
        "The specified CIDR block conflicts with the CIDR block of an existing SNAT entry.",
        "DOC",
        "vpc",
    ),
    # sic: the real code is misspelt.
    "IncorretSnatEntryStatus": ErrorSpec(
        400, "The status of the SNAT entry is incorrect.", "DOC", "vpc"
    ),
    "IncorrectStatus.NATGW": ErrorSpec(
        400, "The status of the NAT gateway is incorrect.", "UNCONFIRMED", "vpc"
    ),
    "InvalidParameter.Name.Malformed": ErrorSpec(
        400, "The specified SnatEntryName is malformed.", "DOC", "vpc"
    ),
    "INVALID_PARAMETER": ErrorSpec(400, "The specified parameter is not valid.", "DOC", "vpc"),
    # --- SLB ------------------------------------------------------------------------------
    "InvalidLoadBalancerId.NotFound": ErrorSpec(
        404, "The specified LoadBalancerId does not exist.", "UNCONFIRMED", "slb"
    ),
    # --- CS (rendered lower-case) ---------------------------------------------------------
    "ErrorClusterNotFound": ErrorSpec(
        404, "The specified cluster does not exist.", "UNCONFIRMED", "cs"
    ),
    "ErrorTaskNotFound": ErrorSpec(404, "The specified task does not exist.", "UNCONFIRMED", "cs"),
    "AddonNotFound": ErrorSpec(
        404, "The specified addon is not installed in the cluster.", "UNCONFIRMED", "cs"
    ),
    "AddonNotSupported": ErrorSpec(
        400, "The specified addon is not supported.", "UNCONFIRMED", "cs"
    ),
    "AddonVersionNotSupported": ErrorSpec(
        400, "The specified addon version is not supported.", "UNCONFIRMED", "cs"
    ),
    "AddonAlreadyInstalled": ErrorSpec(
        400, "The specified addon is already installed in the cluster.", "UNCONFIRMED", "cs"
    ),
    "AddonStateConflict": ErrorSpec(
        400, "The addon is being installed or uninstalled; retry later.", "UNCONFIRMED", "cs"
    ),
}

# ``Missing<Param>`` is a family, not one code: documented as a pattern [DOC], status 400.
MISSING_PARAMETER_STATUS = 400


class ApiError(Exception):
    """An error answer of the emulated OpenAPI; subclasses fix ``code``, ``status``, message."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = CATALOGUE["InternalError"].status
    default_message: ClassVar[str] = CATALOGUE["InternalError"].message

    def __init__(
        self,
        message: str | None = None,
        *,
        access_denied_detail: dict[str, str] | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.access_denied_detail = access_denied_detail
        self.retry_after_ms = retry_after_ms
        super().__init__(f"{self.error_code}: {self.message}")

    # The code/status of an instance; overridden where they are chosen at run time.
    @property
    def error_code(self) -> str:
        return self.code

    @property
    def http_status(self) -> int:
        return self.status

    def headers(self) -> dict[str, str]:
        # The SDK turns any error carrying a positive x-acs-retry-after into ThrottlingException.
        if self.retry_after_ms is not None and self.retry_after_ms > 0:
            return {"x-acs-retry-after": str(self.retry_after_ms)}
        return {}

    def render_pop(self, request_id: str, host_id: str, product: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.error_code,
            "Message": self.message,
            "Recommend": (
                f"https://api.aliyun.com/troubleshoot?q={self.error_code}"
                f"&product={product}&requestId={request_id}"
            ),
        }
        if self.access_denied_detail is not None:
            body["AccessDeniedDetail"] = self.access_denied_detail
        return body

    def render_cs(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.error_code,
            "message": self.message,
            "requestId": request_id,
        }
        if self.access_denied_detail is not None:
            body["accessDeniedDetail"] = self.access_denied_detail
        return body


class DynamicError(ApiError):
    """An error whose code and status are chosen at run time (fault injection)."""

    def __init__(
        self, code: str, status: int, message: str, *, retry_after_ms: int | None = None
    ) -> None:
        self._code = code
        self._status = status
        super().__init__(message, retry_after_ms=retry_after_ms)

    @property
    def error_code(self) -> str:
        return self._code

    @property
    def http_status(self) -> int:
        return self._status


class MissingParameter(ApiError):
    """``Missing<Param>``, e.g. ``MissingRegionId`` / "RegionId is mandatory for this action."."""

    status = MISSING_PARAMETER_STATUS

    def __init__(self, param: str) -> None:
        self.param = param
        super().__init__(f"{param} is mandatory for this action.")

    @property
    def error_code(self) -> str:
        return f"Missing{self.param}"


def _error(code: str) -> type[ApiError]:
    """The class raised for one catalogue ``code`` (named so tracebacks read like the code)."""
    spec = CATALOGUE[code]
    return type(
        code.replace(".", "_"),
        (ApiError,),
        {
            "code": code,
            "status": spec.status,
            "default_message": spec.message,
            "__module__": __name__,
        },
    )


# Names the product code raises; every one is a row of CATALOGUE.
InvalidAccessKeyIdNotFound = _error("InvalidAccessKeyId.NotFound")
SignatureDoesNotMatch = _error("SignatureDoesNotMatch")
IncompleteSignature = _error("IncompleteSignature")
SignatureNonceUsed = _error("SignatureNonceUsed")
InvalidTimeStampExpired = _error("InvalidTimeStamp.Expired")
InvalidTimeStampFormat = _error("InvalidTimeStamp.Format")
InvalidSecurityTokenExpired = _error("InvalidSecurityToken.Expired")
InvalidSecurityTokenMismatch = _error("InvalidSecurityToken.MisMatch")
InvalidSecurityTokenMalformed = _error("InvalidSecurityToken.Malformed")
InvalidBearerTokenNotFound = _error("InvalidBearerToken.NotFound")
ForbiddenRam = _error("Forbidden.RAM")
InvalidActionNotFound = _error("InvalidAction.NotFound")
InvalidVersion = _error("InvalidVersion")
Throttling = _error("Throttling.User")
RequestEntityTooLarge = _error("RequestEntityTooLarge")
BadRequest = _error("BadRequest")
InvalidParameter = _error("InvalidParameter")
DryRunOperation = _error("DryRunOperation")
InvalidRegionIdNotFound = _error("InvalidRegionId.NotFound")
IdempotentParameterMismatch = _error("IdempotentParameterMismatch")
InvalidVSwitchIdNotFound = _error("InvalidVSwitchId.NotFound")
InvalidNatGatewayIdNotFound = _error("InvalidNatGatewayId.NotFound")
InvalidSnatTableIdNotFound = _error("InvalidSnatTableId.NotFound")
InvalidSnatEntryIdNotFound = _error("InvalidSnatEntryId.NotFound")
InvalidSnatIpNotFound = _error("InvalidSnatIp.NotFound")
InvalidSnatIpMalformed = _error("InvalidSnatIp.Malformed")
SourceVSwitchIdDuplicated = _error("Forbidden.SourceVSwitchId.Duplicated")
CidrConflict = _error("OperationUnsupported.CidrConflict")
SnatEntryStatusIncorrect = _error("IncorretSnatEntryStatus")
NatGatewayStatusIncorrect = _error("IncorrectStatus.NATGW")
InvalidNameMalformed = _error("InvalidParameter.Name.Malformed")
InvalidSnatParameter = _error("INVALID_PARAMETER")
InvalidLoadBalancerIdNotFound = _error("InvalidLoadBalancerId.NotFound")
ErrorClusterNotFound = _error("ErrorClusterNotFound")
ErrorTaskNotFound = _error("ErrorTaskNotFound")
AddonNotFound = _error("AddonNotFound")
AddonNotSupported = _error("AddonNotSupported")
AddonVersionNotSupported = _error("AddonVersionNotSupported")
AddonAlreadyInstalled = _error("AddonAlreadyInstalled")
AddonStateConflict = _error("AddonStateConflict")
