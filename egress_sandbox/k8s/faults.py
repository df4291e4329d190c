"""Injected Kubernetes API failures, and dropping watch streams on purpose.

``KubeFaultRegistry`` makes the next N requests of a verb (on a resource plural, or on any)
fail with a ``Status`` of the given reason and code, or only adds latency. It is consulted by
the request pipeline after authentication and authorization, where kube-apiserver's priority
and fairness (429) or an etcd timeout (504) would bite. Faults live in memory only.
``reset`` (``before``/``after``) closes the connection without an answer (``core/faults.py``):
``after`` lets the request take effect first, so a create is stored and its answer lost.
``skip_dry_runs`` lets server-side dry runs (``dryRun`` in the query) through untouched, so a
fault meant for a write is not used up by the plan's dry run of it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from egress_sandbox.core.faults import (
    BEFORE,
    RESET_CODE,
    RESET_STATUS,
    FaultQueue,
    drain,
    mark_reset,
    validate,
)
from egress_sandbox.k8s.errors import ApiError
from egress_sandbox.k8s.store import Store

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

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
    reset: str = ""  # "" | before | after: close the connection without an answer
    skip_dry_runs: bool = False  # True: only real writes match, never a dryRun request


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
        reset: str = "",
        skip_dry_runs: bool = False,
    ) -> KubeFault:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; one of {', '.join(VERBS)}")
        validate(
            error=reason,
            status=status,
            count=count,
            latency_ms=latency_ms,
            error_name="a reason",
            reset=reset,
        )
        return self._queue.push(
            KubeFault(
                verb,
                resource or ANY,
                reason,
                status,
                count,
                message,
                retry_after_ms,
                latency_ms,
                reset,
                skip_dry_runs,
            )
        )

    def list(self) -> list[dict[str, Any]]:
        return self._queue.list()

    def clear(self) -> None:
        self._queue.clear()

    def take(self, verb: str, resource: str, *, dry_run: bool = False) -> KubeFault | None:
        return self._queue.take(
            lambda f: (
                f.verb in (verb, ANY)
                and f.resource in (resource, ANY)
                and not (dry_run and f.skip_dry_runs)
            )
        )

    def check(self, verb: str, resource: str, environ: WSGIEnvironment | None = None) -> None:
        """Apply the first matching fault: sleep its latency, then raise its error if any.

        A reset fault marks ``environ`` instead; one ``before`` the request raises, so nothing
        is stored (the audit log records it as ``ConnectionReset``).
        """
        fault = self.take(verb, resource, dry_run=_is_dry_run(environ))
        if fault is None:
            return
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.reset:
            mark_reset(environ, fault.reset)
            if fault.reset == BEFORE:
                drain(environ)  # the handler that would have read it never runs
                lost = replace(fault, reason=RESET_CODE, status=RESET_STATUS, retry_after_ms=None)
                raise InjectedError(replace(lost, message="Injected fault: connection reset."))
            return
        if fault.reason:
            raise InjectedError(fault)


def _is_dry_run(environ: WSGIEnvironment | None) -> bool:
    # The query only: DeleteOptions bodies are not read here (the handler reads them later).
    query = str((environ or {}).get("QUERY_STRING") or "")
    return "dryRun" in parse_qs(query)


def drop_watches(store: Store, resource: str | None = None) -> int:
    """End the open HTTP watch streams (of one resource plural, or all); returns how many.

    In-process subscribers are not watches and are never dropped; clients see their stream end
    and must re-watch, as after an apiserver restart or a load balancer idle timeout.
    """
    return store.close_watchers(
        lambda w: w.resource is not None and resource in (None, ANY, w.resource)
    )
