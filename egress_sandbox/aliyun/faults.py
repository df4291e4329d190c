"""Injected failures: make the next N calls of an action fail (or slow down) on purpose.

Consulted by the server after authentication and routing, before the permission check and the
action itself, i.e. where the real gateway applies flow control. An entry with ``code=""`` only
adds latency. ``action="*"`` matches every action. Errors render in the product's style (RPC
PascalCase, CS lower-case); ``retry_after_ms`` adds ``x-acs-retry-after``, which the SDK turns
into ``ThrottlingException(retry_after=...)``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    action: str
    code: str
    status: int
    count: int  # remaining matches
    message: str = ""
    retry_after_ms: int | None = None
    latency_ms: int = 0
    api: str = "*"  # vpc | slb | cs | * (RPC action names are not unique across products)


class FaultRegistry:
    """Thread-safe list of pending faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        action: str,
        code: str,
        status: int,
        count: int,
        message: str = "",
        retry_after_ms: int | None = None,
        latency_ms: int = 0,
        api: str = "*",
    ) -> Fault:
        if count < 1:
            raise ValueError("count must be at least 1")
        if code and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400..599)")
        if not code and not latency_ms:
            raise ValueError("a fault needs an error code, a latency, or both")
        fault = Fault(action, code, status, count, message, retry_after_ms, latency_ms, api)
        with self._lock:
            self._faults.append(fault)
        return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, action: str, api: str = "*") -> Fault | None:
        """The first fault matching ``action`` (of ``api``), with one use consumed."""
        with self._lock:
            for fault in self._faults:
                if fault.action in (action, "*") and fault.api in (api, "*"):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return Fault(**asdict(fault))
        return None
