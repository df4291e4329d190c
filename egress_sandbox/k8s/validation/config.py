"""ConfigMap, Secret and core/v1 Event: keys, sizes, immutability, what each Secret type needs."""

from __future__ import annotations

import base64
import re

from egress_sandbox.k8s.fielderrors import FieldErrors, dns1123_subdomain
from egress_sandbox.k8s.store import Obj

# core.MaxSecretSize, which ConfigMaps share.
MAX_SIZE = 1024 * 1024
_KEY = r"[-._a-zA-Z0-9]+"
_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    f"(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '{_KEY}')"
)
_IMMUTABLE = "field is immutable when `immutable` is set"
# What each well-known Secret type must carry in data (ValidateSecret).
_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
}


def _key_errors(key: str) -> list[str]:
    """IsConfigMapKey, which Secret keys follow too."""
    out = []
    if len(key) > 253:
        out.append("must be no more than 253 characters")
    if not re.fullmatch(_KEY, key):
        out.append(_KEY_MSG)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _immutable(new: Obj, old: Obj | None, fields: tuple[str, ...], errs: FieldErrors) -> None:
    if not old or not old.get("immutable"):
        return
    if not new.get("immutable"):
        errs.forbidden("immutable", _IMMUTABLE)
    for f in fields:
        if (new.get(f) or {}) != (old.get(f) or {}):
            errs.forbidden(f, _IMMUTABLE)


def validate_config_map(new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    data, binary = new.get("data") or {}, new.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        for msg in _key_errors(key):
            errs.invalid(f"data[{key}]", key, msg)
        if key in binary:
            errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        total += len(str(value).encode())
    for key, value in binary.items():
        for msg in _key_errors(key):
            errs.invalid(f"binaryData[{key}]", key, msg)
        total += len(base64.b64decode(str(value)))
    if total > MAX_SIZE:
        errs.too_long("", MAX_SIZE)
    _immutable(new, old, ("data", "binaryData"), errs)


def default_secret(new: Obj) -> None:
    """``stringData`` is written into ``data`` (and never stored); the type defaults Opaque."""
    string_data = new.pop("stringData", None) or {}
    if string_data:
        data = new.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    if not new.get("type"):
        new["type"] = "Opaque"


def validate_secret(new: Obj, old: Obj | None, errs: FieldErrors) -> None:
    data = new.get("data") or {}
    total = 0
    for key, value in data.items():
        for msg in _key_errors(key):
            errs.invalid(f"data[{key}]", key, msg)
        total += len(base64.b64decode(str(value)))
    if total > MAX_SIZE:
        errs.too_long("data", MAX_SIZE)
    secret_type = new.get("type", "Opaque")
    for key in _REQUIRED_KEYS.get(secret_type, ()):
        if key not in data:
            errs.required(f"data[{key}]")
    if secret_type == "kubernetes.io/service-account-token":
        annotations = new.get("metadata", {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    if old is not None and old.get("type", "Opaque") != secret_type:
        errs.invalid("type", secret_type, "field is immutable")
    _immutable(new, old, ("data",), errs)


def validate_event(new: Obj, errs: FieldErrors) -> None:
    """The legacy core/v1 rule: the event lives in its involved object's namespace."""
    namespace = new.get("metadata", {}).get("namespace", "")
    involved = (new.get("involvedObject") or {}).get("namespace", "")
    if not new.get("eventTime"):
        if (involved and involved != namespace) or (
            not involved and namespace not in ("", "default")
        ):
            errs.invalid("involvedObject.namespace", involved, "does not match event.namespace")
    elif not new.get("reportingComponent"):
        errs.required("reportingComponent")
    for msg in dns1123_subdomain(namespace) if namespace else []:
        errs.invalid("namespace", namespace, msg)
