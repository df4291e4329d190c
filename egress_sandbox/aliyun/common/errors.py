"""Alibaba Cloud OpenAPI errors: one class per error code, rendered the way the real service does.

Two renderings exist (reference §D6, §E):

* POP gateway / RPC products (VPC, SLB) and gateway-level errors on every product
  (authentication, signature, unknown action, throttling): PascalCase
  ``{RequestId, HostId, Code, Message, Recommend}`` (+ ``AccessDeniedDetail`` for RAM denials).
* CS (ACK) business errors: lower-case ``{code, message, requestId}`` [UNCONFIRMED casing and
  status; the SDK reads either casing, so SDK users see the same attributes].

Choices for behaviour the reference marks [UNCONFIRMED] (status codes we picked):
SignatureDoesNotMatch 400, IncompleteSignature 400, InvalidAction.NotFound 404,
InvalidVersion 400, Forbidden.RAM 403, DryRunOperation 400, MissingParameter/InvalidParameter 400,
IdempotentParameterMismatch 400, InvalidSecurityToken.* 400, InvalidNatGatewayId.NotFound 404.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """An error answer of the emulated OpenAPI; subclasses fix ``code``, ``status``, message."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "The request processing has failed due to some unknown error."

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
        super().__init__(f"{self.code}: {self.message}")

    # The code/status of an instance; overridden by DynamicError (faults carry arbitrary codes).
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


def _error(code: str, status: int, message: str) -> type[ApiError]:
    """Declare one error class: ``code``, HTTP ``status`` and the real service's default message."""
    return type(
        code.replace(".", "_"),
        (ApiError,),
        {"code": code, "status": status, "default_message": message, "__module__": __name__},
    )


# --- gateway: authentication and signature ------------------------------------------------
InvalidAccessKeyIdNotFound = _error(
    "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."
)
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch", 400, "Specified signature is not matched with our calculation."
)
IncompleteSignature = _error(
    "IncompleteSignature", 400, "The request signature does not conform to Aliyun standards."
)
SignatureNonceUsed = _error(
    "SignatureNonceUsed", 400, "Specified signature nonce was used already."
)
InvalidTimeStampExpired = _error(
    "InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired."
)
InvalidTimeStampFormat = _error(
    "InvalidTimeStamp.Format", 400, "Specified time stamp or date value is not well formatted."
)
InvalidSecurityTokenExpired = _error(
    "InvalidSecurityToken.Expired", 400, "Specified SecurityToken is expired."
)
InvalidSecurityTokenMismatch = _error(
    "InvalidSecurityToken.MisMatch", 400, "Specified SecurityToken mismatch with the AccessKey."
)
InvalidSecurityTokenMalformed = _error(
    "InvalidSecurityToken.Malformed", 400, "Specified SecurityToken is malformed."
)
InvalidBearerTokenNotFound = _error(
    "InvalidBearerToken.NotFound", 401, "Specified bearer token is not found or expired."
)
ForbiddenRam = _error(
    "Forbidden.RAM",
    403,
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
)

# --- gateway: routing -----------------------------------------------------------------------
InvalidActionNotFound = _error(
    "InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method."
)
InvalidVersion = _error("InvalidVersion", 400, "Specified parameter Version is not valid.")
Throttling = _error("Throttling.User", 400, "Request was denied due to user flow control.")

# --- common parameter errors ------------------------------------------------------------------
InvalidParameter = _error("InvalidParameter", 400, "The specified parameter is not valid.")
DryRunOperation = _error(
    "DryRunOperation", 400, "Request validation has been passed with DryRun flag set."
)
InvalidRegionIdNotFound = _error(
    "InvalidRegionId.NotFound", 404, "The specified RegionId does not exist in our records."
)
IdempotentParameterMismatch = _error(
    "IdempotentParameterMismatch",
    400,
    "The request uses the same client token as a previous, but non-identical request.",
)


class MissingParameter(ApiError):
    """``Missing<Param>``, e.g. ``MissingRegionId`` / "RegionId is mandatory for this action."."""

    status = 400

    def __init__(self, param: str) -> None:
        self.param = param
        super().__init__(f"{param} is mandatory for this action.")

    @property
    def error_code(self) -> str:
        return f"Missing{self.param}"


# --- VPC / NAT ------------------------------------------------------------------------------
InvalidVpcIdNotFound = _error("InvalidVpcId.NotFound", 404, "The specified VPC does not exist.")
InvalidVSwitchIdNotFound = _error(
    "InvalidVSwitchId.NotFound", 404, "The specified vSwitch does not exist."
)
InvalidNatGatewayIdNotFound = _error(
    "InvalidNatGatewayId.NotFound", 404, "The specified NAT gateway does not exist."
)
InvalidSnatTableIdNotFound = _error(
    "InvalidSnatTableId.NotFound", 404, "The specified SnatTableId does not exist."
)
InvalidSnatEntryIdNotFound = _error(
    "InvalidSnatEntryId.NotFound", 404, "The specified SnatEntryId does not exist."
)
InvalidSnatIpNotFound = _error(
    "InvalidSnatIp.NotFound", 404, "The specified SnatIp is not bound to the NAT gateway."
)
InvalidSnatIpMalformed = _error(
    "InvalidSnatIp.Malformed", 400, "The specified SnatIp is malformed."
)
SourceVSwitchIdDuplicated = _error(
    "Forbidden.SourceVSwitchId.Duplicated", 400, "The specified SourceCIDR is duplicated."
)
CidrConflict = _error(
    "OperationUnsupported.CidrConflict",
    400,
    "The specified CIDR block conflicts with the CIDR block of an existing SNAT entry.",
)
SnatEntryStatusIncorrect = _error(  # sic: the real code is misspelt
    "IncorretSnatEntryStatus", 400, "The status of the SNAT entry is incorrect."
)
NatGatewayStatusIncorrect = _error(
    "IncorrectStatus.NATGW", 400, "The status of the NAT gateway is incorrect."
)
InvalidNameMalformed = _error(
    "InvalidParameter.Name.Malformed", 400, "The specified SnatEntryName is malformed."
)
InvalidSnatParameter = _error("INVALID_PARAMETER", 400, "The specified parameter is not valid.")

# --- SLB --------------------------------------------------------------------------------------
InvalidLoadBalancerIdNotFound = _error(
    "InvalidLoadBalancerId.NotFound", 404, "The specified LoadBalancerId does not exist."
)

# --- CS (rendered lower-case) ---------------------------------------------------------------
ErrorClusterNotFound = _error("ErrorClusterNotFound", 404, "The specified cluster does not exist.")
ErrorTaskNotFound = _error("ErrorTaskNotFound", 404, "The specified task does not exist.")
AddonNotFound = _error("AddonNotFound", 404, "The specified addon is not installed in the cluster.")
AddonNotSupported = _error("AddonNotSupported", 400, "The specified addon is not supported.")
AddonVersionNotSupported = _error(
    "AddonVersionNotSupported", 400, "The specified addon version is not supported."
)
AddonAlreadyInstalled = _error(
    "AddonAlreadyInstalled", 400, "The specified addon is already installed in the cluster."
)
AddonStateConflict = _error(
    "AddonStateConflict", 400, "The addon is being installed or uninstalled; retry later."
)
