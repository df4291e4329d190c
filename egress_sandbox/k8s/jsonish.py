"""Parsing request bodies into JSON values the way kube-apiserver's decoders see them.

Python's parsers accept more than Go's: ``NaN``, ``1e999``, lone surrogates, YAML timestamps,
binary and sets, aliases that expand a kilobyte into gigabytes, nesting that overflows the
recursion limit. Each is either refused with a :class:`BodyError` (worded like Go's decoder) or
turned into what the Go side would hold, so no handler ever meets a value JSON cannot encode.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML without libyaml: the same, slower
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# Go's decoder allows 10000 levels; Python's recursion limit is 1000 and every walker of an
# object recurses, so the sandbox is stricter (no object of the sandbox's kinds comes close).
MAX_DEPTH = 100
_EXCESSIVE = "yaml: document contains excessive aliasing"
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyError(ValueError):
    """A body Go's decoder would refuse; the message is the decoder's."""


def _constant(name: str) -> Any:
    raise BodyError(f"invalid character '{name[0]}' looking for beginning of value")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def parse_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Go reads invalid UTF-8 inside strings as U+FFFD; outside them it is a syntax error,
        # which the JSON parser below reports.
        text = data.decode("utf-8", "replace")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except RecursionError as exc:
        raise BodyError("exceeded max depth") from exc
    except json.JSONDecodeError as exc:
        raise BodyError(str(exc).splitlines()[0]) from exc
    _measure(value)
    # Lone surrogates can only come from \u escapes; Go decodes them as U+FFFD.
    return _plain(value) if "\\u" in text and _has_surrogate(value) else value


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


class _Loader(_SafeLoader):
    """YAML 1.1 as go-yaml v2 reads it for YAMLToJSON: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(data: bytes) -> Any:
    try:
        value = yaml.load(data, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except RecursionError as exc:
        raise BodyError("exceeded max depth") from exc
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise BodyError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    expanded, distinct = _measure(value)
    if expanded > 1000 and expanded - distinct > 100:
        # go-yaml v2: nodes decoded through aliases may be at most 99% of all decoded nodes
        # up to 400000 of them, falling to 10% at 4000000.
        ratio = 0.99 - 0.89 * min(1.0, max(0.0, (expanded - 400_000) / 3_600_000))
        if (expanded - distinct) / expanded > ratio:
            raise BodyError(f"error converting YAML to JSON: {_EXCESSIVE}")
    return _plain(value)


def _key(k: Any) -> str:
    """A YAML map key as YAMLToJSON writes it."""
    if isinstance(k, str):
        return _SURROGATE.sub("\ufffd", k)
    if k is None:
        return "null"
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, (int, float)):
        return json.dumps(k)
    raise BodyError(f"error converting YAML to JSON: unsupported map key {type(k).__name__}")


def _measure(value: Any) -> tuple[int, int]:
    """(nodes with aliases expanded, distinct nodes); refuses nesting beyond MAX_DEPTH.

    A post-order walk over the graph (aliases make it a DAG): each node once, its expanded size
    from its children's, so an alias bomb is measured without being expanded.
    """
    sizes: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            distinct += 1
            sizes[id(node)] = 1 + sum(
                sizes[id(c)] if isinstance(c, (dict, list)) else 1 for c in children
            )
            continue
        if id(node) in sizes:
            continue  # an alias of a node measured already
        if depth > MAX_DEPTH:
            raise BodyError("exceeded max depth")
        sizes[id(node)] = -1  # on the current path
        stack.append((node, depth, True))
        for child in children:
            if isinstance(child, (dict, list)):
                if sizes.get(id(child)) == -1:
                    raise BodyError("error converting YAML to JSON: recursive alias")
                stack.append((child, depth + 1, False))
    return sizes.get(id(value), 1), distinct


def _plain(value: Any) -> Any:
    """A fresh tree of JSON types (aliases expanded, strings valid UTF-8)."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, bytes):  # !!binary: go-yaml gives the decoded bytes as a string
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BodyError("error converting YAML to JSON: json: unsupported value: NaN/Inf")
        return value
    raise BodyError(f"error converting YAML to JSON: unsupported value {type(value).__name__}")
