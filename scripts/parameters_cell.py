"""Generate the ``parameters``-tagged cell of every runbook notebook from the schema.

    python scripts/parameters_cell.py --check   # exit 1 and list the notebooks whose cell differs
    python scripts/parameters_cell.py --write   # rewrite those cells; nothing else is touched
    python scripts/parameters_cell.py --print   # show the generated cell

The cell has one line per key of :class:`egress_lib.parameters.Parameters`, in the schema's
field order, typed and with the field's description as help, in the one-line form papermill's
``--help-notebook`` parses (``name: type = literal  # help``; no other ``=`` on the line).
Values are the schema defaults; keys without a default take the sandbox's value from
``parameters/sandbox.yaml``. Works on whatever ``notebooks/[0-9][0-9]-*.ipynb`` exist.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import nbformat
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from egress_lib.parameters import Parameters, load_parameters

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SANDBOX = REPO / "parameters" / "sandbox.yaml"
TAG = "parameters"
# nbformat's functions are untyped.
_read: Callable[..., Any] = nbformat.read
_write: Callable[..., Any] = nbformat.write

HEADER = (
    "# Defaults target the sandbox. Under papermill a key that is not injected takes the schema's",
    "# default, not this cell's value; see parameters/example-ack.yaml for a real cluster.",
    "# Generated from egress_lib/parameters.py by scripts/parameters_cell.py --write.",
)


def type_name(annotation: Any) -> str:
    """The annotation papermill shows: str, int, bool, dict, list[dict], Optional[str]..."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return type(args[0]).__name__
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "dict"
    if origin is list:
        return f"list[{type_name(args[0])}]"
    if args and type(None) in args:
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:
            return f"Optional[{type_name(real[0])}]"
    if isinstance(annotation, type):
        return annotation.__name__
    raise TypeError(f"no papermill type name for {annotation!r}")


def _default(field: FieldInfo) -> object:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _with_sandbox(annotation: Any, sandbox_value: object) -> object:
    """A required key's value: the sandbox's, with the schema's defaults inside a model."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert isinstance(sandbox_value, dict)
        return {
            name: (
                _with_sandbox(field.annotation, sandbox_value[name])
                if field.is_required()
                else _default(field)
            )
            for name, field in annotation.model_fields.items()
        }
    return sandbox_value


def cell_values(sandbox: Path = SANDBOX) -> dict[str, object]:
    """Every key's value in the cell: schema default, or the sandbox's for required keys."""
    theirs = load_parameters(sandbox).to_injectable()
    return {
        name: (
            _with_sandbox(field.annotation, theirs[name])
            if field.is_required()
            else _default(field)
        )
        for name, field in Parameters.model_fields.items()
    }


def render_line(name: str, field: FieldInfo, value: object) -> str:
    ann = type_name(field.annotation)
    if ann.startswith("Optional["):
        ann = f'"{ann}"'  # Optional is not defined in the notebook: keep it a string
    literal = repr(value)
    help_text = " ".join((field.description or "").split())
    if not help_text:
        raise ValueError(f"schema field {name!r} has no description")
    line = f"{name}: {ann} = {literal}  # {help_text}"
    # papermill skips a line with more than one '=' and cuts the value at the first '#'.
    if line.count("=") != 1 or "#" in literal or "\n" in line:
        raise ValueError(f"papermill cannot parse the line for {name!r}: {line}")
    return line


def render_cell(sandbox: Path = SANDBOX) -> str:
    """The source of the ``parameters`` cell."""
    values = cell_values(sandbox)
    lines = list(HEADER)
    for name, field in Parameters.model_fields.items():
        lines.append(render_line(name, field, values[name]))
    return "\n".join(lines)


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def _tagged(nb: Any, path: Path) -> Any:
    cells = [c for c in nb.cells if TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: {len(cells)} cells tagged {TAG!r}; expected exactly one")
    return cells[0]


def stale(paths: Sequence[Path], source: str) -> list[Path]:
    """The notebooks whose parameters cell is not ``source``."""
    out = []
    for path in paths:
        nb = _read(path, as_version=4)
        if _tagged(nb, path).source != source:
            out.append(path)
    return out


def write(paths: Sequence[Path], source: str) -> list[Path]:
    """Replace the parameters cell's source where it differs; returns the notebooks written."""
    written = []
    for path in paths:
        nb = _read(path, as_version=4)
        cell = _tagged(nb, path)
        if cell.source != source:
            cell.source = source  # outputs, id, metadata and every other cell stay as they are
            _write(nb, path)
            written.append(path)
    return written


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if any cell differs")
    mode.add_argument("--write", action="store_true", help="rewrite the cells that differ")
    mode.add_argument("--print", action="store_true", help="print the generated cell")
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]-*.ipynb"
    )
    args = parser.parse_args(argv)
    source = render_cell()
    if args.print:
        print(source)
        return 0
    paths: list[Path] = args.notebooks or notebooks()
    try:
        if args.check:
            bad = stale(paths, source)
            for path in bad:
                print(f"{_show(path)}: parameters cell differs from the schema")
            if bad:
                print("run: python scripts/parameters_cell.py --write", file=sys.stderr)
                return 1
            print(f"{len(paths)} notebook(s): parameters cells match the schema")
            return 0
        for path in write(paths, source):
            print(f"wrote {_show(path)}")
    except ValueError as e:
        print(f"parameters_cell: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
