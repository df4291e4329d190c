"""Field errors worded as k8s.io/apimachinery/pkg/util/validation/field words them."""

from __future__ import annotations

import json
import re
from typing import Any

from egress_sandbox.k8s.errors import Invalid

Cause = dict[str, str]


def go_value(v: Any) -> str:
    """A value as field.Invalid prints it: strings quoted, numbers bare, null as ``"null"``."""
    if v is None:
        return '"null"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"))


class FieldErrors:
    """Collects causes; ``raise_if_any`` turns them into a 422 Invalid Status."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def _add(self, reason: str, field: str, body: str) -> None:
        self.causes.append({"reason": reason, "message": body, "field": field})

    def required(self, field: str, detail: str = "") -> None:
        self._add("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, field: str, value: Any, detail: str) -> None:
        self._add("FieldValueInvalid", field, f"Invalid value: {go_value(value)}: {detail}")

    def type_invalid(self, field: str, value: Any, detail: str) -> None:
        self._add("FieldValueTypeInvalid", field, f"Invalid value: {go_value(value)}: {detail}")

    def not_supported(self, field: str, value: Any, supported: list[str]) -> None:
        vals = ", ".join(json.dumps(s) for s in sorted(supported))
        self._add(
            "FieldValueNotSupported",
            field,
            f"Unsupported value: {go_value(value)}: supported values: {vals}",
        )

    def duplicate(self, field: str, value: Any) -> None:
        self._add("FieldValueDuplicate", field, f"Duplicate value: {go_value(value)}")

    def forbidden(self, field: str, detail: str) -> None:
        self._add("FieldValueForbidden", field, f"Forbidden: {detail}")

    def too_many(self, field: str, actual: int, limit: int) -> None:
        self._add(
            "FieldValueTooMany", field, f"Too many: {actual}: must have at most {limit} items"
        )

    def too_long(self, field: str, limit: int) -> None:
        self._add("FieldValueTooLong", field, f"Too long: may not be more than {limit} bytes")

    def raise_if_any(self, kind: str, group: str, name: str) -> None:
        if self.causes:
            raise Invalid.of(kind, group, name, self.causes)


# ---- the DNS name rules, with their exact messages -------------------------------------------

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + r")*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    f"used for validation is '{_LABEL}')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_SUBDOMAIN}')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_DNS1035}')"
)
WILDCARD_MSG = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character (e.g. '*.example.com', regex used for validation is "
    f"'\\*\\.{_SUBDOMAIN}')"
)


def _name_errors(v: str, max_len: int, pattern: str, message: str) -> list[str]:
    """The length and format errors of ``v``, in the order kube-apiserver lists them."""
    out = []
    if len(v) > max_len:
        out.append(f"must be no more than {max_len} characters")
    if not re.fullmatch(pattern, v):
        out.append(message)
    return out


def dns1123_label(v: str) -> list[str]:
    return _name_errors(v, 63, _LABEL, DNS1123_LABEL_MSG)


def dns1123_subdomain(v: str) -> list[str]:
    return _name_errors(v, 253, _SUBDOMAIN, DNS1123_SUBDOMAIN_MSG)


def dns1035_label(v: str) -> list[str]:
    return _name_errors(v, 63, _DNS1035, DNS1035_LABEL_MSG)


def wildcard_subdomain(v: str) -> list[str]:
    return _name_errors(v, 253, r"\*\." + _SUBDOMAIN, WILDCARD_MSG)


def port_name(v: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    out = []
    if len(v) > 15:
        out.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", v):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in v:
        out.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", v):
        out.append("must contain at least one letter (a-z)")
    if v.startswith("-") or v.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def port_num(v: Any) -> list[str]:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []
