"""Request bodies and query options: decoding, size limit, dryRun, fieldValidation, managers."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from egress_sandbox.k8s import jsonish, protobuf
from egress_sandbox.k8s.errors import (
    ApiError,
    BadRequest,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)
from egress_sandbox.k8s.fielderrors import FieldErrors

MAX_BODY = 3 * 1024 * 1024

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def raw_body(request: Request) -> bytes:
    """The body, refusing more than 3 MiB exactly as kube-apiserver does."""
    too_large = RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY}")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    try:
        data = request.stream.read(MAX_BODY + 1)
    except (OSError, ValueError, HTTPException) as exc:  # bad chunking, a client gone
        raise BadRequest(f"unable to read the request body: {_short(exc)}") from exc
    if len(data) > MAX_BODY:
        raise too_large
    return data


def media_type(request: Request) -> str:
    return (request.mimetype or "application/json").lower()


def decode_object(request: Request, data: bytes) -> dict[str, Any]:
    """A create/update body: JSON, YAML (curl users may send it), or protobuf (kubectl's typed
    clients send it for built-in kinds)."""
    mt = media_type(request)
    if mt == protobuf.MEDIA_TYPE:
        return protobuf.decode_object(data)
    try:
        if mt == "application/json":
            obj = jsonish.parse_json(data)
        elif mt in ("application/yaml", "application/x-yaml"):
            obj = jsonish.parse_yaml(data)
        else:
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
    except jsonish.BodyError as exc:
        raise BadRequest(f"couldn't get version/kind; json parse error: {_short(exc)}") from exc
    if not isinstance(obj, dict):
        raise BadRequest(
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{type(obj).__name__} into Go value of type struct {{ APIVersion string "
            '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
        )
    return obj


def decode_patch(mt: str, data: bytes) -> Any:
    try:
        if mt == "application/apply-patch+yaml":
            return jsonish.parse_yaml(data)
        return jsonish.parse_json(data)
    except jsonish.BodyError as exc:
        if mt == "application/apply-patch+yaml":
            raise BadRequest(f"error decoding YAML: {_short(exc)}") from exc
        raise BadRequest(f"error decoding patch: {_short(exc)}") from exc


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def query_int(request: Request, key: str) -> int | None:
    """An integer query option as Go's strconv.ParseInt reads it (int64), or None if absent."""
    raw = request.args.get(key)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"[+-]?[0-9]+", raw):
        raise BadRequest(f'strconv.ParseInt: parsing "{raw}": invalid syntax')
    value = int(raw)
    if not -(2**63) <= value < 2**63:
        raise BadRequest(f'strconv.ParseInt: parsing "{raw}": value out of range')
    return value


def dry_run(request: Request) -> bool:
    values = request.args.getlist("dryRun")
    for v in values:
        if v != "All":
            errs = FieldErrors()
            errs.not_supported("dryRun", v, ["All"])
            raise ApiError(
                f'dryRun: Unsupported value: "{v}": supported values: "All"',
                code=400,
                reason="BadRequest",
            )
    return bool(values)


def field_validation(request: Request) -> str:
    v = request.args.get("fieldValidation", "")
    if v in ("", "Warn"):
        return "Warn"
    if v in ("Strict", "Ignore"):
        return v
    raise BadRequest(
        f'fieldValidation: Unsupported value: "{v}": supported values: "Ignore", "Strict", "Warn"'
    )


def field_manager(request: Request, default: str) -> str:
    manager = request.args.get("fieldManager", "")
    if len(manager) > 128:
        raise ApiError(
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
            "Too long: may not be more than 128 bytes",
            code=422,
            reason="Invalid",
        )
    return manager or default
