"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch.

Strategic merge patch follows the schema's ``x-kubernetes-patch-strategy`` and
``x-kubernetes-patch-merge-key`` (ports by port, containers and env by name, finalizers as a
set) and the directives ``$patch`` (replace/delete/merge), ``$retainKeys``,
``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>`` that kubectl sends.
"""

from __future__ import annotations

import copy
from typing import Any

from egress_sandbox.k8s.errors import ApiError, BadRequest
from egress_sandbox.k8s.schemas import Schema, items, prop, resolve

Json = Any


def _invalid_patch() -> ApiError:
    # kube-apiserver drops the jsonpatch library's message and answers with this sentence.
    return ApiError(
        "the server rejected our request due to an error in our request",
        code=422,
        reason="Invalid",
        details={},
    )


# ---- RFC 6902 -------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid_patch()
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Json, parts: list[str]) -> tuple[Json, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise _invalid_patch()
    return cur, parts[-1]


def _get(doc: Json, parts: list[str]) -> Json:
    if not parts:
        return doc
    parent, key = _parent(doc, parts)
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent[int(key)]
    raise _invalid_patch()


def _add(doc: Json, parts: list[str], value: Json) -> Json:
    if not parts:
        return value
    parent, key = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            parent.insert(int(key), value)
        else:
            raise _invalid_patch()
    else:
        raise _invalid_patch()
    return doc


def _remove(doc: Json, parts: list[str]) -> Json:
    if not parts:
        raise _invalid_patch()
    parent, key = _parent(doc, parts)
    if isinstance(parent, dict) and key in parent:
        return parent.pop(key)
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent.pop(int(key))
    raise _invalid_patch()


def json_patch(doc: Json, ops: Json) -> Json:
    if not isinstance(ops, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise _invalid_patch()
        kind, parts = op["op"], _pointer(str(op.get("path", "")))
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _get(doc, parts)  # the target must exist
            value = copy.deepcopy(op.get("value"))
            if not parts:
                doc = value
            else:
                parent, key = _parent(doc, parts)
                parent[int(key) if isinstance(parent, list) else key] = value
        elif kind in ("move", "copy"):
            src = _pointer(str(op.get("from", "")))
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise _invalid_patch()
        else:
            raise _invalid_patch()
    return doc


# ---- RFC 7386 -------------------------------------------------------------------------------


def merge_patch(doc: Json, patch: Json) -> Json:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- strategic merge patch ------------------------------------------------------------------

_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def _strategy(field_schema: Schema | None) -> tuple[str, str | None]:
    if field_schema is None:
        return "", None
    # Extensions sit on the property itself, or on the definition it references.
    for node in (field_schema, resolve(field_schema)):
        s = node.get("x-kubernetes-patch-strategy")
        if s:
            return str(s), node.get("x-kubernetes-patch-merge-key")
    return "", None


def strategic_merge(original: Json, patch: Json, schema: Schema | None) -> Json:
    """Apply a strategic merge patch to ``original`` (an object) following ``schema``."""
    if not isinstance(patch, dict):
        raise BadRequest("unable to find api field in struct Unknown for the json field")
    base = copy.deepcopy(original) if isinstance(original, dict) else {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Json]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_SET_ORDER):
            orders[key[len(_SET_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(base.get(field), list):
                base[field] = [x for x in base[field] if x not in value]
            continue
        sub = prop(schema, key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged = strategic_merge(base[key], value, sub)
            if merged is None:
                base.pop(key, None)
            else:
                base[key] = merged
        elif isinstance(value, dict):
            merged = strategic_merge({}, value, sub)
            if merged is not None:
                base[key] = merged
        elif isinstance(value, list):
            base[key] = _merge_list(base.get(key), value, sub)
        else:
            base[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(base.get(field), list):
            base[field] = _reorder(base[field], order, _strategy(prop(schema, field))[1])
    if isinstance(retain, list):
        base = {k: v for k, v in base.items() if k in retain}
    return base


def _merge_list(original: Json, patch: list[Json], field_schema: Schema | None) -> list[Json]:
    strategy, merge_key = _strategy(field_schema)
    current = copy.deepcopy(original) if isinstance(original, list) else []
    if "merge" not in strategy.split(","):
        return [_strip_directives(x) for x in patch]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if not merge_key:
        # A merged list of primitives is a set (finalizers).
        for x in patch:
            if x not in current:
                current.append(copy.deepcopy(x))
        return current
    item_schema = items(field_schema)
    for x in patch:
        if not isinstance(x, dict):
            raise BadRequest(f"unable to find merge key {merge_key!r} in patch element")
        key = x.get(merge_key)
        idx = next(
            (i for i, c in enumerate(current) if isinstance(c, dict) and c.get(merge_key) == key),
            None,
        )
        if x.get("$patch") == "delete":
            if idx is not None:
                current.pop(idx)
            continue
        if idx is None:
            current.append(_strip_directives(strategic_merge({}, x, item_schema)))
        else:
            current[idx] = strategic_merge(current[idx], x, item_schema)
    return current


def _reorder(values: list[Json], order: list[Json], merge_key: str | None) -> list[Json]:
    def ident(v: Json) -> Json:
        return v.get(merge_key) if merge_key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    ranked = sorted(
        range(len(values)),
        key=lambda i: (
            wanted.index(ident(values[i])) if ident(values[i]) in wanted else len(wanted),
            i,
        ),
    )
    return [values[i] for i in ranked]


def _strip_directives(x: Json) -> Json:
    if isinstance(x, dict):
        return {k: _strip_directives(v) for k, v in x.items() if not k.startswith("$")}
    if isinstance(x, list):
        return [_strip_directives(v) for v in x]
    return x
