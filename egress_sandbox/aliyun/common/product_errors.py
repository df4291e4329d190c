"""Error rows of the products added after the shared catalogue (MSE, RAM), in the same shape.

``common/errors.py``'s ``CATALOGUE`` is the table of the first products; these rows keep its
``ErrorSpec`` form so that they can join it later. docs/aliyun-emulation.md lists them in a
table of their own (a test keeps the two in step).
"""

from __future__ import annotations

from egress_sandbox.aliyun.common.errors import ApiError, ErrorSpec

PRODUCT_CATALOGUE: dict[str, ErrorSpec] = {
    # RAM GetRole of a role the account does not have (help: api-ram-2015-05-01-getrole).
    "EntityNotExist.Role": ErrorSpec(404, "The role not exists.", "UNCONFIRMED", "ram"),
    # MSE ListGatewaySlb of an unknown GatewayUniqueId.
    "NotFound.Gateway": ErrorSpec(404, "The gateway does not exist.", "UNCONFIRMED", "mse"),
    # MSE's code for a malformed request, "Invalid request:%s" (help:
    # api-mse-2019-05-31-initializeservicelinkrole); here FilterParams that is not a JSON object.
    "IllegalRequest": ErrorSpec(400, "Invalid request:", "DOC", "mse"),
}


def _error(code: str) -> type[ApiError]:
    spec = PRODUCT_CATALOGUE[code]
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


EntityNotExistRole = _error("EntityNotExist.Role")
GatewayNotFound = _error("NotFound.Gateway")
IllegalRequest = _error("IllegalRequest")
