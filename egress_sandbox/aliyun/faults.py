"""Injected failures: make the next N calls of an action fail (or slow down) on purpose.

Consulted by the server after authentication and routing, before the permission check and the
action itself, i.e. where the real gateway applies flow control. An entry with ``code=""`` only
adds latency. ``action="*"`` matches every action. Errors render in the product's style (RPC
PascalCase, CS lower-case); ``retry_after_ms`` adds ``x-acs-retry-after``, which the SDK turns
into ``ThrottlingException(retry_after=...)``. ``reset`` (``before``/``after``) closes the
connection without an answer instead (``core/faults.py``); the audit log records a reset
before the action as ``ConnectionReset``, and one after it with the action's real status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_sandbox.aliyun.common.errors import DynamicError
from egress_sandbox.core.faults import (
    BEFORE,
    RESET_CODE,
    RESET_STATUS,
    FaultQueue,
    mark_reset,
    validate,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

ANY = "*"


@dataclass
class Fault:
    action: str
    code: str
    status: int
    count: int  # remaining matches
    message: str = ""
    retry_after_ms: int | None = None
    latency_ms: int = 0
    api: str = ANY  # vpc | slb | cs | mse | ram | * (RPC action names are not unique)
    reset: str = ""  # "" | before | after: close the connection without an answer


class FaultRegistry:
    """Pending cloud faults, consumed in the order they were added (thread-safe)."""

    def __init__(self) -> None:
        self._queue: FaultQueue[Fault] = FaultQueue()

    def add(
        self,
        action: str,
        code: str,
        status: int,
        count: int,
        message: str = "",
        retry_after_ms: int | None = None,
        latency_ms: int = 0,
        api: str = ANY,
        reset: str = "",
    ) -> Fault:
        validate(
            error=code,
            status=status,
            count=count,
            latency_ms=latency_ms,
            error_name="an error code",
            reset=reset,
        )
        return self._queue.push(
            Fault(action, code, status, count, message, retry_after_ms, latency_ms, api, reset)
        )

    def list(self) -> list[dict[str, Any]]:
        return self._queue.list()

    def clear(self) -> None:
        self._queue.clear()

    def take(
        self, action: str, api: str = ANY, environ: WSGIEnvironment | None = None
    ) -> Fault | None:
        """The first fault matching ``action`` (of ``api``), with one use consumed.

        A reset fault marks ``environ`` (the server then answers nothing); one ``before`` the
        action sleeps its latency and raises here, so the action never runs.
        """
        fault = self._queue.take(lambda f: f.action in (action, ANY) and f.api in (api, ANY))
        if fault is None or not fault.reset:
            return fault
        mark_reset(environ, fault.reset)
        if fault.reset == BEFORE:
            if fault.latency_ms:
                time.sleep(fault.latency_ms / 1000)
            raise DynamicError(RESET_CODE, RESET_STATUS, "Injected fault: connection reset.")
        return fault
