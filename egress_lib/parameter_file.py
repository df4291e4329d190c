"""Read a parameters file as YAML, refusing what no parameters file needs before it costs.

A parameters file is a few kilobytes written by hand. What is refused, each as one
:class:`Problem` naming the file position: files over :data:`MAX_BYTES` (unread), UTF-16 or
UTF-32 files and bytes that are not UTF-8, control characters, a document that would have more
than :data:`MAX_NODES` nodes with its aliases expanded (a "billion laughs" file: PyYAML shares
aliased nodes, but validation and error messages would expand them; the count is taken on the
composed nodes, before anything is built), a key given twice in one mapping (YAML keeps the
last one silently: the first would be lost unsaid), and tags such as ``!!python/object`` (the
safe loader builds plain data only). A syntax error names its line and column, and where the
unfinished quote or bracket began."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import Event
from yaml.nodes import MappingNode, Node

from egress_lib.errors import ParameterError, Problem

MAX_BYTES = 1024 * 1024
# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
# Nodes of the document with every alias expanded: a hand-written file has a few hundred.
MAX_NODES = 100_000
# Levels of nested lists and mappings: the schema has about six.
MAX_DEPTH = 50


class _Refused(yaml.YAMLError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _at(mark: object) -> str:
    """A YAML mark (pure-Python or libyaml's, or None) as "line L, column C", counted from 1."""
    line, column = getattr(mark, "line", None), getattr(mark, "column", None)
    if isinstance(line, int) and isinstance(column, int):
        return f"line {line + 1}, column {column + 1}"
    return "unknown position"


def _where(node: Node | None) -> str:
    return _at(getattr(node, "start_mark", None))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and nesting deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        # PyYAML composes recursively: 5,000 '[' would end in RecursionError, a traceback.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                peek: Callable[[], Event] = self.peek_event  # untyped in the stubs
                raise _Refused(
                    Problem(
                        f"<yaml {_at(peek().start_mark)}>",
                        None,
                        f"at most {MAX_DEPTH} levels of nested lists and mappings",
                        f"the document nests more than {MAX_DEPTH} levels deep: refused",
                    )
                )
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

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


def _expanded(root: Node) -> tuple[int, int]:
    """(nodes, depth) of ``root`` with every alias expanded; counting stops past the limits.

    Memoized per node, so the recursion goes no deeper than the composed document (which
    :meth:`_StrictLoader.compose_node` bounds), however deep the aliases would nest it.
    """
    seen: dict[int, tuple[int, int]] = {}
    busy: set[int] = set()
    endless = (MAX_NODES + 1, MAX_DEPTH + 1)

    def walk(node: Node) -> tuple[int, int]:
        key = id(node)
        if key in seen:
            return seen[key]
        if key in busy:  # an anchor inside itself: infinite once expanded
            return endless
        busy.add(key)
        total, depth = 1, 1
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            size, below = walk(child)
            total += size
            depth = max(depth, below + 1)
            if total > MAX_NODES or depth > MAX_DEPTH:
                break
        busy.discard(key)
        seen[key] = (total, depth)
        return total, depth

    return walk(root)


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
        try:
            size = f"{path.stat().st_size:,} bytes"
        except OSError:
            size = "its size unknown"
        raise ParameterError(
            Problem(
                "<file>",
                None,
                f"a parameters file of at most {MAX_BYTES // 1024} KiB",
                f"the file is larger than {MAX_BYTES // 1024} KiB ({size}); refused unread",
            ),
            source=label,
        )
    bom = next((name for mark, name in _BOMS if raw.startswith(mark)), None)
    if bom is not None:
        raise ParameterError(
            Problem(
                "<file line 1>",
                None,
                "UTF-8 text (save the file as UTF-8)",
                f"the file is {bom} (it starts with a {bom} byte order mark)",
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
    return parse(text, label)


def parse(text: str, label: str | None = None) -> object:
    """The YAML document in ``text`` (None when it has none), refused as :func:`read` does."""
    loader: _StrictLoader | None = None
    try:
        # The reader refuses control characters as soon as it is built: inside the try.
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        size, depth = _expanded(node)
        if size > MAX_NODES or depth > MAX_DEPTH:
            raise _Refused(
                Problem(
                    "<yaml>",
                    None,
                    f"a parameters document of at most {MAX_NODES:,} values and "
                    f"{MAX_DEPTH} levels once its YAML aliases (*name) are expanded",
                    f"its aliases would expand it beyond {MAX_NODES:,} values or {MAX_DEPTH} "
                    "levels: refused before expanding",
                )
            )
        return loader.construct_document(node)
    except _Refused as e:
        raise ParameterError(e.problem, source=label) from None
    except yaml.reader.ReaderError as e:
        # The reader knows only the character's offset; the line and column are counted here.
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise ParameterError(
            Problem(
                f"<yaml line {line}, column {column}>",
                None,
                "printable text (YAML refuses control characters other than tab and newline)",
                f"character U+{e.character:04X} is not allowed in YAML"
                if isinstance(e.character, int)
                else f"YAML syntax error: {e.reason}",
            ),
            source=label,
        ) from None
    except ConstructorError as e:
        # SafeLoader builds plain data only: a tag such as !!python/object is refused here.
        raise ParameterError(
            Problem(
                f"<yaml {_at(e.problem_mark)}>",
                None,
                "plain YAML values: strings, numbers, booleans, null, lists and mappings",
                f"YAML tag refused: {e.problem}",
            ),
            source=label,
        ) from None
    except yaml.MarkedYAMLError as e:
        what = e.problem or str(e)
        if e.context:
            # Where the unfinished construct began: an unclosed quote or bracket is there.
            started = f" (at {_at(e.context_mark)})" if e.context_mark else ""
            what = f"{e.context}{started}: {what}"
        raise ParameterError(
            Problem(
                f"<yaml {_at(e.problem_mark)}>", None, "valid YAML", f"YAML syntax error: {what}"
            ),
            source=label,
        ) from None
    except yaml.YAMLError as e:
        raise ParameterError(
            Problem("<yaml>", None, "valid YAML", f"YAML syntax error: {e}"), source=label
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
