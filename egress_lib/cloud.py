"""One way to call the Alibaba Cloud SDKs: :func:`call` retries, converts errors, logs RequestIds.

Retries are egress_lib's own (:mod:`egress_lib.retry`: one deadline, backoff with jitter,
``x-acs-retry-after`` honoured, each retry logged and counted); the SDK's own retries are off
(:func:`retry_options`) so that the two never multiply.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Literal

from Tea.exceptions import TeaException

from egress_lib import remedies, retry
from egress_lib.errors import CloudApiError
from egress_lib.retry import RetryPolicy

log = logging.getLogger("egress_lib.cloud")

Product = Literal["vpc", "slb", "cs", "mse", "ram"]

# tea-openapi 0.4.x ignores RuntimeOptions(autoretry=...); only Config.retry_options retries
# (reference D8), so turning it off there is what stops the SDK's loop.
SDK_RETRY_OPTIONS: dict[str, Any] = {"retryable": False}
CONNECT_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 20000

# SDK client -> where its credentials come from (never the credentials), so that an error
# about credentials or permissions can name the source without holding the Session.
_SOURCES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# SDK client -> the retry policy of the Session that built it.
_POLICIES: weakref.WeakKeyDictionary[Any, RetryPolicy] = weakref.WeakKeyDictionary()


def register_client(client: Any, credential_source: str, policy: RetryPolicy | None = None) -> None:
    """Remember ``credential_source`` (a description, no secret) and the retry ``policy``."""
    _SOURCES[client] = credential_source
    if policy is not None:
        _POLICIES[client] = policy


def _registered(table: weakref.WeakKeyDictionary[Any, Any], fn: Callable[..., Any]) -> Any:
    client = getattr(fn, "__self__", None)
    try:
        return table.get(client) if client is not None else None
    except TypeError:  # not weak-referenceable: nothing was registered for it
        return None


def credential_source_of(fn: Callable[..., Any]) -> str | None:
    """The credential source registered for the SDK client ``fn`` is a method of."""
    source: str | None = _registered(_SOURCES, fn)
    return source


def policy_of(fn: Callable[..., Any]) -> RetryPolicy:
    """The retry policy registered for ``fn``'s client; one attempt for any other function
    (no Session, so no deadline to respect)."""
    policy: RetryPolicy | None = _registered(_POLICIES, fn)
    return policy or retry.ONCE


def retry_options() -> Any:
    """A fresh darabonba RetryOptions for ``Config.retry_options``: the SDK does not retry."""
    from darabonba.policy.retry import RetryOptions

    return RetryOptions(SDK_RETRY_OPTIONS)


def call(product: Product, action: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one SDK call, retried under its client's policy, and return the response body.

    SDK exceptions become :class:`CloudApiError` (transport failures
    :class:`CloudConnectionError`); the action and RequestId are logged, never credentials.
    """
    return call_with_id(product, action, fn, *args)[0]


def call_with_id(
    product: Product, action: str, fn: Callable[..., Any], *args: Any, once: bool = False
) -> tuple[Any, dict[str, str]]:
    """:func:`call`, also returning ``{product, action, request_id}`` for the run record.

    ``once``: a single attempt, for a caller that runs its own :func:`egress_lib.retry.run`
    (CreateSnatEntry re-reads the table between attempts).
    """
    name = f"{product}:{action}"
    policy = retry.ONCE if once else policy_of(fn)
    try:
        resp = retry.run(
            policy,
            name,
            lambda _n: _attempt(product, action, fn, args),
            lambda e: retry.cloud_verdict(e, action),
        )
    except CloudApiError as err:
        info = retry.exhausted_of(err)
        # A caller's own loop (once) logs its retries; its attempts are details.
        level = logging.INFO if once else logging.WARNING
        log.log(level, "%s failed: code=%s RequestId=%s", name, err.code, err.request_id)
        if info is not None and info.attempts > 1:
            raise retried(err, info) from err.__cause__
        raise
    body = getattr(resp, "body", resp)
    request_id = _request_id(resp, body)
    log.info("%s ok RequestId=%s", name, request_id)
    return body, {"product": product, "action": action, "request_id": request_id or ""}


def _attempt(product: Product, action: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return fn(*args)
    except TeaException as e:
        source = credential_source_of(fn)
        raise CloudApiError.from_sdk(product, action, e, credential_source=source) from e


def retried(err: CloudApiError, info: retry.Exhausted) -> CloudApiError:
    """``err`` (the last attempt's error) saying it was retried until the deadline, and what
    to do: the same class, code, status and RequestId."""
    return type(err)(
        product=err.product,
        action=err.action,
        code=err.code,
        status_code=err.status_code,
        request_id=err.request_id,
        message=f"{err.message}; {info.describe()}",
        recommend=err.recommend,
        auth_action=err.auth_action,
        principal=err.principal,
        credential_source=err.credential_source,
        remedy=remedies.retries_exhausted(
            info.call, info.reason, info.deadline, cloud=True, recommend=err.recommend
        ),
    )


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
