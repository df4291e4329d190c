"""What decoding a body into the Go type of a built-in kind refuses, as kube-apiserver's 400.

kube-apiserver decodes every body into the kind's Go struct before anything else looks at it, so
a Service whose ``spec.ports`` is ``"nope"`` never reaches storage, and no stored object can break
a later list. This walks an object against the bundled schema of its kind and answers as Go's
JSON decoder (``sigs.k8s.io/json``, a fork of ``encoding/json``) does:

* a value of the wrong JSON type is ``json: cannot unmarshal <what> into Go struct field
  <Struct>.<json path> of type <Go type>`` (the path names struct fields only, never indexes or
  map keys); the first one wins and decoding goes on;
* ``[]byte`` fields (Secret ``data``) take standard base64: ``illegal base64 data at input byte N``;
* types with their own ``UnmarshalJSON`` (``Time``, ``MicroTime``, ``Quantity``, ``IntOrString``)
  stop decoding at once with their own error.

``normalize`` also stores what the Go struct would marshal back: ``null`` fields dropped, ``null``
list and map items as their zero value, times in their marshalled form.
"""

from __future__ import annotations

import re
from typing import Any

from egress_sandbox.k8s import gotime
from egress_sandbox.k8s.errors import BadRequest
from egress_sandbox.k8s.schemas import Schema, definitions, resolve, type_schema, types_of
from egress_sandbox.k8s.types import ResourceType

_REF = "#/$defs/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INTSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Types whose UnmarshalJSON takes any JSON value (raw, or checked elsewhere, like CRD schemas).
_FREE_FORM = frozenset(
    {
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        _META + "FieldsV1",
        _META + "Patch",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    }
)
# The schema has no Go type names for named string and map types; these are the ones a client
# of the sandbox's kinds is likely to get wrong (others are named by their underlying type).
_NAMED = {
    ("ServiceSpec", "type"): "v1.ServiceType",
    ("ServiceSpec", "sessionAffinity"): "v1.ServiceAffinity",
    ("ServiceSpec", "externalTrafficPolicy"): "v1.ServiceExternalTrafficPolicy",
    ("ServiceSpec", "internalTrafficPolicy"): "v1.ServiceInternalTrafficPolicy",
    ("ServiceSpec", "ipFamilyPolicy"): "v1.IPFamilyPolicy",
    ("ServicePort", "protocol"): "v1.Protocol",
    ("ContainerPort", "protocol"): "v1.Protocol",
    ("PodSpec", "restartPolicy"): "v1.RestartPolicy",
    ("PodSpec", "dnsPolicy"): "v1.DNSPolicy",
    ("Container", "imagePullPolicy"): "v1.PullPolicy",
    ("ResourceRequirements", "limits"): "v1.ResourceList",
    ("ResourceRequirements", "requests"): "v1.ResourceList",
    ("Secret", "type"): "v1.SecretType",
    ("HTTPIngressPath", "pathType"): "v1.PathType",
    ("IngressClassParametersReference", "scope"): "string",
}
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_FORMAT = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_SUFFIXES = frozenset({"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T"})
_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class _Abort(Exception):
    """An UnmarshalJSON error: decoding stops at once with this message."""


def _def_name(node: Schema) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        return ref[len(_REF) :]
    return None


def _go_name(def_name: str) -> str:
    """``io.k8s.api.core.v1.ServicePort`` -> ``v1.ServicePort`` (Go's package.Type)."""
    parts = def_name.split(".")
    return f"{parts[-2]}.{parts[-1]}"


def _what(value: Any, go_type: str) -> str:
    """encoding/json's name for the JSON value that did not fit (``number 1.5`` for ints)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}" if go_type in _INT_BOUNDS else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(value: Any, struct: str, path: list[str], go_type: str) -> str:
    where = f"Go struct field {struct}.{'.'.join(path)}" if path else "Go value"
    return f"json: cannot unmarshal {_what(value, go_type)} into {where} of type {go_type}"


def base64_error(text: str) -> int | None:
    """The byte offset Go's base64.StdEncoding reports for ``text``, or None if it decodes."""
    src, si, n = text.encode(), 0, len(text.encode())
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                return None if j == 0 else si - j
            ch = src[si]
            si += 1
            if ch in _B64:
                j += 1
                continue
            if ch in b"\r\n":
                continue
            if ch != ord("=") or j < 2:
                return si - 1
            if j == 2:  # "==" expected; the first one is consumed
                while si < n and src[si] in b"\r\n":
                    si += 1
                if si == n:
                    return n
                if src[si] != ord("="):
                    return si - 1
                si += 1
            while si < n and src[si] in b"\r\n":
                si += 1
            return si if si < n else None
    return None


def _quantity_error(text: str) -> str | None:
    m = _QUANTITY_RE.match(text.strip())
    if m is None or m.group(1).count(".") > 1 or m.group(1).strip("+-") in ("", "."):
        return _QUANTITY_FORMAT
    suffix = m.group(2)
    if suffix in _SUFFIXES or re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        return None
    return "unable to parse quantity's suffix"


class _Decoder:
    def __init__(self, normalize: bool) -> None:
        self.normalize = normalize
        self.first: str | None = None

    def save(self, message: str) -> None:
        if self.first is None:
            self.first = message

    def value(self, v: Any, node: Schema, struct: str, path: list[str], go: str) -> Any:
        name = _def_name(node)
        if name in _FREE_FORM:
            return v
        if name == _INTSTR or resolve(node).get("x-kubernetes-int-or-string"):
            return self._int_or_string(v, struct, path)
        if name == _QUANTITY:
            return self._quantity(v)
        if name in (_META + "Time", _META + "MicroTime"):
            return self._time(v, struct, path, name.endswith("MicroTime"))
        n = resolve(node)
        if "properties" in n:
            if not isinstance(v, dict):
                self.save(type_error(v, struct, path, go))
                return v
            return self.struct(v, n, _go_name(name).split(".")[-1] if name else struct, path)
        kinds = types_of(n)
        if kinds == {"array"}:
            return self._list(v, n, struct, path, go)
        if kinds == {"object"}:
            extra = n.get("additionalProperties")
            if isinstance(extra, dict):
                return self._map(v, extra, struct, path, go)
            if not isinstance(v, dict):  # an empty struct: any object, nothing kept
                self.save(type_error(v, struct, path, go))
            return v
        if len(kinds) == 1:
            return self._scalar(v, n, next(iter(kinds)), struct, path, go)
        return v  # oneOf / anyOf without a known Go type: as the schema, free

    def struct(self, v: dict[str, Any], n: Schema, struct: str, path: list[str]) -> Any:
        """The fields of ``v``, a struct named ``struct`` (errors name it as their Struct)."""
        props: dict[str, Schema] = n["properties"]
        for key in list(v):
            sub = props.get(key)
            if sub is None:
                continue  # unknown fields are pruned (or refused) by field validation
            if v[key] is None:
                if self.normalize:
                    del v[key]
                continue
            go_sub = _NAMED.get((struct, key)) or go_type(sub)
            v[key] = self.value(v[key], sub, struct, [*path, key], go_sub)
        return v

    def _list(self, v: Any, n: Schema, struct: str, path: list[str], go: str) -> Any:
        if not isinstance(v, list):
            self.save(type_error(v, struct, path, go))
            return v
        found = n.get("items")
        item: Schema = found if isinstance(found, dict) else {}
        elem = go[2:] if go.startswith("[]") else go_type(item)
        for i, x in enumerate(v):
            v[i] = self._zero(item) if x is None else self.value(x, item, struct, path, elem)
        return v

    def _map(self, v: Any, extra: Schema, struct: str, path: list[str], go: str) -> Any:
        if not isinstance(v, dict):
            self.save(type_error(v, struct, path, go))
            return v
        elem = go[len("map[string]") :] if go.startswith("map[string]") else go_type(extra)
        for key in list(v):
            x = v[key]
            v[key] = self._zero(extra) if x is None else self.value(x, extra, struct, path, elem)
        return v

    def _scalar(self, v: Any, n: Schema, kind: str, struct: str, path: list[str], go: str) -> Any:
        if kind == "string":
            if not isinstance(v, str):
                self.save(type_error(v, struct, path, go))
            elif n.get("format") == "byte":
                at = base64_error(v)
                if at is not None:
                    self.save(f"illegal base64 data at input byte {at}")
            return v
        if kind == "boolean":
            if not isinstance(v, bool):
                self.save(type_error(v, struct, path, go))
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.save(type_error(v, struct, path, go))
            return v
        if kind == "integer":
            lo, hi = _INT_BOUNDS.get(go, _INT_BOUNDS["int64"])
            if not isinstance(v, int) or not lo <= v <= hi:
                self.save(type_error(v, struct, path, go))
        return v

    def _int_or_string(self, v: Any, struct: str, path: list[str]) -> Any:
        # IntOrString.UnmarshalJSON: a JSON string is the string; anything else goes into an
        # int32, whose decoding error (with the field's context) stops decoding.
        if isinstance(v, str):
            return v
        lo, hi = _INT_BOUNDS["int32"]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _Abort(type_error(v, struct, path, "int32"))
        return v

    @staticmethod
    def _quantity(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise _Abort(_QUANTITY_FORMAT)
        problem = _quantity_error(str(v))
        if problem:
            raise _Abort(problem)
        return v

    def _time(self, v: Any, struct: str, path: list[str], micro: bool) -> Any:
        if not isinstance(v, str):
            raise _Abort(type_error(v, struct, path, "string"))
        stored, problem = gotime.parse(v, gotime.RFC3339_MICRO if micro else gotime.RFC3339)
        if problem:
            raise _Abort(problem)
        return stored if self.normalize else v

    @staticmethod
    def _zero(node: Schema) -> Any:
        n = resolve(node)
        if "properties" in n:
            return {}
        kind = next(iter(types_of(n)), "")
        return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(kind)


def go_type(node: Schema) -> str:
    """The Go type a schema node decodes into, as ``reflect.Type.String()`` prints it."""
    name = _def_name(node)
    if name == _INTSTR:
        return "intstr.IntOrString"
    if name == _QUANTITY:
        return "resource.Quantity"
    if name and "properties" in definitions().get(name, {}):
        return _go_name(name)
    n = resolve(node)
    kinds = types_of(n)
    if kinds == {"array"}:
        item = n.get("items")
        return "[]" + go_type(item if isinstance(item, dict) else {})
    if kinds == {"object"}:
        extra = n.get("additionalProperties")
        return "map[string]" + go_type(extra) if isinstance(extra, dict) else "struct {}"
    if kinds == {"string"}:
        return "[]uint8" if n.get("format") == "byte" else "string"
    if kinds == {"integer"}:
        return str(n.get("format") or "int64")
    if kinds == {"number"}:
        return "float64"
    if kinds == {"boolean"}:
        return "bool"
    return "interface {}"


def decode(
    schema: Schema, obj: dict[str, Any], kind: str, version: str, *, normalize: bool
) -> None:
    """Refuse ``obj`` with kube-apiserver's 400 if decoding it into ``kind`` would fail."""
    decoder = _Decoder(normalize)
    try:
        decoder.struct(obj, resolve(schema), kind, [])
    except _Abort as exc:
        decoder.first = str(exc)
    if decoder.first is not None:
        raise BadRequest(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {decoder.first}'
        )


# What every custom resource decodes into a Go type: its ObjectMeta (the rest is its schema's).
_CUSTOM: Schema = {"properties": {"metadata": {"$ref": _REF + _META + "ObjectMeta"}}}


def decode_builtin(rt: ResourceType, obj: dict[str, Any], *, normalize: bool) -> None:
    """:func:`decode` against the bundled schema of a built-in kind; of a custom one, its
    metadata (the CRD's schema checks the rest)."""
    schema = _CUSTOM if rt.schema is not None else type_schema(rt)
    if schema is not None:
        decode(schema, obj, rt.kind, rt.version, normalize=normalize)
