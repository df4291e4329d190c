"""The object store behind the emulated kube-apiserver: CRUD, resourceVersion, watch, events.

It holds plain JSON-like dicts. One lock guards everything; ``resourceVersion`` is a single
global counter, as etcd's revision is. In-process controllers (the MSE controller, the kubelet)
use this API directly; HTTP clients reach it through ``routes.py``.

Hooks let other modules take part without the store knowing them:
- ``admission``: ``fn(op, rtype, new, old)`` may default fields in ``new`` or raise ``ApiError``
  (validation lives in ``validation.py``);
- ``subscribe``: ``fn(event)`` after every committed change (controllers react here).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.k8s import gc
from egress_sandbox.k8s.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound
from egress_sandbox.k8s.events import event_body, now_rfc3339
from egress_sandbox.k8s.fielderrors import FieldErrors
from egress_sandbox.k8s.types import ResourceType, TypeRegistry
from egress_sandbox.k8s.watchhub import Watcher, WatchEvent, WatchHub

__all__ = ["AdmissionHook", "Obj", "Store", "Subscriber", "WatchEvent", "Watcher", "now_rfc3339"]

Obj = dict[str, Any]
# Kinds whose registry strategy tracks metadata.generation; others never get one. Custom
# resources always do.
GENERATION_KINDS = frozenset(
    {
        "CustomResourceDefinition",
        "DaemonSet",
        "Deployment",
        "Ingress",
        "IngressClass",
        "Job",
        "NetworkPolicy",
        "ReplicaSet",
        "StatefulSet",
    }
)


AdmissionHook = Callable[[str, ResourceType, Obj, "Obj | None"], None]
Subscriber = Callable[[WatchEvent], None]


class Store:
    def __init__(self, ids: IdFactory, types: TypeRegistry | None = None) -> None:
        self.ids = ids
        self.types = types or TypeRegistry()
        self.lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 1
        self._hub = WatchHub(self.lock)
        self.admission: list[AdmissionHook] = []
        self._subscribers: list[Subscriber] = []

    # ---- bookkeeping -------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self.lock:
            return str(self._rv)

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def _table(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(rt.key, {})

    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, type_: str, rt: ResourceType, obj: Obj, old: Obj | None = None) -> None:
        ev = WatchEvent(type_, rt, copy.deepcopy(obj), self._rv, copy.deepcopy(old))
        self._hub.publish(ev)
        for fn in list(self._subscribers):
            fn(ev)

    def _admit(self, op: str, rt: ResourceType, new: Obj, old: Obj | None) -> None:
        for hook in self.admission:
            hook(op, rt, new, old)

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    # ---- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self.lock:
            obj = self._table(rt).get((self._ns(rt, namespace), name))
            if obj is None:
                raise NotFound.of(rt.plural, rt.group, name)
            return copy.deepcopy(obj)

    def try_get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.get(rt, namespace, name)
        except NotFound:
            return None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        match: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], str]:
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._table(rt).items())
                if (not namespace or not rt.namespaced or ns == namespace)
                and (match is None or match(o))
            ]
            return items, str(self._rv)

    # ---- writes ------------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + self.ids.token(
                    5, "bcdfghjklmnpqrstvwxz2456789"
                )
            name = meta.get("name")
            if not name:
                raise Invalid.of(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
            ns = self._ns(rt, meta.get("namespace"))
            if rt.namespaced:
                meta["namespace"] = ns
                nst = self.types.get("", "v1", "namespaces")
                assert nst is not None
                namespace_obj = self._table(nst).get(("", ns))
                if namespace_obj is None:
                    raise NotFound.of("namespaces", "", ns)
                if namespace_obj["metadata"].get("deletionTimestamp"):
                    raise Forbidden(
                        f'{rt.resource_name} "{name}" is forbidden: unable to create new content '
                        f"in namespace {ns} because it is being terminated",
                        details={
                            "name": name,
                            "kind": rt.plural,
                            **({"group": rt.group} if rt.group else {}),
                        },
                    )
            else:
                meta.pop("namespace", None)
            if (ns, name) in self._table(rt):
                raise AlreadyExists.of(rt.plural, rt.group, name)
            obj["apiVersion"] = rt.group_version
            obj["kind"] = rt.kind
            self._admit("CREATE", rt, obj, None)
            if dry_run:
                meta.setdefault("uid", self.ids.uuid())
                meta.setdefault("creationTimestamp", now_rfc3339())
                return obj
            meta["uid"] = self.ids.uuid()
            meta["creationTimestamp"] = now_rfc3339()
            if _tracks_generation(rt):
                meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            meta["resourceVersion"] = str(self._bump())
            self._table(rt)[(ns, name)] = obj
            self._emit("ADDED", rt, obj)
            return copy.deepcopy(obj)

    def update(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Replace an object (or only its status); a non-empty stale resourceVersion is a 409."""
        with self.lock:
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            name = meta.get("name", "")
            ns = self._ns(rt, meta.get("namespace"))
            old = self._table(rt).get((ns, name))
            if old is None:
                raise NotFound.of(rt.plural, rt.group, name)
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise Conflict.stale(rt.plural, rt.group, name)
            new["apiVersion"], new["kind"] = rt.group_version, rt.kind
            if subresource == "status":
                merged = copy.deepcopy(old)
                if "status" in new:
                    merged["status"] = new["status"]
                else:
                    merged.pop("status", None)
                new = merged
            elif "status" in rt.subresources:
                # The main resource ignores status changes when a status subresource exists.
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new["metadata"]
            _check_meta_update(rt, meta, old["metadata"])
            # Server-owned metadata cannot be changed by a client.
            for k in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            if rt.namespaced:
                meta["namespace"] = ns
            self._admit("UPDATE", rt, new, old)
            if _tracks_generation(rt) and _spec_of(new) != _spec_of(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
            if _without_rv(new) == _without_rv(old):
                return copy.deepcopy(old)  # no-op updates do not bump resourceVersion
            if dry_run:
                return new
            meta["resourceVersion"] = str(self._bump())
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                del self._table(rt)[(ns, name)]
                self._removed(rt, new)
                return copy.deepcopy(new)
            self._table(rt)[(ns, name)] = new
            self._emit("MODIFIED", rt, new, old)
            return copy.deepcopy(new)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        dry_run: bool = False,
        preconditions: dict[str, str] | None = None,
        propagation: str = "Background",
    ) -> Obj:
        """Delete, or mark for deletion while finalizers remain. Returns the last state."""
        with self.lock:
            ns = self._ns(rt, namespace)
            old = self._table(rt).get((ns, name))
            if old is None:
                raise NotFound.of(rt.plural, rt.group, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise Conflict(
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata']['uid']}",
                    details={"name": name, "kind": rt.plural},
                )
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != old["metadata"]["resourceVersion"]
            ):
                raise Conflict.stale(rt.plural, rt.group, name)
            if dry_run:
                return copy.deepcopy(old)
            obj = copy.deepcopy(old)
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            wanted = gc.finalizer_for(propagation)
            if wanted and not meta.get("deletionTimestamp") and wanted not in finalizers:
                finalizers.append(wanted)
                meta["finalizers"] = finalizers
            if rt.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            if finalizers or rt.kind == "Namespace":
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now_rfc3339()
                    meta["deletionGracePeriodSeconds"] = 0
                    meta["resourceVersion"] = str(self._bump())
                    self._table(rt)[(ns, name)] = obj
                    self._emit("MODIFIED", rt, obj, old)
                    gc.process(self, rt, obj)
                if rt.kind == "Namespace":
                    self._finish_namespace(obj)
                return copy.deepcopy(self._table(rt).get((ns, name), obj))
            del self._table(rt)[(ns, name)]
            meta["resourceVersion"] = str(self._bump())
            self._removed(rt, obj)
            return obj

    def _removed(self, rt: ResourceType, obj: Obj) -> None:
        """``obj`` has left the table: tell watchers, then collect what depended on it."""
        self._emit("DELETED", rt, obj)
        gc.on_removed(self, rt, obj)

    def _finish_namespace(self, ns_obj: Obj) -> None:
        """Delete everything in a terminating namespace; it goes once it is empty."""
        name = ns_obj["metadata"]["name"]
        for rt in self.types.all():
            if not rt.namespaced:
                continue
            for ns, n in [k for k in self._table(rt) if k[0] == name]:
                with contextlib.suppress(NotFound):  # already gone through its own owner
                    self.delete(rt, ns, n)
        self.finish_namespace_if_empty(name)

    def finish_namespace_if_empty(self, name: str) -> None:
        """Remove a terminating namespace once no object is left in it (objects with
        finalizers keep it Terminating, as the namespace controller does)."""
        nst = self.types.get("", "v1", "namespaces")
        assert nst is not None
        ns_obj = self._table(nst).get(("", name))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if ns_obj["metadata"].get("finalizers"):
            return
        for rt in self.types.all():
            if rt.namespaced and any(k[0] == name for k in self._table(rt)):
                return
        obj = self._table(nst).pop(("", name))
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self._emit("DELETED", nst, obj)

    def drop_type(self, rt: ResourceType) -> None:
        """Remove every object of a type (its CRD is gone), telling watchers they were deleted."""
        with self.lock:
            table = self._objects.pop(rt.key, {})
            for obj in table.values():
                obj["metadata"]["resourceVersion"] = str(self._bump())
                self._emit("DELETED", rt, obj)

    # ---- watch -------------------------------------------------------------------------------

    def watch(
        self,
        since_rv: str | None,
        match: Callable[[WatchEvent], bool],
    ) -> Watcher:
        """Events after ``since_rv`` (or from now). Too old a version is 410 Gone."""
        with self.lock:
            return self._hub.watch(since_rv, self._rv, match)

    def close_watchers(self, which: Callable[[Watcher], bool] | None = None) -> int:
        """Close the watchers ``which`` selects (all by default); returns how many."""
        return self._hub.close(which)

    # ---- events ------------------------------------------------------------------------------

    def record_event(
        self,
        involved: Obj,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str = "sandbox",
    ) -> None:
        """Record a core/v1 Event about ``involved``, as controllers and the kubelet do."""
        evt = self.types.get("", "v1", "events")
        assert evt is not None
        body = event_body(involved, self.ids.hex(16), reason, message, type_, component)
        # the namespace may be gone; a real apiserver refuses the event too
        with contextlib.suppress(NotFound):
            self.create(evt, body)

    # ---- persistence -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "rv": self._rv,
                "objects": [o for table in self._objects.values() for o in table.values()],
            }

    def iter_objects(self) -> Iterator[tuple[ResourceType, Obj]]:
        with self.lock:
            for rt in self.types.all():
                for o in self._table(rt).values():
                    yield rt, copy.deepcopy(o)


def _check_meta_update(rt: ResourceType, meta: Obj, old_meta: Obj) -> None:
    """ValidateObjectMetaUpdate's common checks: a given uid must be the stored one, and an
    object being deleted takes no new finalizers."""
    errs = FieldErrors()
    if meta.get("uid") and meta["uid"] != old_meta["uid"]:
        errs.invalid("metadata.uid", meta["uid"], "field is immutable")
    if old_meta.get("deletionTimestamp"):
        kept = set(old_meta.get("finalizers") or [])
        extra = sorted({f for f in meta.get("finalizers") or [] if f not in kept})
        if extra:
            found = "[]string{" + ", ".join(json.dumps(f) for f in extra) + "}"
            errs.forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {found}",
            )
    errs.raise_if_any(rt.kind, rt.group, meta.get("name", ""))


def _tracks_generation(rt: ResourceType) -> bool:
    return rt.schema is not None or rt.kind in GENERATION_KINDS


def _spec_of(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_rv(obj: Obj) -> Any:
    o = copy.deepcopy(obj)
    o.get("metadata", {}).pop("resourceVersion", None)
    o.get("metadata", {}).pop("managedFields", None)
    return o
