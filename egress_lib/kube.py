"""Plan and apply Kubernetes changes under preconditions; read-back, delete, watch-based waits."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import difflib
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from egress_lib import ownership
from egress_lib.errors import KubernetesApiError
from egress_lib.kinds import REQUEST_TIMEOUT, kind_of

# Defined in modules of their own (size); everything uses them as kube.k8s_errors etc.
from egress_lib.kube_errors import k8s_errors as k8s_errors  # noqa: PLC0414
from egress_lib.kube_watch import WATCH_CHUNK_SECONDS as WATCH_CHUNK_SECONDS  # noqa: PLC0414
from egress_lib.kube_watch import wait_for as wait_for  # noqa: PLC0414
from egress_lib.manifests import to_yaml
from egress_lib.plan import Change

if TYPE_CHECKING:
    from egress_lib.clients import Session

log = logging.getLogger("egress_lib.kube")

Obj = dict[str, Any]

# A plan's server dry runs validate its objects; a re-plan that only checks that a plan is still
# current (carry_out's stale check) compares actions and payloads, which a dry run never
# changes, so it skips them: one request per object fewer on every apply.
_DRY_RUNS: contextvars.ContextVar[bool] = contextvars.ContextVar("dry_runs", default=True)
# plan_object's "not read yet": read it (None means read and absent).
_UNREAD: Any = object()


@contextlib.contextmanager
def without_dry_runs() -> Iterator[None]:
    """Plans made inside skip their server dry runs (for stale checks only)."""
    token = _DRY_RUNS.set(False)
    try:
        yield
    finally:
        _DRY_RUNS.reset(token)


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


def plan_object(session: Session, obj: Obj, current: Obj | None = _UNREAD) -> Change:
    """What applying ``obj`` would do, as a :class:`Change` with body, payload and precondition.

    Nothing is written: the server validates the object with a dry run, and the body shows
    its answer (the whole object for a create, a diff for an update). An existing object the
    runbook does not own is a ``conflict`` unless the parameters adopt it. ``current`` is the
    object as the server has it (None: absent) when the caller has listed it already.
    """
    kind, name, namespace = _ident(obj)
    k = kind_of(kind)
    p = session.params
    if current is _UNREAD:
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
    if not _DRY_RUNS.get():
        return None, "not validated again (a stale check)"
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
    A write whose answer was lost and was repeated (:mod:`egress_lib.retry`) meets its own
    first attempt: a create meets 409 AlreadyExists, an update 409 Conflict, a delete 404.
    When the object is then ours and as planned, the change is done (``result["converged"]``).
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
        if e.status == 409 and change.action in ("create", "update"):
            found = converged(session, change)
            if found is not None:
                meta = found.get("metadata") or {}
                log.info("%s: already as planned (%s)", change.ref, e.reason)
                return _applied(
                    change,
                    {
                        "uid": meta.get("uid"),
                        "resourceVersion": meta.get("resourceVersion"),
                        "converged": f"{e.reason}: the object is ours and as planned",
                    },
                )
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


def converged(session: Session, change: Change) -> Obj | None:
    """The object, when what the server has is ours and exactly what ``change`` writes.

    For a create: labelled as ours (this cluster's ownership labels) with every planned key
    as planned. For an update: the same object (uid) with the planned body less the
    server's bookkeeping (resourceVersion, generation, ...), so that another writer's change
    in between is still :class:`StaleObject`.
    """
    current = get(session, change.kind, change.name, change.namespace)
    if current is None or change.payload is None:
        return None
    if ownership.owner(current, session.params) != "ours" and not session.params.adopts(
        change.kind, change.name
    ):
        return None
    desired: Obj = change.payload
    if change.action == "update":
        uid = (current.get("metadata") or {}).get("uid")
        if change.precondition.get("uid") and uid != change.precondition["uid"]:
            return None
        desired = for_review(desired)
        if dropped(current, desired):
            return None
    return current if not diff(desired, current) else None


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
    return list_all(session, kind, namespace, ownership.selector(session.params))


def list_all(
    session: Session, kind: str, namespace: str | None, label_selector: str = ""
) -> list[Obj]:
    """Every object of ``kind`` in ``namespace`` (matching ``label_selector`` when given)."""
    fn, args = kind_of(kind).list_call(session, namespace)
    with k8s_errors("list", kind, None):
        resp = fn(
            *args,
            label_selector=label_selector,
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


def read_back_all(session: Session, objs: list[Obj]) -> list[Obj]:
    """:func:`read_back` of each object, with one LIST per kind and namespace, not a GET each."""
    if len(objs) <= 1:
        return [read_back(session, o) for o in objs]
    listed: dict[tuple[str, str | None], dict[str, Obj]] = {}
    out = []
    for obj in objs:
        kind, name, namespace = _ident(obj)
        if (kind, namespace) not in listed:
            items = list_all(session, kind, namespace)
            listed[kind, namespace] = {o["metadata"]["name"]: o for o in items}
        current = listed[kind, namespace].get(name)
        if current is None:
            raise KubernetesApiError(
                status=404,
                reason="NotFound",
                message="not found",
                kind=kind,
                name=name,
                operation="read back",
            )
        out.append(strip_server_fields(current))
    return out


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
