"""Server-side apply and field ownership (``metadata.managedFields``), in a simple model.

Each managedFields entry (manager, operation, subresource) owns a set of leaf field paths.
Update operations (create, PUT, non-apply PATCH) take the paths they changed from everyone;
apply operations conflict with other owners of a path whose value they change, unless forced.
Fields an applier stops applying are removed when nobody else owns them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from egress_sandbox.k8s.errors import ApiError
from egress_sandbox.k8s.fieldpaths import (
    Path,
    from_fields_v1,
    get_at,
    leaf_paths,
    list_keys,
    overlaps,
    remove_at,
    render,
    to_fields_v1,
)
from egress_sandbox.k8s.schemas import Schema, items, prop
from egress_sandbox.k8s.types import ResourceType

Obj = dict[str, Any]
Entry = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def manager_from_user_agent(user_agent: str | None) -> str:
    """The default field manager: the User-Agent up to its first ``/`` (``kubectl``)."""
    return (user_agent or "unknown").split("/", 1)[0][:128] or "unknown"


def _entries(obj: Obj) -> list[Entry]:
    return list(obj.get("metadata", {}).get("managedFields") or [])


def _paths(entry: Entry) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _ident(entry: Entry) -> tuple[str, str, str]:
    return (entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""))


def _store(
    obj: Obj,
    owned: dict[tuple[str, str, str], set[Path]],
    api_version: str,
    touched: set[tuple[str, str, str]],
    old_entries: list[Entry],
) -> None:
    by_id = {_ident(e): e for e in old_entries}
    out: list[Entry] = []
    for ident, paths in owned.items():
        if not paths:
            continue
        manager, operation, sub = ident
        prev = by_id.get(ident, {})
        entry: Entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version if ident in touched else prev.get("apiVersion", api_version),
            "time": _now() if ident in touched else prev.get("time", _now()),
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(paths),
        }
        if sub:
            entry["subresource"] = sub
        out.append(entry)
    if out:
        obj.setdefault("metadata", {})["managedFields"] = out
    else:
        obj.get("metadata", {}).pop("managedFields", None)


def _owned(obj: Obj) -> dict[tuple[str, str, str], set[Path]]:
    return {_ident(e): _paths(e) for e in _entries(obj)}


def _status_view(obj: Obj | None) -> Obj:
    return {"status": obj.get("status")} if obj and "status" in obj else {}


def record_update(
    rt: ResourceType,
    schema: Schema | None,
    old: Obj | None,
    new: Obj,
    manager: str,
    subresource: str = "",
) -> None:
    """Attribute the fields an update changed to ``manager`` (in ``new``'s managedFields)."""
    owned = _owned(old) if old else {}
    if subresource == "status":
        before = _status_leafs(old, schema)
        after = _status_leafs(new, schema)
    else:
        before = leaf_paths(old, schema) if old else set()
        after = leaf_paths(new, schema)
    changed = {p for p in after if old is None or get_at(old, p) != get_at(new, p)}
    removed = before - after
    ident = (manager, "Update", subresource)
    for key, paths in owned.items():
        owned[key] = {p for p in paths if p not in removed and not (key != ident and p in changed)}
    owned[ident] = owned.get(ident, set()) | changed
    _store(new, owned, rt.group_version, {ident} if changed else set(), _entries(old or {}))


def _status_leafs(obj: Obj | None, schema: Schema | None) -> set[Path]:
    if not obj or "status" not in obj:
        return set()
    sub = prop(schema, "status")
    return {("f:status", *p) for p in leaf_paths(obj["status"], sub, top=False)}


def _merge_applied(live: Any, applied: Any, schema: Schema | None) -> Any:
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(live)
    for key, value in applied.items():
        sub = prop(schema, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_applied(out[key], value, sub)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            lt, keys = list_keys(sub)
            cur = out[key]
            if lt == "map" and keys:
                for e in value:
                    # Keys the applied element leaves out (defaulted ones, like a port's
                    # protocol) match anything: the real server defaults the config first.
                    given = {k: e[k] for k in keys if isinstance(e, dict) and k in e}
                    idx = next(
                        (
                            i
                            for i, c in enumerate(cur)
                            if isinstance(c, dict) and all(c.get(k) == v for k, v in given.items())
                        ),
                        None,
                    )
                    if idx is None:
                        cur.append(copy.deepcopy(e))
                    else:
                        cur[idx] = _merge_applied(cur[idx], e, items(sub))
            elif lt == "set":
                cur.extend(copy.deepcopy(e) for e in value if e not in cur)
            else:
                out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _conflict(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    def who(e: Entry) -> str:
        s = json.dumps(e.get("manager", ""))
        if e.get("subresource"):
            s += f" with subresource {json.dumps(e['subresource'])}"
        if e.get("operation") == "Update":
            s += f" using {e.get('apiVersion')}"
            if e.get("time"):
                s += f" at {e['time']}"
        return s

    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who(e)}", "field": render(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        msg = f"Apply failed with 1 conflict: conflict with {who(e)}: {render(p)}"
    else:
        by: dict[str, list[Path]] = {}
        for e, p in conflicts:
            by.setdefault(who(e), []).append(p)
        lines: list[str] = []
        for w in sorted(by):
            lines.append(f"conflicts with {w}:")
            lines += [f"- {render(p)}" for p in by[w]]
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(msg, code=409, reason="Conflict", details={"causes": causes})


def apply(
    rt: ResourceType,
    schema: Schema | None,
    live: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    subresource: str = "",
) -> Obj:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: it does not exist)."""
    ident = (manager, "Apply", subresource)
    if subresource == "status":
        new_paths = _status_leafs(applied, schema)
    else:
        new_paths = leaf_paths(applied, schema)
    if live is None:
        result = copy.deepcopy(applied)
        result.setdefault("metadata", {}).pop("managedFields", None)
        _store(result, {ident: new_paths}, rt.group_version, {ident}, [])
        return result
    owned = _owned(live)
    entries = {_ident(e): e for e in _entries(live)}
    conflicts: list[tuple[Entry, Path]] = []
    for p in sorted(new_paths):
        if get_at(live, p) == get_at(applied, p):
            continue
        for other, paths in owned.items():
            if other == ident:
                continue
            hit = next((q for q in paths if overlaps(p, q)), None)
            if hit is None:
                continue
            if force:
                owned[other] = {q for q in paths if not overlaps(p, q)}
            else:
                conflicts.append((entries[other], p))
    if conflicts:
        raise _conflict(conflicts)
    body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    if subresource != "status":
        body.pop("status", None)
    merged: Obj = _merge_applied(live, body, schema)
    previous = owned.get(ident, set())
    for p in previous - new_paths:
        if not any(p in paths for other, paths in owned.items() if other != ident):
            remove_at(merged, p)
    owned[ident] = new_paths
    merged.setdefault("metadata", {})
    _store(merged, owned, rt.group_version, {ident}, _entries(live))
    return merged
