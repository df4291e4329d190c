"""One way to call the Alibaba Cloud SDKs: :func:`call` converts errors and logs RequestIds."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Literal

from Tea.exceptions import TeaException

from egress_lib.errors import CloudApiError

log = logging.getLogger("egress_lib.cloud")

Product = Literal["vpc", "slb", "cs", "mse", "ram"]

# tea-openapi 0.4.x ignores RuntimeOptions(autoretry=...); only Config.retry_options retries
# (reference D8). Throttling and 5xx are retried; CreateSnatEntry is safe to retry because
# the runbook always sends a deterministic ClientToken.
RETRY_POLICY: dict[str, Any] = {
    "retryable": True,
    "retryCondition": [
        {
            "maxAttempts": 4,
            "exception": ["ThrottlingException", "ServerException"],
            "errorCode": [
                "ServiceUnavailable",
                "Throttling",
                "Throttling.User",
                "Throttling.Api",
                "InternalError",
            ],
            "backoff": {"policy": "ExponentialWithEqualJitter", "period": 200, "cap": 5000},
            "maxDelay": 10000,
        }
    ],
}
CONNECT_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 20000

# SDK client -> where its credentials come from (never the credentials), so that an error
# about credentials or permissions can name the source without holding the Session.
_SOURCES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def register_client(client: Any, credential_source: str) -> None:
    """Remember ``credential_source`` (a description, no secret) for ``client``'s errors."""
    _SOURCES[client] = credential_source


def credential_source_of(fn: Callable[..., Any]) -> str | None:
    """The credential source registered for the SDK client ``fn`` is a method of."""
    client = getattr(fn, "__self__", None)
    try:
        return _SOURCES.get(client) if client is not None else None
    except TypeError:  # not weak-referenceable: nothing was registered for it
        return None


def retry_options() -> Any:
    """A fresh darabonba RetryOptions for ``Config.retry_options``."""
    from darabonba.policy.retry import RetryOptions

    return RetryOptions(RETRY_POLICY)


def call(product: Product, action: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one SDK call and return the response body.

    SDK exceptions become :class:`CloudApiError` (transport failures
    :class:`CloudConnectionError`); the action and RequestId are logged, never credentials.
    """
    return call_with_id(product, action, fn, *args)[0]


def call_with_id(
    product: Product, action: str, fn: Callable[..., Any], *args: Any
) -> tuple[Any, dict[str, str]]:
    """:func:`call`, also returning ``{product, action, request_id}`` for the run record."""
    try:
        resp = fn(*args)
    except TeaException as e:
        err = CloudApiError.from_sdk(product, action, e, credential_source=credential_source_of(fn))
        log.warning("%s:%s failed: code=%s RequestId=%s", product, action, err.code, err.request_id)
        raise err from e
    body = getattr(resp, "body", resp)
    request_id = _request_id(resp, body)
    log.info("%s:%s ok RequestId=%s", product, action, request_id)
    return body, {"product": product, "action": action, "request_id": request_id or ""}


def _request_id(resp: Any, body: Any) -> str | None:
    value = getattr(body, "request_id", None)
    if value:
        return str(value)
    if isinstance(body, dict):
        value = body.get("RequestId") or body.get("request_id")
        if value:
            return str(value)
    headers = getattr(resp, "headers", None) or {}
    value = headers.get("x-acs-request-id")
    return str(value) if value else None
