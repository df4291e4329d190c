"""Idempotent apply, plan, read-back, delete and watch-based waits for Kubernetes objects."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from egress_lib.errors import KubernetesApiError, WaitTimeout
from egress_lib.kinds import REQUEST_TIMEOUT, kind_of
from egress_lib.plan import Change
from egress_lib.progress import waiting_bar

if TYPE_CHECKING:
    from egress_lib.clients import Session

log = logging.getLogger("egress_lib.kube")

Obj = dict[str, Any]
# Longest single watch request; the loop re-watches until the caller's deadline.
WATCH_CHUNK_SECONDS = 60


@dataclass(frozen=True)
class ApplyOutcome:
    """Result of :func:`apply`: what happened and the object as the server returned it."""

    action: Literal["created", "updated", "unchanged"]
    object: Obj


@contextmanager
def k8s_errors(operation: str, kind: str | None, name: str | None) -> Iterator[None]:
    """Convert client exceptions (HTTP and transport) into :class:`KubernetesApiError`."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as e:
        raise KubernetesApiError.from_api_exception(
            e, kind=kind, name=name, operation=operation
        ) from e
    except HTTPError as e:
        raise KubernetesApiError(
            status=None,
            reason="ConnectionError",
            message=str(e),
            kind=kind,
            name=name,
            operation=operation,
        ) from e


def _ident(obj: Obj) -> tuple[str, str, str | None]:
    meta = obj.get("metadata") or {}
    return obj["kind"], meta["name"], meta.get("namespace")


def get(session: Session, kind: str, name: str, namespace: str | None = None) -> Obj | None:
    """The object as the server has it, or None when absent (404)."""
    try:
        with k8s_errors("get", kind, name):
            return kind_of(kind).get(session, name, namespace)
    except KubernetesApiError as e:
        if e.status == 404:
            return None
        raise


def strip_server_fields(obj: Obj) -> Obj:
    """A copy without managedFields and kubectl's last-applied annotation."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    meta.pop("managedFields", None)
    ann = meta.get("annotations")
    if isinstance(ann, dict):
        ann.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        if not ann:
            meta.pop("annotations")
    return out


def diff(desired: Any, actual: Any, path: str = "") -> list[str]:
    """Paths where ``actual`` differs from ``desired``; keys only in ``actual`` are ignored
    (server defaults), lists must match element by element."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in desired.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub} (missing)")
            else:
                out.extend(diff(value, actual[key], sub))
        return out
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [path]
        return [
            p
            for i, (d, a) in enumerate(zip(desired, actual, strict=True))
            for p in diff(d, a, f"{path}[{i}]")
        ]
    return [] if desired == actual else [f"{path}: {actual!r} -> {desired!r}"]


def _merged(current: Obj, desired: Obj) -> Obj:
    # Replace body = the server's object with the desired keys laid over it, so fields the
    # server or other controllers own (clusterIP, status, finalizers) are kept.
    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                out[k] = merge(base.get(k), v)
            return out
        return copy.deepcopy(over)

    body: Obj = merge(strip_server_fields(current), desired)
    body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
    return body


def apply(session: Session, obj: Obj, *, dry_run: bool = False) -> ApplyOutcome:
    """Create ``obj`` or bring the server's copy in line with it; no write when equal.

    Updates carry the read resourceVersion; one 409 Conflict is retried after re-reading.
    """
    kind, name, namespace = _ident(obj)
    k = kind_of(kind)
    for attempt in (1, 2):
        current = get(session, kind, name, namespace)
        try:
            if current is None:
                with k8s_errors("create", kind, name):
                    created = k.create(session, obj, dry_run)
                log.info("created %s/%s%s", kind, name, " (dry run)" if dry_run else "")
                return ApplyOutcome("created", created)
            differences = diff(obj, current)
            if not differences:
                return ApplyOutcome("unchanged", current)
            with k8s_errors("update", kind, name):
                updated = k.replace(session, _merged(current, obj), dry_run)
            log.info("updated %s/%s: %s", kind, name, "; ".join(differences))
            return ApplyOutcome("updated", updated)
        except KubernetesApiError as e:
            if e.status == 409 and attempt == 1:
                log.info("conflict on %s/%s, re-reading once", kind, name)
                continue
            raise
    raise AssertionError("unreachable")


def plan_apply(session: Session, obj: Obj) -> Change:
    """What :func:`apply` would do, validated by a server-side dry run when possible."""
    kind, name, namespace = _ident(obj)
    k = kind_of(kind)
    current = get(session, kind, name, namespace)
    if current is not None:
        differences = diff(obj, current)
        if not differences:
            return Change("unchanged", kind, name, "matches the server")
        detail = "; ".join(differences[:4]) + (" …" if len(differences) > 4 else "")
        note = _dry_run(lambda: k.replace(session, _merged(current, obj), True), kind, name)
        return Change("update", kind, name, detail + note)
    note = _dry_run(lambda: k.create(session, obj, True), kind, name)
    return Change("create", kind, name, ("server dry run passed" + note) if not note else note[2:])


def _dry_run(fn: Callable[[], Obj], kind: str, name: str) -> str:
    # Invalid objects fail here (422) before anything changes. Missing APIs (CRD not yet
    # installed) and missing dry-run rights are notes, not failures: apply will tell.
    try:
        with k8s_errors("dry-run", kind, name):
            fn()
    except KubernetesApiError as e:
        if e.status == 404:
            return f"; not validated: the {kind} API or namespace does not exist yet"
        if e.status == 403:
            return f"; not validated: no permission for a server dry run ({e.reason})"
        raise
    return ""


def read_back(session: Session, obj: Obj) -> Obj:
    """The object as the server has it now, minus managedFields."""
    kind, name, namespace = _ident(obj)
    current = get(session, kind, name, namespace)
    if current is None:
        raise KubernetesApiError(
            status=404,
            reason="NotFound",
            message="not found",
            kind=kind,
            name=name,
            operation="read back",
        )
    return strip_server_fields(current)


def delete(
    session: Session,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    wait: bool = False,
    timeout: float = 120,
) -> bool:
    """Delete; True if a delete was issued, False if it was already gone (404).

    With ``wait`` the call returns once the object has disappeared (finalizers done).
    """
    try:
        with k8s_errors("delete", kind, name):
            kind_of(kind).delete(session, name, namespace)
    except KubernetesApiError as e:
        if e.status != 404:
            raise
        return False
    if wait:
        wait_for(
            session,
            kind,
            name,
            namespace,
            lambda o: o is None,
            timeout=timeout,
            reason=f"{kind}/{name} to be deleted",
        )
    return True


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

    Starts from a fresh list's resourceVersion so no change is missed; re-lists on 410 Gone.
    Raises :class:`WaitTimeout` with the last state seen. Returns {} when waiting for absence.
    """
    from kubernetes import watch as _watch

    watch: Any = _watch  # the client is only partly annotated

    describe = describe or _describe
    deadline = time.monotonic() + timeout
    last, rv = _list_one(session, kind, name, namespace)
    fn, args = kind_of(kind).list_call(session, namespace)
    with waiting_bar(reason) as bar:
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
                        obj = event.get("raw_object") or {}
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            last = obj
                        elif event["type"] == "DELETED":
                            last = None
                        else:
                            continue
                        bar.update(1)
                        if predicate(last) or time.monotonic() >= deadline:
                            w.stop()
                            break
            except KubernetesApiError as e:
                # An ERROR event (e.g. 410 Gone) is raised by the stream as ApiException and
                # converted by k8s_errors like any other failure.
                if e.status != 410:
                    raise
                last, rv = _list_one(session, kind, name, namespace)  # history expired
    return last or {}


def _describe(obj: Obj | None) -> str:
    if obj is None:
        return "absent"
    status = obj.get("status") or {}
    phase = status.get("phase") if isinstance(status, dict) else None
    return f"present, phase={phase}" if phase else "present"
