"""API errors, each rendered as the ``Status`` object kube-apiserver returns."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API answers with a ``Status`` body."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(plural: str, group: str) -> str:
    """``plural.group`` as kube-apiserver names a resource in messages (core: ``plural``)."""
    return f"{plural}.{group}" if group else plural


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


class NotFound(ApiError):
    code, reason = 404, "NotFound"

    @classmethod
    def of(cls, plural: str, group: str, name: str) -> NotFound:
        return cls(
            f'{_qualified(plural, group)} "{name}" not found',
            details=_details(plural, name, group),
        )


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def of(cls, plural: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{_qualified(plural, group)} "{name}" already exists',
            details=_details(plural, name, group),
        )


class Conflict(ApiError):
    code, reason = 409, "Conflict"

    @classmethod
    def stale(cls, plural: str, group: str, name: str) -> Conflict:
        return cls(
            f"Operation cannot be fulfilled on {_qualified(plural, group)} "
            f'"{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            details=_details(plural, name, group),
        )


class Invalid(ApiError):
    """422 with field causes, e.g. ``[{"reason": "FieldValueRequired", "field": "spec.x"}]``."""

    code, reason = 422, "Invalid"

    @classmethod
    def of(cls, kind: str, group: str, name: str, causes: list[dict[str, str]]) -> Invalid:
        res = _qualified(kind, group)
        msgs = "; ".join(f"{c['field']}: {c['message']}" for c in causes)
        if len(causes) > 1:
            msgs = "[" + ", ".join(f"{c['field']}: {c['message']}" for c in causes) + "]"
        details = _details(kind, name, group)
        details["causes"] = causes
        return cls(f'{res} "{name}" is invalid: {msgs}', details=details)


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Gone(ApiError):
    code, reason = 410, "Expired"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"
