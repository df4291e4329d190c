"""Just enough Kubernetes protobuf to read a SelfSubjectAccessReview (kubectl sends protobuf).

kubectl's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``: a
``k8s\\x00`` magic prefix, then a ``runtime.Unknown`` whose ``raw`` field holds the object.
"""

from __future__ import annotations

from typing import Any

from egress_sandbox.k8s.errors import BadRequest

MAGIC = b"k8s\x00"


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise BadRequest("protobuf: unexpected end of data")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> dict[int, list[Any]]:
    """Field number -> values (varints as int, length-delimited as bytes)."""
    out: dict[int, list[Any]] = {}
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            v, i = data[i : i + n], i + n
        elif wire == 1:
            v, i = data[i : i + 8], i + 8
        elif wire == 5:
            v, i = data[i : i + 4], i + 4
        else:
            raise BadRequest(f"protobuf: unsupported wire type {wire}")
        out.setdefault(num, []).append(v)
    return out


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    f = fields(data)
    return {name: f[num][0].decode() for num, name in names.items() if num in f}


def decode_access_review(body: bytes) -> dict[str, Any]:
    """A SelfSubjectAccessReview from its protobuf encoding, as the JSON-shaped dict."""
    if not body.startswith(MAGIC):
        raise BadRequest(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    raw = fields(body[len(MAGIC) :]).get(2, [b""])[0]
    spec_bytes = fields(raw).get(2, [b""])[0]
    spec_f = fields(spec_bytes)
    spec: dict[str, Any] = {}
    if 1 in spec_f:
        spec["resourceAttributes"] = _strings(
            spec_f[1][0],
            {
                1: "namespace",
                2: "verb",
                3: "group",
                4: "version",
                5: "resource",
                6: "subresource",
                7: "name",
            },
        )
    if 2 in spec_f:
        spec["nonResourceAttributes"] = _strings(spec_f[2][0], {1: "path", 2: "verb"})
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": spec,
    }
