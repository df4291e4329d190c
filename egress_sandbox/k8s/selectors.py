"""Label selectors (equality- and set-based) and field selectors, parsed as kube-apiserver does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from egress_sandbox.k8s.errors import BadRequest

Obj = dict[str, Any]

_SET_RE = re.compile(r"^\s*(!)?\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")
_CMP_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(<|>)\s*(-?[0-9]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in | notin | exists | !exists | gt | lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "in":
            return has and v in self.values
        if self.op == "notin":
            return not has or v not in self.values
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if not has or v is None or not v.lstrip("-").isdigit():
            return False
        return int(v) > int(self.values[0]) if self.op == "gt" else int(v) < int(self.values[0])


def _split_top(expr: str) -> list[str]:
    """Split on commas that are not inside ``(...)``."""
    parts, depth, cur = [], 0, ""
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_label_selector(expr: str | None) -> list[Requirement]:
    if not expr:
        return []
    reqs: list[Requirement] = []
    for part in _split_top(expr):
        if m := _CMP_RE.match(part):
            reqs.append(Requirement(m[1], "gt" if m[2] == ">" else "lt", (m[3],)))
        elif m := _EQ_RE.match(part):
            reqs.append(Requirement(m[1], "notin" if m[2] == "!=" else "in", (m[3],)))
        elif (m := _SET_RE.match(part)) and not (m[1] and m[3]):
            if m[3]:
                vals = tuple(v.strip() for v in m[4].split(",") if v.strip())
                reqs.append(Requirement(m[2], m[3], vals))
            else:
                reqs.append(Requirement(m[2], "!exists" if m[1] else "exists"))
        else:
            raise BadRequest(f"unable to parse requirement: found '{part.strip()}'")
    return reqs


def labels_match(reqs: list[Requirement], obj: Obj) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def _field_value(obj: Obj, path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# Field selectors each kind supports, beyond metadata.name and metadata.namespace.
_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "status.phase",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "Node": frozenset({"spec.unschedulable"}),
}


def parse_field_selector(expr: str | None, kind: str) -> Callable[[Obj], bool]:
    """A predicate for ``fieldSelector``; unsupported fields are 400 as the real server says."""
    if not expr:
        return lambda _o: True
    checks: list[tuple[str, bool, str]] = []
    for part in _split_top(expr):
        m = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise BadRequest(f"invalid selector: '{expr}'; can't understand '{part}'")
        field, op, value = m[1], m[2], m[3]
        if field not in ("metadata.name", "metadata.namespace") and field not in _FIELDS.get(
            kind, frozenset()
        ):
            raise BadRequest(
                f"field label not supported: {field}",
                details={
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "message": (
                                f'"{field}" is not a known field selector: '
                                'only "metadata.name", "metadata.namespace"'
                            ),
                            "field": "fieldSelector",
                        }
                    ]
                }
                if kind not in _FIELDS
                else None,
            )
        checks.append((field, op == "!=", value))

    def match(obj: Obj) -> bool:
        for field, negate, value in checks:
            actual = _field_value(obj, field)
            if field == "source" and kind == "Event":
                actual = _field_value(obj, "source.component")
            if (actual == value) == negate:
                return False
        return True

    return match
