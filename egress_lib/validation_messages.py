"""Turn pydantic errors and cross-field checks into :class:`Problem` entries."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from egress_lib.errors import Problem
from egress_lib.policy_checks import policy_problems
from egress_lib.validators import REDACTED, looks_like_credential

if TYPE_CHECKING:
    from egress_lib.parameters import Destination, Parameters

_MISSING = "<missing>"
# How alike an unknown key and a known one must be for "did you mean" (difflib's ratio):
# 0.5 offered 'name' for 'zone'.
NEAR_CUTOFF = 0.6
# What a missing required key should be, where "a value for this required key" says too little.
_REQUIRED_EXPECTED = {
    "region_id": "a region ID such as 'cn-hangzhou' (required for target aliyun; only the "
    "sandbox has a default)",
}


def format_loc(loc: Sequence[int | str]) -> str:
    """('gateway', 'vswitches', 0) -> 'gateway.vswitches[0]'.

    pydantic marks a bad mapping key with a trailing '[key]': the path ends at the key.
    """
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<root>"


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that owns keys at ``loc`` (used for "did you mean")."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # list item: the element type was already unwrapped below
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    # list[X] / X | None -> X, so nested models are found through containers.
    for arg in typing.get_args(annotation) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _described(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    """What a required key holds, from its description: "a value for this required key" says
    too little."""
    model = _model_at(root, loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model and loc else None
    if field is None or not field.description:
        return "a value for this required key"
    return f"a value for this required key: {field.description}"


def _one_of(expected: str) -> str:
    # pydantic writes "'a', 'b' or 'c'"; two choices (or one) read better without "one of".
    return expected if expected.count("'") in (0, 4) else f"one of {expected}"


def _expected_from_msg(msg: str) -> str:
    for prefix in ("Input should be ", "Input should have ", "List should have ", "Value should "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg[0].lower() + msg[1:] if msg else "a valid value"


def _problem(err: Any, root: type[BaseModel]) -> Problem:
    loc = tuple(err["loc"])
    path = format_loc(loc)
    value = err.get("input", _MISSING)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "egress_format":
        return Problem(path, value, str(ctx["expected"]), str(ctx["what"]))
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        valid = sorted(model.model_fields) if model else []
        key = str(loc[-1])
        near = difflib.get_close_matches(key, valid, n=1, cutoff=NEAR_CUTOFF)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return Problem(
            path, value, f"one of the keys {', '.join(valid)}", f"unknown key {key!r}{hint}"
        )
    if kind == "missing":
        expected = _REQUIRED_EXPECTED.get(path) or _described(root, loc)
        return Problem(path, None, expected, "required key is missing")
    if kind == "literal_error":
        return Problem(path, value, _one_of(str(ctx.get("expected"))), f"{value!r} is not allowed")
    if kind == "model_type":
        model = _model_at(root, loc)
        keys = ", ".join(model.model_fields) if model else "its keys"
        got = type(value).__name__
        return Problem(
            path, value, f"a mapping with the keys {keys}", f"{value!r} is not a mapping ({got})"
        )
    if kind.endswith(("_type", "_parsing")):
        got = type(value).__name__
        return Problem(
            path, value, _expected_from_msg(err["msg"]), f"{value!r} has the wrong type ({got})"
        )
    if kind in ("too_short", "too_long"):
        n = len(value) if hasattr(value, "__len__") else "?"
        expected = _expected_from_msg(err["msg"]).split(",")[0].removesuffix(" after validation")
        return Problem(path, value, expected, f"{value!r} has {n} items")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return Problem(path, value, _expected_from_msg(err["msg"]), f"{value!r} is out of range")
    if kind in ("string_too_short", "string_too_long"):
        return Problem(path, value, _expected_from_msg(err["msg"]), f"{value!r} has a bad length")
    return Problem(path, value, _expected_from_msg(err["msg"]))


def problems_from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Every error pydantic found, in document order."""
    return [_problem(err, root) for err in exc.errors()]


# Short enough to be shown whole (Problem shortens texts over errors.MAX_MESSAGE).
CREDENTIAL_SOURCES = (
    "Alibaba Cloud credentials come from the default credential chain (ALIBABA_CLOUD_ACCESS_KEY_ID"
    " / _SECRET / _SECURITY_TOKEN, ~/.aliyun/config.json, an ECS RAM role or RRSA) and "
    "Kubernetes credentials from the kubeconfig"
)


def credential_problem(path: str) -> Problem:
    """The refusal of a key that looks like a credential; its value is never shown."""
    return Problem(
        path,
        REDACTED,
        f"no such key: {CREDENTIAL_SOURCES}",
        f"key {path!r} looks like a credential, and credentials are never parameters",
    )


def pop_credentials(data: object, loc: tuple[int | str, ...] = ()) -> list[Problem]:
    """Remove every key (at any depth) that looks like a credential; one problem each."""
    problems: list[Problem] = []
    if isinstance(data, dict):
        for key in list(data):
            if looks_like_credential(str(key)):
                del data[key]
                problems.append(credential_problem(format_loc((*loc, str(key)))))
            else:
                problems.extend(pop_credentials(data[key], (*loc, str(key))))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            problems.extend(pop_credentials(item, (*loc, i)))
    return problems


def cross_checks(p: Parameters) -> list[Problem]:
    """Rules that span several keys (uniqueness, merged Ingresses, target-only keys, and the
    policies' in :mod:`egress_lib.policy_checks`)."""
    problems: list[Problem] = []
    if p.target == "sandbox":
        # The sandbox writes its own endpoint into sandbox.json; an override would point the
        # clients elsewhere and defeat the emulation.
        for key, host in p.endpoints.overrides().items():
            problems.append(
                Problem(
                    f"endpoints.{key}",
                    host,
                    "null for target sandbox (the sandbox decides its endpoint); endpoints are "
                    "for target aliyun",
                    f"{host!r} is set while target is 'sandbox'",
                )
            )
    # Each of these belongs to one target: set for the other, it would be silently ignored.
    if p.target == "aliyun" and p.sandbox_home is not None:
        problems.append(
            Problem(
                "sandbox_home",
                p.sandbox_home,
                "null for target aliyun (sandbox_home names a sandbox's folder)",
                f"{p.sandbox_home!r} is set while target is 'aliyun'",
            )
        )
    if p.target == "sandbox" and p.profile is not None:
        problems.append(
            Problem(
                "profile",
                p.profile,
                "null for target sandbox (the sandbox's own AccessKey is used); profile is "
                "for target aliyun",
                f"{p.profile!r} is set while target is 'sandbox'",
            )
        )
    if p.sandbox_home is not None and not p.sandbox_home.strip():
        problems.append(
            Problem("sandbox_home", p.sandbox_home, "a folder, or null for the default", "empty")
        )
    adopted: dict[str, int] = {}
    for i, ref in enumerate(p.adopt):
        if ref in adopted:
            problems.append(
                Problem(
                    f"adopt[{i}]",
                    ref,
                    "each object listed once",
                    f"{ref!r} is already listed as adopt[{adopted[ref]}]",
                )
            )
        adopted.setdefault(ref, i)
    seen_vsw: set[str] = set()
    for i, vsw in enumerate(p.gateway.vswitches):
        if vsw in seen_vsw:
            problems.append(
                Problem(f"gateway.vswitches[{i}]", vsw, "two different vSwitches", "duplicate")
            )
        seen_vsw.add(vsw)
    names: dict[str, int] = {}
    routes: dict[tuple[str, str], int] = {}
    protocols: dict[str, tuple[int, str]] = {}
    tls: dict[str, tuple[int, str | None, str | None]] = {}
    for i, d in enumerate(p.destinations):
        problems.extend(_tls_checks(i, d, tls.setdefault(d.ingress, (i, d.sni, d.upstream_vhost))))
        if d.name in names:
            problems.append(
                Problem(
                    f"destinations[{i}].name",
                    d.name,
                    "a name used by no other destination",
                    f"{d.name!r} is already used by destinations[{names[d.name]}]",
                )
            )
        names.setdefault(d.name, i)
        route = (d.host, d.path)
        if route in routes:
            problems.append(
                Problem(
                    f"destinations[{i}].path",
                    d.path,
                    "a host and path pair used by no other destination",
                    f"{d.host}{d.path} is already routed by destinations[{routes[route]}]",
                )
            )
        routes.setdefault(route, i)
        first = protocols.setdefault(d.ingress, (i, d.backend_protocol))
        if first[1] != d.backend_protocol:
            problems.append(
                Problem(
                    f"destinations[{i}].backend_protocol",
                    d.backend_protocol,
                    f"{first[1]!r} like destinations[{first[0]}], which shares Ingress "
                    f"{d.ingress!r} (the backend-protocol annotation is per Ingress)",
                    "conflicting backend protocol",
                )
            )
    return problems + policy_problems(p)


def _tls_checks(i: int, d: Destination, first: tuple[int, str | None, str | None]) -> list[Problem]:
    """sni needs HTTPS; sni and upstream_vhost are annotations, so one value per Ingress."""
    problems: list[Problem] = []
    if d.sni is not None and d.backend_protocol != "HTTPS":
        problems.append(
            Problem(
                f"destinations[{i}].sni",
                d.sni,
                "backend_protocol HTTPS (SNI is part of the TLS handshake), or sni null",
                f"{d.sni!r} is set with backend_protocol {d.backend_protocol}",
            )
        )
    for key, mine, theirs in (
        ("sni", d.sni, first[1]),
        ("upstream_vhost", d.upstream_vhost, first[2]),
    ):
        if mine != theirs:
            problems.append(
                Problem(
                    f"destinations[{i}].{key}",
                    mine,
                    f"{theirs!r} like destinations[{first[0]}], which shares Ingress "
                    f"{d.ingress!r} (the annotation is per Ingress)",
                    f"{mine!r} conflicts with {theirs!r}",
                )
            )
    return problems
