"""Field paths as structured-merge-diff names them, for managedFields and apply conflicts.

A path is a tuple of segments: ``f:name`` (field), ``k:{"port":80,"protocol":"TCP"}``
(element of a list-map), ``v:"x"`` (element of a set). Atomic lists and atomic maps are leaves.
"""

from __future__ import annotations

import json
from typing import Any

from egress_sandbox.k8s.schemas import Schema, items, prop, resolve

Path = tuple[str, ...]
Obj = dict[str, Any]

# Server-owned metadata never appears in managedFields.
_SERVER_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def list_keys(field_schema: Schema | None) -> tuple[str, list[str]]:
    """(list type, map keys) of a list field: ``map``, ``set`` or ``atomic``."""
    if field_schema is None:
        return "atomic", []
    for node in (field_schema, resolve(field_schema)):
        lt = node.get("x-kubernetes-list-type")
        if lt == "map":
            return "map", list(node.get("x-kubernetes-list-map-keys") or [])
        if lt in ("set", "atomic"):
            return str(lt), []
        mk = node.get("x-kubernetes-patch-merge-key")
        if mk:
            return "map", [str(mk)]
    return "atomic", []


def _is_atomic_map(field_schema: Schema | None) -> bool:
    return field_schema is not None and resolve(field_schema).get("x-kubernetes-map-type") in (
        "atomic",
        "granular_atomic",
    )


def key_segment(element: Obj, keys: list[str]) -> str:
    return "k:" + json.dumps({k: element.get(k) for k in keys}, separators=(",", ":"))


def leaf_paths(obj: Any, schema: Schema | None, top: bool = True) -> set[Path]:
    """Every leaf field path set in ``obj`` (the fields an operation owns)."""
    out: set[Path] = set()
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if top and key in ("apiVersion", "kind", "status"):
            continue
        sub = prop(schema, key)
        here: Path = (f"f:{key}",)
        if top and key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _SERVER_META}
            out |= {here + p for p in leaf_paths(meta, sub, top=False)}
            continue
        if isinstance(value, dict) and value and not _is_atomic_map(sub):
            out |= {here + p for p in leaf_paths(value, sub, top=False)}
        elif isinstance(value, list) and value:
            lt, keys = list_keys(sub)
            if lt == "map" and keys and all(isinstance(e, dict) for e in value):
                for e in value:
                    seg = key_segment(e, keys)
                    inner = leaf_paths(e, items(sub), top=False)
                    out |= {(*here, seg, *p) for p in inner} or {(*here, seg)}
            elif lt == "set":
                out |= {(*here, "v:" + json.dumps(e, separators=(",", ":"))) for e in value}
            else:
                out.add(here)
        else:
            out.add(here)
    return out


def get_at(obj: Any, path: Path) -> Any:
    cur = obj
    for seg in path:
        kind, _, rest = seg.partition(":")
        if kind == "f" and isinstance(cur, dict):
            cur = cur.get(rest)
        elif kind == "k" and isinstance(cur, list):
            want = json.loads(rest)
            cur = next(
                (
                    e
                    for e in cur
                    if isinstance(e, dict) and all(e.get(k) == v for k, v in want.items())
                ),
                None,
            )
        elif kind == "v" and isinstance(cur, list):
            v = json.loads(rest)
            cur = v if v in cur else None
        else:
            return None
        if cur is None:
            return None
    return cur


def remove_at(obj: Any, path: Path) -> None:
    """Delete the field at ``path``; parents left empty by the removal go too."""
    if not path:
        return
    parents = [obj]
    for seg in path[:-1]:
        nxt = get_at(parents[-1], (seg,))
        if nxt is None:
            return
        parents.append(nxt)
    for depth in range(len(path) - 1, -1, -1):
        container, seg = parents[depth], path[depth]
        kind, _, rest = seg.partition(":")
        if kind == "f" and isinstance(container, dict):
            container.pop(rest, None)
        elif isinstance(container, list):
            target = get_at(container, (seg,))
            if target is not None:
                container.remove(target)
        if container or depth == 0:
            return


def to_fields_v1(paths: set[Path]) -> Obj:
    root: Obj = {}
    for p in sorted(paths):
        node = root
        for seg in p:
            node = node.setdefault(seg, {})
            if seg.startswith("k:"):
                node.setdefault(".", {})
    return root


def from_fields_v1(fields: Obj, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for seg, child in fields.items():
        if seg == ".":
            continue
        inner = {c for c in (child or {}) if c != "."}
        if inner:
            out |= from_fields_v1(child, (*prefix, seg))
        else:
            out.add((*prefix, seg))
    return out


def render(path: Path) -> str:
    """``.spec.ports[port=80,protocol="TCP"].targetPort``, as conflict messages print paths."""
    out = ""
    for seg in path:
        kind, _, rest = seg.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            kv = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in kv.items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
    return out


def overlaps(a: Path, b: Path) -> bool:
    """True when one path is the other or contains it (an atomic leaf owns its whole subtree)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]
