"""Schemas of the served kinds: the bundled Kubernetes 1.32 definitions, and CRD schemas.

The built-in definitions come from the ``kubernetes_validate`` package (JSON Schema with the
``x-kubernetes-*`` extensions kept). Patch logic, field validation and the OpenAPI documents all
walk schemas through :func:`resolve`, :func:`prop` and :func:`items`, which work the same on the
bundled definitions (with ``$ref``) and on a CRD's self-contained ``openAPIV3Schema``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no stubs or py.typed

from egress_sandbox.k8s.types import ResourceType

Schema = dict[str, Any]

_DEFS_FILE = (
    Path(kubernetes_validate.__file__).parent
    / "kubernetes-json-schema"
    / "v1.32.0-local"
    / "_definitions.json"
)
_REF_PREFIX = "#/$defs/"


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, Schema]:
    """All bundled definitions by name (``io.k8s.api.core.v1.Service`` …); read once."""
    with _DEFS_FILE.open() as f:
        defs: dict[str, Schema] = json.load(f)["$defs"]
    return defs


@functools.lru_cache(maxsize=1)
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # Prefer the canonical package (io.k8s.api.*) over re-exports.
            out.setdefault(key, name)
    return out


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _gvk_index().get((group, version, kind))


def type_schema(rt: ResourceType) -> Schema | None:
    """The schema of a served kind: the CRD's for custom types, else the bundled one."""
    if rt.schema is not None:
        return rt.schema
    name = definition_name(rt.group, rt.version, rt.kind)
    return definitions()[name] if name else None


def resolve(node: Schema | None) -> Schema:
    """Follow ``$ref`` (and single-element ``allOf``) to the schema that has the content."""
    seen = 0
    while node is not None and seen < 20:
        seen += 1
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            node = definitions().get(ref[len(_REF_PREFIX) :])
            continue
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in node:
            node = all_of[0]
            continue
        return node
    return {}


def types_of(node: Schema) -> set[str]:
    """The JSON types a schema allows, ``null`` dropped (``type: [X, "null"]`` is optional X)."""
    t = node.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {x for x in t if x != "null"}
    return set()


def prop(node: Schema | None, key: str) -> Schema | None:
    """The schema of field ``key`` of an object schema, or None when the field is unknown."""
    n = resolve(node)
    props = n.get("properties")
    if isinstance(props, dict) and key in props:
        sub: Schema = props[key]
        return sub
    extra = n.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


def items(node: Schema | None) -> Schema | None:
    n = resolve(node)
    it = n.get("items")
    return it if isinstance(it, dict) else None


def is_open(node: Schema | None) -> bool:
    """True when a schema accepts any fields (free-form map, preserve-unknown-fields, none)."""
    if node is None:
        return True
    n = resolve(node)
    if n.get("x-kubernetes-preserve-unknown-fields"):
        return True
    if "oneOf" in n or "anyOf" in n:
        return True
    if n.get("additionalProperties") not in (None, False):
        return True
    # Objects without declared properties (e.g. RawExtension, JSON) accept anything.
    return "properties" not in n and not types_of(n) - {"object"}
