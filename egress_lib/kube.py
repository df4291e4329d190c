"""Plan and apply Kubernetes changes under preconditions; read-back, delete, watch-based waits."""

from __future__ import annotations

import copy
import difflib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from egress_lib import ownership
from egress_lib.errors import KubernetesApiError, WaitTimeout
from egress_lib.kinds import REQUEST_TIMEOUT, kind_of
from egress_lib.manifests import to_yaml
from egress_lib.plan import Change
from egress_lib.progress import waiting_bar

if TYPE_CHECKING:
    from egress_lib.clients import Session

log = logging.getLogger("egress_lib.kube")

Obj = dict[str, Any]
# Longest single watch request; the loop re-watches until the caller's deadline.
WATCH_CHUNK_SECONDS = 60


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


def dropped(current: Obj, desired: Obj) -> list[tuple[str, ...]]:
    """Paths the runbook writes that ``current`` has and ``desired`` no longer does.

    The diff and the merge ignore keys only the server's object has (server defaults,
    other controllers' fields), so a policy removed from the parameters would otherwise
    stay in force: its annotation or the Ingress's ``spec.tls`` must go explicitly.
    """
    if desired.get("kind") != "Ingress":
        return []
    from egress_lib.policy_annotations import MANAGED_ANNOTATIONS

    out: list[tuple[str, ...]] = []
    have = (current.get("metadata") or {}).get("annotations") or {}
    want = (desired.get("metadata") or {}).get("annotations") or {}
    out += [
        ("metadata", "annotations", k) for k in MANAGED_ANNOTATIONS if k in have and k not in want
    ]
    if (current.get("spec") or {}).get("tls") and "tls" not in (desired.get("spec") or {}):
        out.append(("spec", "tls"))
    return out


def _merged(current: Obj, desired: Obj) -> Obj:
    # Replace body = the server's object with the desired keys laid over it, so fields the
    # server or other controllers own (clusterIP, finalizers) are kept, less what the
    # runbook wrote before and no longer wants (:func:`dropped`). Status is left out:
    # replace ignores it, and it would make the body change with every controller update.
    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                out[k] = merge(base.get(k), v)
            return out
        return copy.deepcopy(over)

    body: Obj = merge(strip_server_fields(current), desired)
    for path in dropped(current, desired):
        parent = body
        for key in path[:-1]:
            parent = parent.get(key) or {}
        parent.pop(path[-1], None)
    body.pop("status", None)
    body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
    return body


# Metadata the server sets on every write; left out of what the operator reviews.
_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def for_review(obj: Obj) -> Obj:
    """``obj`` without status and server bookkeeping, as a plan shows it."""
    out = strip_server_fields(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _VOLATILE_META:
        meta.pop(key, None)
    return out


def unified_diff(before: Obj, after: Obj, label: str) -> str:
    """A unified diff of two objects' YAML (review form), ``live`` against ``after apply``."""
    a = to_yaml(for_review(before)).splitlines(keepends=True)
    b = to_yaml(for_review(after)).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(a, b, f"{label} (live)", f"{label} (after apply, server dry run)")
    )


def plan_object(session: Session, obj: Obj) -> Change:
    """What applying ``obj`` would do, as a :class:`Change` with body, payload and precondition.

    Nothing is written: the server validates the object with a dry run, and the body shows
    its answer (the whole object for a create, a diff for an update). An existing object the
    runbook does not own is a ``conflict`` unless the parameters adopt it.
    """
    kind, name, namespace = _ident(obj)
    k = kind_of(kind)
    p = session.params
    current = get(session, kind, name, namespace)
    if current is None:
        result, note = _dry_run(lambda: k.create(session, obj, True), kind, name)
        body = to_yaml_text(for_review(result if result else obj))
        detail = note or "server dry run passed"
        return Change("create", kind, name, detail, namespace, body, copy.deepcopy(obj))
    uid = str((current.get("metadata") or {}).get("uid") or "")
    rv = str((current.get("metadata") or {}).get("resourceVersion") or "")
    whose = ownership.owner(current, p)
    adopted = p.adopts(kind, name)
    if whose != "ours" and not adopted:
        found = (current.get("metadata") or {}).get("labels") or {}
        by = (
            f"by egress-runbook for cluster {found.get(ownership.CLUSTER_LABEL)!r}"
            if whose == "other-cluster"
            else f"without the label {ownership.MANAGED_BY}={ownership.MANAGER}"
        )
        return Change(
            "conflict",
            kind,
            name,
            f"exists, made {by}; list {kind}/{name} under adopt: to take it over",
            namespace,
            to_yaml_text(for_review(current)),
            precondition={"uid": uid},
        )
    differences = diff(obj, current) + [
        f"{'.'.join(path)} (removed)" for path in dropped(current, obj)
    ]
    if not differences:
        return Change(
            "unchanged", kind, name, "matches the server", namespace, precondition={"uid": uid}
        )
    merged = _merged(current, obj)
    result, note = _dry_run(lambda: k.replace(session, merged, True), kind, name)
    summary = "; ".join(differences[:3]) + (" …" if len(differences) > 3 else "")
    if whose != "ours":
        summary = f"adopt (parameters adopt: {kind}/{name}); {summary}"
    body = unified_diff(current, result or merged, f"{kind}/{name}")
    return Change(
        "update",
        kind,
        name,
        summary + (f"; {note}" if note else ""),
        namespace,
        body,
        merged,
        {"resourceVersion": rv, "uid": uid},
    )


def plan_delete(session: Session, obj: Obj, why: str) -> Change:
    """A delete of ``obj`` (as listed or read), conditional on its uid."""
    kind, name, namespace = _ident(obj)
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    return Change(
        "delete",
        kind,
        name,
        why,
        namespace,
        to_yaml_text(for_review(obj)),
        {"uid": uid},
        {"uid": uid},
    )


def to_yaml_text(obj: Obj) -> str:
    """Block-style YAML of one object."""
    return to_yaml(obj)


def _dry_run(fn: Callable[[], Obj], kind: str, name: str) -> tuple[Obj | None, str]:
    # Invalid objects fail here (422) before anything changes. Missing APIs (CRD not yet
    # installed) and missing dry-run rights are notes, not failures: apply will tell.
    try:
        with k8s_errors("dry-run", kind, name):
            return fn(), ""
    except KubernetesApiError as e:
        if e.status == 404:
            return None, f"not validated yet: the {kind} API or namespace does not exist yet"
        if e.status == 403:
            return None, f"not validated: no permission for a server dry run ({e.reason})"
        raise


class StaleObject(Exception):
    """A precondition of a planned Kubernetes change failed (internal; steps raise PlanStale)."""

    def __init__(self, ref: str, why: str) -> None:
        super().__init__(f"{ref}: {why}")


def apply_change(session: Session, change: Change) -> Change:
    """Carry out one planned create, update or delete exactly, under its precondition.

    Returns the change as applied (``result`` holds the uid and resourceVersion written).
    Raises :class:`StaleObject` when the object changed since the plan.
    """
    k = kind_of(change.kind)
    try:
        if change.action == "create":
            with k8s_errors("create", change.kind, change.name):
                obj = k.create(session, change.payload, False)
        elif change.action == "update":
            with k8s_errors("update", change.kind, change.name):
                obj = k.replace(session, change.payload, False)
        elif change.action == "delete":
            with k8s_errors("delete", change.kind, change.name):
                k.delete(session, change.name, change.namespace, change.precondition or None)
            log.info("deleted %s", change.ref)
            return _applied(change, {"uid": change.precondition.get("uid", "")})
        else:
            raise ValueError(f"not a change apply makes: {change.action}")
    except KubernetesApiError as e:
        if e.status == 409:
            raise StaleObject(change.ref, f"changed since the plan ({e.reason})") from e
        if e.status == 404 and change.action in ("update", "delete"):
            if change.action == "delete":
                return _applied(change, {"already": "absent"})
            raise StaleObject(change.ref, "deleted since the plan") from e
        raise
    meta = obj.get("metadata") or {}
    log.info("%sd %s", change.action.rstrip("e"), change.ref)
    return _applied(
        change, {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    )


def _applied(change: Change, result: dict[str, Any]) -> Change:
    return Change(
        change.action,
        change.kind,
        change.name,
        change.detail,
        change.namespace,
        change.body,
        None,
        dict(change.precondition),
        {**change.result, **result},
    )


def list_owned(session: Session, kind: str, namespace: str | None) -> list[Obj]:
    """Objects of ``kind`` carrying this cluster's ownership labels."""
    fn, args = kind_of(kind).list_call(session, namespace)
    with k8s_errors("list", kind, None):
        resp = fn(
            *args,
            label_selector=ownership.selector(session.params),
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    data = json.loads(resp.data)
    items: list[Obj] = data.get("items") or []
    for item in items:
        item.setdefault("apiVersion", data.get("apiVersion"))
        item.setdefault("kind", kind)
    return items


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
    return str(phase) if phase else "present"  # e.g. "Pending": the line reads as a state
