"""Kubernetes protobuf request bodies, decoded for the kinds kubectl's typed clients send.

kubectl's built-in commands (``create namespace``, ``create configmap``, ``auth can-i`` …) use
client-go typed clients, which always send ``application/vnd.kubernetes.protobuf`` for built-in
kinds: nothing the server advertises makes them fall back to JSON. The body is a ``k8s\\x00``
magic prefix, then a ``runtime.Unknown`` whose ``typeMeta`` names the kind and whose ``raw``
field holds the object, encoded with the field numbers of k8s.io/api ``generated.proto``.

Only the messages below are known; any other kind is answered 415 (a real server decodes all
built-ins). Decoding yields the JSON shape, with proto2 zero values dropped the way the JSON
encoder's ``omitempty`` drops them.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from egress_sandbox.k8s.errors import BadRequest, UnsupportedMediaType

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

# Field kinds: "string", "bytes" (base64 in JSON), "int", "bool", "time", "map" (string to
# string), "bmap" (string to bytes), "[]string", or a message name; "[]Name" is repeated.
Field = tuple[str, str]
_MESSAGES: dict[str, dict[int, Field]] = {
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "time"),
        9: ("deletionTimestamp", "time"),
        10: ("deletionGracePeriodSeconds", "int"),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "bmap"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "bmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[]ObjectReference"),
        3: ("imagePullSecrets", "[]LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
    },
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
}
# (apiVersion, kind) of the top-level objects this module can decode.
KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise BadRequest("proto: unexpected end of data")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) in wire order: varints as int, length-delimited as bytes."""
    out: list[tuple[int, Any]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        v: int | bytes
        if wire == 0:
            v, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise BadRequest("proto: unexpected end of data")
            v, i = data[i : i + n], i + n
        elif wire == 1:
            v, i = data[i : i + 8], i + 8
        elif wire == 5:
            v, i = data[i : i + 4], i + 4
        else:
            raise BadRequest(f"proto: illegal wireType {wire}")
        out.append((num, v))
    return out


def _time(data: bytes) -> str | None:
    secs = 0
    for num, v in fields(data):
        if num == 1 and isinstance(v, int):
            secs = v - (1 << 64) if v >= 1 << 63 else v
    if secs == 0:
        return None  # the zero Time is null in JSON, and omitted
    return dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for num, v in fields(data):
        if num == 1 and isinstance(v, bytes):
            key = v.decode()
        elif num == 2 and isinstance(v, bytes):
            value = v
    return key, value


def _scalar(kind: str, v: Any) -> Any:
    if kind == "string":
        return v.decode() if isinstance(v, bytes) else None
    if kind == "bytes":
        return base64.b64encode(v).decode() if isinstance(v, bytes) else None
    if kind == "int":
        return (v - (1 << 64) if v >= 1 << 63 else v) if isinstance(v, int) else None
    if kind == "bool":
        return bool(v) if isinstance(v, int) else None
    if kind == "time":
        return _time(v) if isinstance(v, bytes) else None
    return decode_message(kind, v) if isinstance(v, bytes) else None


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    spec = _MESSAGES[name]
    out: dict[str, Any] = {}
    for num, v in fields(data):
        if num not in spec:
            continue  # a field this table does not know: dropped, as pruning would
        key, kind = spec[num]
        if kind in ("map", "bmap"):
            k, raw = _map_entry(v)
            out.setdefault(key, {})[k] = (
                raw.decode() if kind == "map" else base64.b64encode(raw).decode()
            )
        elif kind.startswith("[]"):
            item = _scalar(kind[2:], v)
            out.setdefault(key, []).append(item)
        else:
            value = _scalar(kind, v)
            if value is not None and value != "" and not (kind == "int" and value == 0):
                out[key] = value
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object of a protobuf request body (magic + runtime.Unknown)."""
    if not body.startswith(MAGIC):
        raise BadRequest(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    api_version = kind = ""
    raw = b""
    for num, v in fields(body[len(MAGIC) :]):
        if num == 1 and isinstance(v, bytes):
            for n, tv in fields(v):
                if n == 1 and isinstance(tv, bytes):
                    api_version = tv.decode()
                elif n == 2 and isinstance(tv, bytes):
                    kind = tv.decode()
        elif num == 2 and isinstance(v, bytes):
            raw = v
    if (api_version, kind) not in KINDS:
        raise UnsupportedMediaType(
            f"the sandbox cannot decode {kind or 'this kind'} from protobuf - send application/json"
        )
    obj = decode_message(kind, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}
