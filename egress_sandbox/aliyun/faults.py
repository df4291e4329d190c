"""Injected failures: make the next N calls of an action fail (or slow down) on purpose.

Consulted by the server after authentication and routing, before the permission check and the
action itself, i.e. where the real gateway applies flow control. An entry with ``code=""`` only
adds latency. ``action="*"`` matches every action. Errors render in the product's style (RPC
PascalCase, CS lower-case); ``retry_after_ms`` adds ``x-acs-retry-after``, which the SDK turns
into ``ThrottlingException(retry_after=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress_sandbox.core.faults import FaultQueue, validate

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
    api: str = ANY  # vpc | slb | cs | * (RPC action names are not unique across products)


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
    ) -> Fault:
        validate(
            error=code,
            status=status,
            count=count,
            latency_ms=latency_ms,
            error_name="an error code",
        )
        return self._queue.push(
            Fault(action, code, status, count, message, retry_after_ms, latency_ms, api)
        )

    def list(self) -> list[dict[str, Any]]:
        return self._queue.list()

    def clear(self) -> None:
        self._queue.clear()

    def take(self, action: str, api: str = ANY) -> Fault | None:
        """The first fault matching ``action`` (of ``api``), with one use consumed."""
        return self._queue.take(lambda f: f.action in (action, ANY) and f.api in (api, ANY))
