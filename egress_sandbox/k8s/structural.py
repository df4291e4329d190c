"""Schema checks on request bodies: CRD openAPIV3Schema validation, and unknown-field pruning.

Custom resources are validated against their CRD schema (type, enum, bounds, required,
pattern, item counts) and pruned of undeclared fields, unless the schema says
``x-kubernetes-preserve-unknown-fields``. For every kind, fields the schema does not declare
are reported, so the server can honour ``fieldValidation=Strict|Warn|Ignore``.
"""

from __future__ import annotations

import re
from typing import Any

from egress_sandbox.k8s.fielderrors import FieldErrors
from egress_sandbox.k8s.schemas import Schema, is_open, items, prop, resolve, types_of

# Fields every object has that schemas need not declare.
_ALWAYS = frozenset({"apiVersion", "kind", "metadata"})


def _open(node: Schema, crd: bool) -> bool:
    if not crd:
        return is_open(node)
    # In a CRD schema an object without properties keeps nothing, unless told to preserve.
    return bool(node.get("x-kubernetes-preserve-unknown-fields")) or (
        isinstance(node.get("additionalProperties"), (dict, bool))
        and node.get("additionalProperties") is not False
    )


def prune_unknown(obj: Any, schema: Schema | None, path: str = "", crd: bool = False) -> list[str]:
    """Drop fields the schema does not declare; return their paths (``spec.foo``)."""
    unknown: list[str] = []
    if schema is None or not isinstance(obj, dict):
        return unknown
    node = resolve(schema)
    if isinstance(obj, dict) and not _open(node, crd):
        for key in list(obj):
            if not path and key in _ALWAYS:
                continue
            sub = prop(node, key)
            here = f"{path}.{key}" if path else key
            if sub is None:
                unknown.append(here)
                del obj[key]
            else:
                unknown += _descend(obj[key], sub, here, crd)
    elif isinstance(obj, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, value in obj.items():
            unknown += _descend(value, node["additionalProperties"], f"{path}.{key}", crd)
    if (
        not path
        and isinstance(obj.get("metadata"), dict)
        and "properties" in resolve(prop(node, "metadata") or {})
    ):
        unknown += prune_unknown(obj["metadata"], prop(node, "metadata"), "metadata")
    return unknown


def _descend(value: Any, sub: Schema, here: str, crd: bool) -> list[str]:
    if isinstance(value, dict):
        return prune_unknown(value, sub, here, crd)
    if isinstance(value, list):
        out: list[str] = []
        it = items(sub)
        for i, v in enumerate(value):
            out += _descend(v, it or {}, f"{here}[{i}]", crd)
        return out
    return []


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _type_ok(value: Any, wanted: str) -> bool:
    if wanted in ("integer", "number") and isinstance(value, bool):
        return False
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(wanted, (object,)))


def validate(value: Any, schema: Schema, path: str, errs: FieldErrors) -> None:
    """Validate ``value`` at ``path`` against a CRD OpenAPI v3 schema, worded as the apiserver."""
    node = resolve(schema)
    if value is None:
        if node.get("nullable"):
            return
        if types_of(node):
            errs.type_invalid(
                path, "null", f'{path} in body must be of type {min(types_of(node))}: "null"'
            )
        return
    if node.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, (int, str)) and not isinstance(value, bool)):
            errs.type_invalid(path, value, f"{path} in body must be of type integer-or-string")
        return
    wanted = sorted(types_of(node))
    if wanted and not any(_type_ok(value, w) for w in wanted):
        actual = _json_type_name(value)
        errs.type_invalid(
            path,
            actual,
            f"{path} in body must be of type {wanted[0]}: {actual!r}".replace("'", '"'),
        )
        return
    enum = node.get("enum")
    if isinstance(enum, list) and value not in enum:
        errs.not_supported(path, value, [str(e) for e in enum])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _bounds(value, node, path, errs)
    if isinstance(value, str):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, value):
            errs.invalid(path, value, f"{path} in body should match '{pattern}'")
        if "maxLength" in node and len(value) > node["maxLength"]:
            errs.too_long(path, node["maxLength"])
        if "minLength" in node and len(value) < node["minLength"]:
            errs.invalid(
                path, value, f"{path} in body should be at least {node['minLength']} chars long"
            )
    if isinstance(value, list):
        if "maxItems" in node and len(value) > node["maxItems"]:
            errs.too_many(path, len(value), node["maxItems"])
        if "minItems" in node and len(value) < node["minItems"]:
            errs.invalid(
                path, len(value), f"{path} in body should have at least {node['minItems']} items"
            )
        it = items(node)
        if it is not None:
            for i, v in enumerate(value):
                validate(v, it, f"{path}[{i}]", errs)
    if isinstance(value, dict):
        for req in node.get("required") or []:
            if req not in value:
                errs.required(f"{path}.{req}" if path else req)
        for key, v in value.items():
            if not path and key in _ALWAYS:
                continue
            sub = prop(node, key)
            if sub is not None:
                validate(v, sub, f"{path}.{key}" if path else key, errs)


def _bounds(value: float, node: Schema, path: str, errs: FieldErrors) -> None:
    lo, hi = node.get("minimum"), node.get("maximum")
    if lo is not None:
        if node.get("exclusiveMinimum") and value <= lo:
            errs.invalid(path, value, f"{path} in body should be greater than {lo}")
        elif value < lo:
            errs.invalid(path, value, f"{path} in body should be greater than or equal to {lo}")
    if hi is not None:
        if node.get("exclusiveMaximum") and value >= hi:
            errs.invalid(path, value, f"{path} in body should be less than {hi}")
        elif value > hi:
            errs.invalid(path, value, f"{path} in body should be less than or equal to {hi}")


def _json_type_name(v: Any) -> str:
    for name, t in (
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("array", list),
        ("object", dict),
    ):
        if isinstance(v, t):
            return name
    return "null"
