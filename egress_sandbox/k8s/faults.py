"""Injected Kubernetes API failures, and dropping watch streams on purpose.

``KubeFaultRegistry`` makes the next N requests of a verb (on a resource plural, or on any)
fail with a ``Status`` of the given reason and code, or only adds latency. It is consulted by
the request pipeline after authentication and authorization, where kube-apiserver's priority
and fairness (429) or an etcd timeout (504) would bite. Faults live in memory only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from egress_sandbox.core.faults import FaultQueue, validate
from egress_sandbox.k8s.errors import ApiError
from egress_sandbox.k8s.store import Store

ANY = "*"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", ANY)


@dataclass
class KubeFault:
    verb: str
    resource: str  # plural, e.g. "services", or "*"
    reason: str  # e.g. "TooManyRequests", "" for latency only
    status: int
    count: int  # remaining matches
    message: str = ""
    retry_after_ms: int | None = None
    latency_ms: int = 0


class InjectedError(ApiError):
    """The Status of an injected fault; ``headers`` carries Retry-After when asked for."""

    def __init__(self, fault: KubeFault) -> None:
        details: dict[str, Any] | None = None
        self.headers: dict[str, str] = {}
        if fault.retry_after_ms:
            seconds = max(1, math.ceil(fault.retry_after_ms / 1000))
            details = {"retryAfterSeconds": seconds}
            self.headers["Retry-After"] = str(seconds)
        super().__init__(
            fault.message or "Injected fault.",
            details=details,
            code=fault.status,
            reason=fault.reason,
        )


class KubeFaultRegistry:
    """Pending Kubernetes faults, consumed in the order they were added (thread-safe)."""

    def __init__(self) -> None:
        self._queue: FaultQueue[KubeFault] = FaultQueue()

    def add(
        self,
        verb: str,
        reason: str,
        status: int,
        count: int = 1,
        *,
        resource: str = ANY,
        message: str = "",
        retry_after_ms: int | None = None,
        latency_ms: int = 0,
    ) -> KubeFault:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; one of {', '.join(VERBS)}")
        validate(
            error=reason, status=status, count=count, latency_ms=latency_ms, error_name="a reason"
        )
        return self._queue.push(
            KubeFault(
                verb, resource or ANY, reason, status, count, message, retry_after_ms, latency_ms
            )
        )

    def list(self) -> list[dict[str, Any]]:
        return self._queue.list()

    def clear(self) -> None:
        self._queue.clear()

    def take(self, verb: str, resource: str) -> KubeFault | None:
        return self._queue.take(lambda f: f.verb in (verb, ANY) and f.resource in (resource, ANY))

    def check(self, verb: str, resource: str) -> None:
        """Apply the first matching fault: sleep its latency, then raise its error if any."""
        fault = self.take(verb, resource)
        if fault is None:
            return
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.reason:
            raise InjectedError(fault)


def drop_watches(store: Store, resource: str | None = None) -> int:
    """End the open HTTP watch streams (of one resource plural, or all); returns how many.

    In-process subscribers are not watches and are never dropped; clients see their stream end
    and must re-watch, as after an apiserver restart or a load balancer idle timeout.
    """
    return store.close_watchers(
        lambda w: w.resource is not None and resource in (None, ANY, w.resource)
    )
