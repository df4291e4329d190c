"""ObjectMeta: names, label values, label and annotation keys, the annotations' total size."""

from __future__ import annotations

import re

from egress_sandbox.k8s.fielderrors import (
    DNS1123_SUBDOMAIN_MSG,
    FieldErrors,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
)
from egress_sandbox.k8s.store import Obj

_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')"
)
_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
    f"or '123-abc', regex used for validation is '{_NAME_PART}')"
)
# TotalAnnotationSizeLimitB: keys and values together.
ANNOTATIONS_LIMIT = 256 * 1024
NAME_RULES = {"Service": dns1035_label, "Namespace": dns1123_label}


def validate_name(kind: str, name: str, errs: FieldErrors) -> None:
    for msg in NAME_RULES.get(kind, dns1123_subdomain)(name):
        errs.invalid("metadata.name", name, msg)


def _qualified_name(key: str, field: str, errs: FieldErrors) -> None:
    """IsQualifiedName: an optional DNS-subdomain prefix, a slash, a name part."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        errs.invalid(field, key, "prefix part must be non-empty")
    elif prefix and dns1123_subdomain(prefix):
        errs.invalid(field, key, "prefix part " + DNS1123_SUBDOMAIN_MSG)
    if not name or len(name) > 63 or not re.fullmatch(_NAME_PART, name):
        errs.invalid(field, key, _NAME_PART_MSG)


def validate_labels(meta: Obj, errs: FieldErrors) -> None:
    for k, v in (meta.get("labels") or {}).items():
        if isinstance(v, str):
            if len(v) > 63:
                errs.invalid("metadata.labels", v, "must be no more than 63 characters")
            if not re.fullmatch(_LABEL_VALUE, v):
                errs.invalid("metadata.labels", v, _LABEL_VALUE_MSG)
        _qualified_name(k, "metadata.labels", errs)


def validate_annotations(meta: Obj, errs: FieldErrors) -> None:
    annotations = meta.get("annotations") or {}
    total = 0
    for k, v in annotations.items():
        _qualified_name(k, "metadata.annotations", errs)
        total += len(k.encode()) + len(str(v).encode())
    if total > ANNOTATIONS_LIMIT:
        errs.too_long("metadata.annotations", ANNOTATIONS_LIMIT)
