"""The CRD controller: CustomResourceDefinitions become served types at once.

It subscribes to the store, so a CRD's types are registered on the writer's thread before the
create call returns: the custom resources can be created by the very next request, as kubectl
``apply -f`` of a CRD followed by its CRs expects.
"""

from __future__ import annotations

import copy

from egress_sandbox.k8s.store import Obj, Store, WatchEvent, now_rfc3339
from egress_sandbox.k8s.types import ResourceType

_CRD_GROUP = "apiextensions.k8s.io"
_CR_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def resource_types(crd: Obj) -> list[ResourceType]:
    """One ResourceType per served version of a CRD."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subresources = ("status",) if "status" in (v.get("subresources") or {}) else ()
        out.append(
            ResourceType(
                group=spec["group"],
                version=v["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                verbs=_CR_VERBS,
                subresources=subresources,
                categories=tuple(names.get("categories") or ()),
                schema=copy.deepcopy((v.get("schema") or {}).get("openAPIV3Schema") or {}),
            )
        )
    return out


def _conditions(crd: Obj) -> list[Obj]:
    now = now_rfc3339()
    return [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": now,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": now,
        },
    ]


class CrdController:
    """Keeps the store's TypeRegistry in step with the CRDs in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def on_event(self, ev: WatchEvent) -> None:
        if ev.rtype.group != _CRD_GROUP or ev.rtype.kind != "CustomResourceDefinition":
            return
        crd = ev.object
        spec = crd.get("spec", {})
        group, plural = spec.get("group", ""), spec.get("names", {}).get("plural", "")
        if ev.type == "DELETED":
            for rt in [t for t in self.store.types.all() if (t.group, t.plural) == (group, plural)]:
                self.store.drop_type(rt)
            self.store.types.remove(group, plural)
            return
        if ev.type not in ("ADDED", "MODIFIED") or crd["metadata"].get("deletionTimestamp"):
            return
        wanted = resource_types(crd)
        for rt in self.store.types.all():
            if (rt.group, rt.plural) == (group, plural) and rt not in wanted:
                self.store.types.remove(group, plural)
                break
        for rt in wanted:
            self.store.types.add(rt)
        self._set_status(crd)

    def _set_status(self, crd: Obj) -> None:
        status = crd.get("status") or {}
        accepted = dict(crd["spec"]["names"])
        accepted.setdefault("singular", accepted["kind"].lower())
        accepted.setdefault("listKind", accepted["kind"] + "List")
        established = any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if established and status.get("acceptedNames") == accepted:
            return  # already done: this is our own status write coming back
        crd_rt = self.store.types.get(_CRD_GROUP, "v1", "customresourcedefinitions")
        assert crd_rt is not None
        new = copy.deepcopy(crd)
        new["status"] = {
            "conditions": status.get("conditions") if established else _conditions(crd),
            "acceptedNames": accepted,
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
        }
        new["metadata"].pop("resourceVersion", None)
        self.store.update(crd_rt, new, subresource="status")


def install_crd_controller(store: Store) -> CrdController:
    """Subscribe a CRD controller to ``store`` (once) and register already-stored CRDs."""
    existing = getattr(store, "_sandbox_crd_controller", None)
    if isinstance(existing, CrdController):
        return existing
    ctl = CrdController(store)
    store._sandbox_crd_controller = ctl  # type: ignore[attr-defined]
    store.subscribe(ctl.on_event)
    crd_rt = store.types.get(_CRD_GROUP, "v1", "customresourcedefinitions")
    assert crd_rt is not None
    for crd in store.list(crd_rt)[0]:
        for rt in resource_types(crd):
            store.types.add(rt)
    return ctl
