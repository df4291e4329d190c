"""OpenAPI v3 documents (``/openapi/v3`` and one per group-version), built from the schemas.

kubectl needs them: ``apply`` computes strategic merge patches from the patch extensions and
decides on server-side field validation from the PATCH operations' ``fieldValidation``
parameter; ``explain`` reads the kinds' schemas. Documents are cached per group-version and
keyed by a hash of the served types, so CRD changes produce new documents (and new hashes).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from egress_sandbox.k8s.schemas import Schema, definition_name, definitions
from egress_sandbox.k8s.types import ResourceType

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF_PREFIX = "#/$defs/"
_OUT_PREFIX = "#/components/schemas/"


def convert(node: Any) -> Any:
    """JSON Schema (``type: [X, "null"]``, ``#/$defs/``) to OpenAPI 3 (``type: X``, components)."""
    if isinstance(node, list):
        return [convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "type" and isinstance(v, list):
            kinds = [t for t in v if t != "null"]
            if kinds:
                out["type"] = kinds[0]
        elif k == "$ref" and isinstance(v, str):
            out["$ref"] = _OUT_PREFIX + v[len(_REF_PREFIX) :]
        elif k in ("properties", "patternProperties") and isinstance(v, dict):
            out[k] = {name: convert(sub) for name, sub in v.items()}
        else:
            out[k] = convert(v)
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; the real documents wrap it the same way.
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def _refs(node: Any, acc: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            if name not in acc:
                acc.add(name)
                _refs(definitions().get(name), acc)
        for v in node.values():
            _refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            _refs(v, acc)


def crd_schema_name(rt: ResourceType) -> str:
    """``com.alibabacloud.mse.v1.MseIngressConfig``: the name kube-apiserver gives CRD schemas."""
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"


def _crd_component(rt: ResourceType) -> Schema:
    schema: Schema = convert(rt.schema or {})
    props = dict(schema.get("properties") or {})
    props["apiVersion"] = {
        "type": "string",
        "description": (
            "APIVersion defines the versioned schema of this representation of an object."
        ),
    }
    props["kind"] = {
        "type": "string",
        "description": (
            "Kind is a string value representing the REST resource this object represents."
        ),
    }
    props["metadata"] = {
        "allOf": [{"$ref": _OUT_PREFIX + _OBJECT_META}],
        "description": "Standard object's metadata.",
    }
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [
        {"group": rt.group, "version": rt.version, "kind": rt.kind}
    ]
    return schema


def _param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string"},
        "uniqueItems": True,
    }


def _paths(rt: ResourceType, schema_name: str) -> dict[str, Any]:
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    base = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    ok = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": _OUT_PREFIX + schema_name}}},
        }
    }
    write_params = [
        _param("dryRun", "When present, indicates that modifications should not be persisted."),
        _param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity "
            "that is making these changes.",
        ),
        _param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects "
            "in the request containing unknown or duplicate fields.",
        ),
    ]

    def op(action: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "operationId": f"{action}{rt.kind}",
            "parameters": params or [],
            "responses": ok,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }

    verbs = set(rt.verbs)
    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = op("list")
    if "create" in verbs:
        collection["post"] = op("post", write_params)
    if "deletecollection" in verbs:
        collection["delete"] = op("deletecollection")
    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = op("get")
    if "update" in verbs:
        item["put"] = op("put", write_params)
    if "patch" in verbs:
        item["patch"] = op(
            "patch", [*write_params, _param("force", 'Force is going to "force" Apply requests.')]
        )
        # kubectl computes strategic merge patches only where the operation accepts them.
        media = [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
        if rt.schema is None:
            media.append("application/strategic-merge-patch+json")
        item["patch"]["requestBody"] = {
            "content": {
                m: {"schema": {"$ref": _OUT_PREFIX + "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
                for m in media
            },
            "required": True,
        }
    if "delete" in verbs:
        item["delete"] = op("delete")
    out = {base: collection}
    if item:
        out[f"{base}/{{name}}"] = item
    if "status" in rt.subresources:
        out[f"{base}/{{name}}/status"] = {
            k: v for k, v in item.items() if k in ("get", "put", "patch")
        }
    return out


class OpenApiDocs:
    """Builds and caches the v3 documents for a TypeRegistry's current content."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], dict[str, Any]] = {}

    @staticmethod
    def gv_path(group: str, version: str) -> str:
        return f"api/{version}" if not group else f"apis/{group}/{version}"

    @staticmethod
    def _hash(types: list[ResourceType]) -> str:
        key = json.dumps(
            [
                [
                    t.group,
                    t.version,
                    t.plural,
                    t.kind,
                    t.namespaced,
                    list(t.verbs),
                    list(t.subresources),
                    t.schema,
                ]
                for t in sorted(types, key=lambda t: t.plural)
            ],
            sort_keys=True,
        )
        return hashlib.sha512(key.encode()).hexdigest()[:64].upper()

    def root(self, by_gv: dict[tuple[str, str], list[ResourceType]]) -> dict[str, Any]:
        paths = {
            self.gv_path(g, v): {
                "serverRelativeURL": f"/openapi/v3/{self.gv_path(g, v)}?hash={self._hash(ts)}"
            }
            for (g, v), ts in sorted(by_gv.items())
        }
        return {"paths": paths}

    def document(
        self, group: str, version: str, types: list[ResourceType]
    ) -> tuple[str, dict[str, Any]]:
        """(hash, document) for one group-version."""
        h = self._hash(types)
        with self._lock:
            cached = self._cache.get((self.gv_path(group, version), h))
            if cached is not None:
                return h, cached
        names: set[str] = {_OBJECT_META, "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
        _refs(definitions()[_OBJECT_META], names)
        components: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for rt in types:
            if rt.schema is not None:
                schema_name = crd_schema_name(rt)
                components[schema_name] = _crd_component(rt)
            else:
                found = definition_name(rt.group, rt.version, rt.kind)
                if found is None:
                    continue
                schema_name = found
                names.add(found)
                _refs(definitions()[found], names)
            paths.update(_paths(rt, schema_name))
        for n in names:
            components[n] = convert(definitions()[n])
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.1"},
            "paths": paths,
            "components": {"schemas": dict(sorted(components.items()))},
        }
        with self._lock:
            self._cache[(self.gv_path(group, version), h)] = doc
        return h, doc
