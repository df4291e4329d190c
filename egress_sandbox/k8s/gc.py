"""Garbage collection and deletion finalizers, done synchronously under the store's lock.

kube-apiserver leaves this to the garbage collector and the namespace controller; the sandbox
does their work at once, with the same observable steps:

- ``Background``: the owner goes; each dependent goes when no other owner of it remains (the
  reference to the gone owner is dropped otherwise).
- ``Foreground``: the owner gets finalizer ``foregroundDeletion`` and a deletionTimestamp, its
  dependents are deleted in the foreground too, and the owner goes once no dependent with
  ``blockOwnerDeletion: true`` remains.
- ``Orphan``: the owner gets finalizer ``orphan``; the references to it are removed from the
  dependents, then the finalizer, so the dependents stay.
- A terminating Namespace goes once nothing is left in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from egress_sandbox.k8s.errors import Conflict, NotFound
from egress_sandbox.k8s.types import ResourceType

if TYPE_CHECKING:
    from egress_sandbox.k8s.store import Store

Obj = dict[str, Any]
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def finalizer_for(propagation: str) -> str | None:
    return {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation)


def dependents(store: Store, owner_uid: str) -> Iterator[tuple[ResourceType, Obj]]:
    for rt, o in store.iter_objects():
        if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences") or []):
            yield rt, o


def _exists(store: Store, uid: str) -> bool:
    return any(o["metadata"].get("uid") == uid for _rt, o in store.iter_objects())


def _drop_owner_ref(store: Store, rt: ResourceType, o: Obj, owner_uid: str) -> None:
    refs = [r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
    if refs:
        o["metadata"]["ownerReferences"] = refs
    else:
        o["metadata"].pop("ownerReferences", None)
    o["metadata"].pop("resourceVersion", None)
    with contextlib.suppress(NotFound, Conflict):
        store.update(rt, o)


def _remove_finalizer(store: Store, rt: ResourceType, obj: Obj, finalizer: str) -> None:
    meta = obj["metadata"]
    current = store.try_get(rt, meta.get("namespace"), meta["name"])
    if current is None or finalizer not in (current["metadata"].get("finalizers") or []):
        return
    current["metadata"]["finalizers"] = [
        f for f in current["metadata"]["finalizers"] if f != finalizer
    ]
    if not current["metadata"]["finalizers"]:
        del current["metadata"]["finalizers"]
    store.update(rt, current)  # removes the object when it was the last finalizer


def process(store: Store, rt: ResourceType, obj: Obj) -> None:
    """Act on the deletion finalizers of an object that has just been marked for deletion."""
    finalizers = obj["metadata"].get("finalizers") or []
    uid = obj["metadata"]["uid"]
    if ORPHAN in finalizers:
        for drt, d in list(dependents(store, uid)):
            _drop_owner_ref(store, drt, d, uid)
        _remove_finalizer(store, rt, obj, ORPHAN)
    if FOREGROUND in finalizers:
        for drt, d in list(dependents(store, uid)):
            if d["metadata"].get("deletionTimestamp"):
                continue
            with contextlib.suppress(NotFound):
                store.delete(
                    drt,
                    d["metadata"].get("namespace"),
                    d["metadata"]["name"],
                    propagation="Foreground",
                )
        release_foreground(store, rt, obj)


def release_foreground(store: Store, rt: ResourceType, owner: Obj) -> None:
    """Remove ``foregroundDeletion`` once no blocking dependent of ``owner`` remains."""
    uid = owner["metadata"]["uid"]
    blocking = [
        d
        for _rt, d in dependents(store, uid)
        if any(
            r.get("uid") == uid and r.get("blockOwnerDeletion")
            for r in d["metadata"].get("ownerReferences") or []
        )
    ]
    if not blocking:
        _remove_finalizer(store, rt, owner, FOREGROUND)


def on_removed(store: Store, rt: ResourceType, obj: Obj) -> None:
    """After ``obj`` has left the store: collect its dependents, release waiting owners."""
    uid = obj["metadata"]["uid"]
    for drt, d in list(dependents(store, uid)):
        others = [
            r.get("uid") for r in d["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
        ]
        if any(_exists(store, o) for o in others):
            _drop_owner_ref(store, drt, d, uid)
        else:
            with contextlib.suppress(NotFound):  # deleted by an earlier cascade
                store.delete(drt, d["metadata"].get("namespace"), d["metadata"]["name"])
    for ref in obj["metadata"].get("ownerReferences") or []:
        for ort, o in list(store.iter_objects()):
            meta = o["metadata"]
            if meta.get("uid") == ref.get("uid") and FOREGROUND in (meta.get("finalizers") or []):
                release_foreground(store, ort, o)
    ns = obj["metadata"].get("namespace")
    if rt.namespaced and ns:
        store.finish_namespace_if_empty(ns)
