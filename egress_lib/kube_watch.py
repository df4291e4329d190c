"""Watch-based waits: :func:`wait_for` one object, resuming dropped and broken watches.

Split from :mod:`egress_lib.kube`, which re-exports :func:`wait_for`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from egress_lib import retry
from egress_lib.errors import KubernetesApiError, WaitTimeout
from egress_lib.kinds import REQUEST_TIMEOUT, kind_of
from egress_lib.kube_errors import k8s_errors
from egress_lib.progress import waiting_bar

if TYPE_CHECKING:
    from egress_lib.clients import Session

Obj = dict[str, Any]
# Longest single watch request; the loop re-watches until the caller's deadline.
WATCH_CHUNK_SECONDS = 60


def _list_one(
    session: Session, kind: str, name: str, namespace: str | None
) -> tuple[Obj | None, str]:
    fn, args = kind_of(kind).list_call(session, namespace)
    with k8s_errors("list", kind, name):
        resp = fn(
            *args,
            field_selector=f"metadata.name={name}",
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    data = json.loads(resp.data)
    items = data.get("items") or []
    item = items[0] if items else None
    if item is not None:
        # List items carry no apiVersion/kind (the list does, as "<Kind>List"): put them back
        # so callers get the same shape as a GET or a watch event.
        item.setdefault("apiVersion", data.get("apiVersion"))
        item.setdefault("kind", kind)
    return item, str(data.get("metadata", {}).get("resourceVersion", ""))


def wait_for(
    session: Session,
    kind: str,
    name: str,
    namespace: str | None,
    predicate: Callable[[Obj | None], bool],
    *,
    timeout: float,
    reason: str,
    describe: Callable[[Obj | None], str] | None = None,
) -> Obj:
    """Watch one object until ``predicate(obj)`` (obj is None while absent) or the deadline.

    Starts from a fresh list's resourceVersion so no change is missed. A stream that ends is
    watched again from the last resourceVersion seen, one that breaks (connection reset,
    protocol error) too, after a short backoff; 410 Gone (that version's history expired)
    lists again. Each of the last two is logged and counted as a retry (:mod:`egress_lib.retry`).
    Raises :class:`WaitTimeout` with the last state seen. Returns {} when waiting for absence.
    """
    from kubernetes import watch as _watch

    watch: Any = _watch  # the client is only partly annotated

    describe = describe or _describe
    deadline = time.monotonic() + timeout
    last, rv = _list_one(session, kind, name, namespace)
    fn, args = kind_of(kind).list_call(session, namespace)
    call = f"watch {kind}/{name}"
    broken = 0  # streams broken in a row: the backoff grows while the server keeps failing
    with waiting_bar(reason, what=f"{kind} {name}", timeout=timeout) as bar:
        while not predicate(last):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"{kind}/{name}", timeout, describe(last), reason)
            bar.set_postfix_str(describe(last), refresh=True)
            w = watch.Watch(return_type="object")
            try:
                with k8s_errors("watch", kind, name):
                    for event in w.stream(
                        fn,
                        *args,
                        field_selector=f"metadata.name={name}",
                        resource_version=rv,
                        timeout_seconds=max(1, int(min(remaining, WATCH_CHUNK_SECONDS))),
                        _request_timeout=min(remaining, WATCH_CHUNK_SECONDS) + 10,
                    ):
                        broken = 0
                        obj = event.get("raw_object") or {}
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            last = obj
                        elif event["type"] == "DELETED":
                            last = None
                        else:
                            continue
                        bar.set_postfix_str(describe(last), refresh=False)  # as it arrives
                        bar.update(1)
                        if predicate(last) or time.monotonic() >= deadline:
                            w.stop()
                            break
            except KubernetesApiError as e:
                # An ERROR event (e.g. 410 Gone) is raised by the stream as ApiException and
                # converted by k8s_errors like any other failure; a broken stream arrives as
                # a urllib3 error (status None). The request that opens a watch is retried
                # by the client itself, so what is left here is the stream dying midway.
                if e.status == 410:
                    retry.note(call, "HTTP 410 Gone: listing again", 1, 0.0)
                    last, rv = _list_one(session, kind, name, namespace)  # history expired
                elif e.status is None and _stream_broke(e):
                    broken += 1
                    wait = min(session.retry_policy.backoff(broken), deadline - time.monotonic())
                    reason_ = f"watch stream broke: {retry.transport_reason(e.__cause__)[0]}"
                    retry.note(call, reason_, broken, max(wait, 0.0))
                    session.retry_policy.sleep(max(wait, 0.0))
                else:
                    raise
    return last or {}


def _stream_broke(err: KubernetesApiError) -> bool:
    # A transport failure worth watching again (reset, protocol error, timeout), that the
    # client has not already retried until the deadline; TLS failures and the like are final.
    from egress_lib.kube_retry import kube_verdict

    cause = err.__cause__
    return (
        isinstance(cause, Exception)
        and retry.exhausted_of(cause) is None
        and kube_verdict(cause) is not None
    )


def _describe(obj: Obj | None) -> str:
    if obj is None:
        return "absent"
    status = obj.get("status") or {}
    phase = status.get("phase") if isinstance(status, dict) else None
    return str(phase) if phase else "present"  # e.g. "Pending": the line reads as a state
