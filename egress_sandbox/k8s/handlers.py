"""Resource verbs over the store: get, list, create, update, patch, delete, deletecollection.

Every handler takes a parsed :class:`Target` and the werkzeug request and returns
``(status, body, extra_headers)``; routing, auth, watch streaming and rendering live elsewhere.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from egress_sandbox.k8s import bodies, decoding, patch, ssa
from egress_sandbox.k8s.errors import ApiError, BadRequest, NotFound, UnsupportedMediaType
from egress_sandbox.k8s.schemas import type_schema
from egress_sandbox.k8s.selectors import labels_match, parse_field_selector, parse_label_selector
from egress_sandbox.k8s.store import Obj, Store
from egress_sandbox.k8s.structural import prune_unknown
from egress_sandbox.k8s.types import ResourceType

Result = tuple[int, Any, dict[str, str]]

# Kinds whose DELETE answers with the object rather than a Status (registry ReturnDeletedObject).
_RETURNS_OBJECT = frozenset({"Pod", "Service", "Namespace"})


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _user_agent_manager(request: Request) -> str:
    return ssa.manager_from_user_agent(request.headers.get("User-Agent"))


def check_identity(t: Target, obj: Obj, for_update: bool, normalize: bool = True) -> None:
    """The kind and version, then decoding into the kind's Go type, then namespace and name."""
    rt = t.rt
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):
            # The serializer reads apiVersion and kind first, into an anonymous struct.
            raise BadRequest(
                "couldn't get version/kind; json parse error: "
                + decoding.type_error(value, "", [key], "string")
            )
    if rt.schema is not None and (not api_version or not kind):
        raise BadRequest(f"Object 'Kind' is missing in '{json.dumps(obj, separators=(',', ':'))}'")
    if api_version and api_version != rt.group_version:
        raise BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.group_version})"
        )
    if kind and kind != rt.kind:
        raise BadRequest(
            f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise BadRequest(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            + decoding.type_error(meta, rt.kind, ["metadata"], "v1.ObjectMeta")
        )
    decoding.decode_builtin(rt, obj, normalize=normalize)
    if rt.namespaced:
        ns = meta.get("namespace")
        if ns and ns != t.namespace:
            raise BadRequest(
                "the namespace of the provided object does not match "
                "the namespace sent on the request"
            )
        meta["namespace"] = t.namespace
    if for_update and meta.get("name") != t.name:
        raise BadRequest(
            f"the name of the object ({meta.get('name', '')}) "
            f"does not match the name on the URL ({t.name})"
        )


def unknown_fields(t: Target, obj: Obj, mode: str) -> dict[str, str]:
    """Prune undeclared fields; Strict refuses them, Warn returns a Warning header."""
    found = prune_unknown(obj, type_schema(t.rt), crd=t.rt.schema is not None)
    if not found or mode == "Ignore":
        return {}
    if mode == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in found)
        raise BadRequest(
            f'{t.rt.kind} in version "{t.rt.version}" cannot be handled as a {t.rt.kind}: '
            f"strict decoding error: {listed}"
        )
    return {"Warning": ", ".join(f'299 - "unknown field \\"{f}\\""' for f in found)}


# ---- reads ------------------------------------------------------------------------------------


def get(store: Store, t: Target) -> Result:
    assert t.name is not None
    return 200, _external(t.rt, store.get(t.rt, t.namespace, t.name)), {}


def selected(store: Store, t: Target, request: Request) -> tuple[list[Obj], str]:
    labels = parse_label_selector(request.args.get("labelSelector"))
    fields = parse_field_selector(request.args.get("fieldSelector"), t.rt.kind)
    return store.list(t.rt, t.namespace, lambda o: labels_match(labels, o) and fields(o))


def list_(store: Store, t: Target, request: Request) -> Result:
    items, rv = selected(store, t, request)
    start = 0
    token = request.args.get("continue")
    if token:
        try:
            state = json.loads(base64.b64decode(token))
            start, rv = int(state["start"]), str(state["rv"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(
                "continue key is not valid: "
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            ) from exc
    limit = bodies.query_int(request, "limit") or 0
    page = items[start : start + limit] if limit > 0 else items[start:]
    meta: Obj = {"resourceVersion": rv}
    if limit > 0 and start + limit < len(items):
        meta["continue"] = base64.b64encode(
            json.dumps({"v": "meta.k8s.io/v1", "rv": int(rv), "start": start + limit}).encode()
        ).decode()
        meta["remainingItemCount"] = len(items) - start - limit
    body = {
        "kind": f"{t.rt.kind}List",
        "apiVersion": t.rt.group_version,
        "metadata": meta,
        "items": [_item(t.rt, o) for o in page],
    }
    return 200, body, {}


def _item(rt: ResourceType, o: Obj) -> Obj:
    # Built-in lists carry items without apiVersion/kind; custom resource lists keep them.
    if rt.schema is None:
        return {k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
    return o


def _external(rt: ResourceType, o: Obj) -> Obj:
    o["apiVersion"], o["kind"] = rt.group_version, rt.kind
    return o


# ---- writes -----------------------------------------------------------------------------------


def create(store: Store, t: Target, request: Request) -> Result:
    obj = bodies.decode_object(request, bodies.raw_body(request))
    check_identity(t, obj, for_update=False)
    headers = unknown_fields(t, obj, bodies.field_validation(request))
    obj["metadata"].pop("managedFields", None)
    for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
        obj["metadata"].pop(k, None)
    manager = bodies.field_manager(request, _user_agent_manager(request))
    ssa.record_update(t.rt, type_schema(t.rt), None, obj, manager)
    created = store.create(t.rt, obj, dry_run=bodies.dry_run(request))
    return 201, _external(t.rt, created), headers


def update(store: Store, t: Target, request: Request) -> Result:
    obj = bodies.decode_object(request, bodies.raw_body(request))
    check_identity(t, obj, for_update=True)
    headers = unknown_fields(t, obj, bodies.field_validation(request))
    manager = bodies.field_manager(request, _user_agent_manager(request))
    with store.lock:
        assert t.name is not None
        old = store.get(t.rt, t.namespace, t.name)
        obj["metadata"]["managedFields"] = old["metadata"].get("managedFields")
        if t.subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = obj.get("status")
            merged["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion")
            obj = merged
        ssa.record_update(t.rt, type_schema(t.rt), old, obj, manager, t.subresource or "")
        new = store.update(t.rt, obj, subresource=t.subresource, dry_run=bodies.dry_run(request))
    return 200, _external(t.rt, new), headers


def patch_(store: Store, t: Target, request: Request) -> Result:
    mt = bodies.media_type(request)
    if mt not in bodies.PATCH_TYPES:
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(bodies.PATCH_TYPES)}"
        )
    if mt == "application/strategic-merge-patch+json" and t.rt.schema is not None:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml"
        )
    is_apply = mt == "application/apply-patch+yaml"
    force = request.args.get("force", "") in ("true", "1")
    if "force" in request.args and not is_apply:
        raise _patch_options_invalid(
            "force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch"
        )
    manager = request.args.get("fieldManager", "")
    if is_apply and not manager:
        raise _patch_options_invalid(
            "fieldManager", "FieldValueRequired", "Required value: is required for apply patch"
        )
    manager = bodies.field_manager(request, _user_agent_manager(request))
    body = bodies.decode_patch(mt, bodies.raw_body(request))
    dry = bodies.dry_run(request)
    schema = type_schema(t.rt)
    mode = bodies.field_validation(request)
    assert t.name is not None
    with store.lock:
        current = store.try_get(t.rt, t.namespace, t.name)
        if is_apply:
            if not isinstance(body, dict):
                raise BadRequest("error decoding YAML: object expected")
            applied = copy.deepcopy(body)
            check_identity(t, applied, for_update=True, normalize=False)
            if not applied.get("apiVersion") or not applied.get("kind"):
                raise BadRequest("apiVersion and kind must be set in an apply patch")
            headers = unknown_fields(t, applied, mode)
            if applied["metadata"].get("managedFields"):
                raise BadRequest("metadata.managedFields must be nil")
            result = ssa.apply(t.rt, schema, current, applied, manager, force, t.subresource or "")
            if current is None:
                if t.subresource:
                    raise NotFound.of(t.rt.plural, t.rt.group, t.name)
                return 201, _external(t.rt, store.create(t.rt, result, dry_run=dry)), headers
        else:
            if current is None:
                raise NotFound.of(t.rt.plural, t.rt.group, t.name)
            result = _apply_patch(mt, current, body, schema)
            if not isinstance(result, dict):
                raise BadRequest("patched object is not an object")
            check_identity(t, result, for_update=True)
            headers = unknown_fields(t, result, mode)
            ssa.record_update(t.rt, schema, current, result, manager, t.subresource or "")
        meta = result.setdefault("metadata", {})
        # A resourceVersion in the patch is a precondition; otherwise the patch is atomic here.
        patch_rv = (
            (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        )
        meta["resourceVersion"] = patch_rv or current["metadata"]["resourceVersion"]
        new = store.update(t.rt, result, subresource=t.subresource, dry_run=dry)
    return 200, _external(t.rt, new), headers


def _apply_patch(mt: str, current: Obj, body: Any, schema: Any) -> Any:
    if mt == "application/json-patch+json":
        return patch.json_patch(current, body)
    if mt == "application/merge-patch+json":
        if not isinstance(body, dict):
            raise BadRequest(
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            )
        return patch.merge_patch(current, body)
    return patch.strategic_merge(current, body, schema)


def delete_options(request: Request) -> Obj:
    """DeleteOptions from the body and the query (the router reads them first, for the audit)."""
    data = bodies.raw_body(request)
    opts: Obj = {}
    if data.strip():
        try:
            opts = json.loads(data)
        except ValueError as exc:
            raise BadRequest(f"couldn't get version/kind; json parse error: {exc}") from exc
        if not isinstance(opts, dict):
            raise BadRequest("DeleteOptions must be an object")
    for k in ("propagationPolicy", "gracePeriodSeconds"):
        if k in request.args:
            opts[k] = request.args[k]
    if request.args.getlist("dryRun"):
        opts["dryRun"] = request.args.getlist("dryRun")
    policy = opts.get("propagationPolicy") or (
        "Orphan" if opts.get("orphanDependents") else "Background"
    )
    if policy not in ("Background", "Foreground", "Orphan"):
        raise ApiError(
            'DeleteOptions.meta.k8s.io "" is invalid: '
            f'propagationPolicy: Unsupported value: "{policy}": '
            'supported values: "Foreground", "Background", "Orphan", "nil"',
            code=422,
            reason="Invalid",
        )
    opts["propagationPolicy"] = policy
    for v in opts.get("dryRun") or []:
        if v != "All":
            raise BadRequest(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return opts


def delete(store: Store, t: Target, opts: Obj) -> Result:
    assert t.name is not None
    dry = bool(opts.get("dryRun"))
    pre = opts.get("preconditions") or {}
    with store.lock:
        last = store.delete(
            t.rt,
            t.namespace,
            t.name,
            dry_run=dry,
            preconditions=pre,
            propagation=opts["propagationPolicy"],
        )
        still_there = store.try_get(t.rt, t.namespace, t.name) is not None and not dry
    if still_there or t.rt.kind in _RETURNS_OBJECT or t.rt.schema is not None:
        return 200, _external(t.rt, last), {}
    return 200, _success(t.rt, last), {}


def _success(rt: ResourceType, obj: Obj) -> Obj:
    details: Obj = {
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"].get("uid", ""),
    }
    if rt.group:
        details["group"] = rt.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def delete_collection(store: Store, t: Target, request: Request, opts: Obj) -> Result:
    items, _rv = selected(store, t, request)
    deleted = []
    for o in items:
        try:
            deleted.append(
                store.delete(
                    t.rt,
                    o["metadata"].get("namespace"),
                    o["metadata"]["name"],
                    dry_run=bool(opts.get("dryRun")),
                    propagation=opts["propagationPolicy"],
                )
            )
        except NotFound:
            continue
    body = {
        "kind": f"{t.rt.kind}List",
        "apiVersion": t.rt.group_version,
        "metadata": {"resourceVersion": store.resource_version},
        "items": [_item(t.rt, o) for o in deleted],
    }
    return 200, body, {}


def _patch_options_invalid(field: str, reason: str, message: str) -> ApiError:
    """A 422 about the PatchOptions of the request (it has no name: details carry none)."""
    return ApiError(
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}',
        code=422,
        reason="Invalid",
        details={
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [{"reason": reason, "message": message, "field": field}],
        },
    )
