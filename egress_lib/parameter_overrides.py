"""Dotted overrides (``-p gateway.replicas 2``) laid over the parameters file's data."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated

from pydantic import BaseModel

from egress_lib import parameter_file
from egress_lib.errors import ParameterError, Problem
from egress_lib.validation_messages import NEAR_CUTOFF, credential_problem
from egress_lib.validators import looks_like_credential


def _scalar(value: object) -> object:
    # CLI/papermill overrides arrive as strings; read them the way YAML would, with the
    # parameters file's limits (an alias bomb or 5,000 '[' stays the string it is).
    if isinstance(value, str):
        try:
            return parameter_file.parse(value) if value.strip() else value
        except ParameterError:
            return value
    return value


_OVERRIDE_FORM = "a dotted key naming a parameter, e.g. gateway.replicas or destinations.0.port"


def apply_override(
    data: dict[str, object], key: str, value: object, root: type[BaseModel]
) -> list[Problem]:
    """Set one dotted override in ``data``; a problem (naming ``key``) if it cannot be set.

    ``root`` is the schema's model (Parameters), which tells mappings from lists.

    A missing intermediate mapping is created only where the schema has one (``snat.snat_ip``
    without ``snat:`` in the file); lists are never created or extended.
    """
    parts = key.split(".")
    if any(looks_like_credential(part) for part in parts):
        return [credential_problem(key)]
    value = _scalar(value)
    node: object = data
    model: type[BaseModel] | None = root  # the model of ``node`` when it is a mapping
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = ".".join(parts[: i + 1])
        if isinstance(node, dict):
            if model is not None and part not in model.model_fields:
                valid = list(model.model_fields)
                near = difflib.get_close_matches(part, valid, n=1, cutoff=NEAR_CUTOFF)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                return [
                    Problem(
                        key,
                        value,
                        f"one of the keys {', '.join(valid)}",
                        f"unknown key {part!r}{hint}",
                    )
                ]
            if last:
                node[part] = value
                return []
            shape, child = (
                _shape(model.model_fields[part].annotation) if model else ("unknown", None)
            )
            if part not in node:
                if shape != "mapping":
                    what = "a list" if shape == "list" else "not a mapping"
                    return [
                        Problem(
                            key,
                            value,
                            _OVERRIDE_FORM,
                            f"{here} is not set and is {what}, so it cannot be created",
                        )
                    ]
                node[part] = {}
            if shape == "scalar":
                return [Problem(key, value, _OVERRIDE_FORM, f"{here} is a single value")]
            node = node[part]
            model = child
        elif isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                parent = ".".join(parts[:i])
                return [
                    Problem(
                        key,
                        value,
                        _OVERRIDE_FORM,
                        f"{parent} has {len(node)} item(s); there is no item {part!r}",
                    )
                ]
            if last:
                node[int(part)] = value
                return []
            node = node[int(part)]
        else:
            parent = ".".join(parts[:i])
            return [
                Problem(
                    key, value, _OVERRIDE_FORM, f"{parent} is not a mapping or list in the file"
                )
            ]
    return []  # pragma: no cover - the loop always returns


def _shape(annotation: object) -> tuple[str, type[BaseModel] | None]:
    """("mapping", Model) | ("list", element model or None) | ("scalar", None)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _shape(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping", annotation
    if origin is list:
        inner = _shape(args[0]) if args else ("scalar", None)
        return "list", inner[1] if inner[0] == "mapping" else None
    if origin is typing.Union or origin is types.UnionType:
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:
            return _shape(real[0])
    return "scalar", None
