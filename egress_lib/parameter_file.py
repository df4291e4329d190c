"""Read a parameters file as YAML, refusing what no parameters file needs before it costs.

A parameters file is a few kilobytes written by hand. What is refused, each as one
:class:`Problem` naming the file position: files over :data:`MAX_BYTES`, bytes that are not
UTF-8, a document that would have more than :data:`MAX_NODES` nodes with its aliases expanded
(a "billion laughs" file: PyYAML shares aliased nodes, but validation and error messages would
expand them; the count is taken on the composed nodes, before anything is built), and a key
given twice in one mapping (YAML keeps the last one silently: the first would be lost unsaid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

from egress_lib.errors import ParameterError, Problem

MAX_BYTES = 1024 * 1024
# Nodes of the document with every alias expanded: a hand-written file has a few hundred.
MAX_NODES = 100_000


class _Refused(yaml.YAMLError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _where(node: Node | None) -> str:
    mark = getattr(node, "start_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[object, Node] = {}
            for key_node, _ in node.value:
                try:
                    key = self.construct_object(key_node, deep=True)
                    hash(key)
                except (ConstructorError, TypeError):
                    continue  # the base class reports unhashable keys itself
                if key in seen:
                    raise _Refused(
                        Problem(
                            f"<yaml {_where(key_node)}>",
                            key,
                            "each key once per mapping",
                            f"key {key!r} is given twice (first at {_where(seen[key])}); YAML "
                            "would keep only the last",
                        )
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _expanded_size(root: Node) -> int:
    """How many nodes ``root`` has with every alias expanded (stops counting past the limit)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:  # an anchor inside itself: infinite once expanded
            return MAX_NODES + 1
        busy.add(key)
        total = 1
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_NODES:
                break
        busy.discard(key)
        sizes[key] = total
        return total

    return size(root)


def read(path: Path) -> object:
    """The file's YAML document, or :class:`ParameterError` naming what is wrong and where."""
    label = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ParameterError(
            Problem("<file>", label, "a readable YAML file", f"cannot read: {e.strerror}")
        ) from None
    if len(raw) > MAX_BYTES:
        raise ParameterError(
            Problem(
                "<file>",
                None,
                f"a parameters file of at most {MAX_BYTES // 1024} KiB",
                f"the file is larger than {MAX_BYTES // 1024} KiB",
            ),
            source=label,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ParameterError(
            Problem(
                f"<file line {line}>",
                None,
                "UTF-8 text",
                f"byte {e.start} (0x{raw[e.start]:02x}) is not UTF-8",
            ),
            source=label,
        ) from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_NODES:
            raise _Refused(
                Problem(
                    "<yaml>",
                    None,
                    "a parameters document of at most "
                    f"{MAX_NODES} values with its YAML aliases (*name) expanded",
                    "the aliases would expand it beyond that: refused before expanding",
                )
            )
        return loader.construct_document(node)
    except _Refused as e:
        raise ParameterError(e.problem, source=label) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = getattr(e, "problem", None) or str(e)
        raise ParameterError(
            Problem(f"<yaml {where}>", None, "valid YAML", f"YAML syntax error: {what}"),
            source=label,
        ) from None
    finally:
        loader.dispose()
