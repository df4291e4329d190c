"""Which handler answers a request: RPC by ``x-acs-action``/``x-acs-version``, ROA by method+path.

A ``Route`` names the product (``api`` for audit and error rendering), the action, whether it
mutates (for the RAM check and audit) and the handler. Resolution never raises for unknown
input: it returns the error to raise *after* authentication, so an unauthenticated caller
learns nothing about which actions exist, and the audit record still names what was asked.
[UNCONFIRMED] Unknown version -> 400 InvalidVersion; unknown action (or an ROA path/method that
no action has) -> 404 InvalidAction.NotFound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.auth import Principal
from egress_sandbox.aliyun.common.params import Params


@dataclass(frozen=True)
class Call:
    """One authenticated request, as handlers see it."""

    request_id: str
    params: Params  # RPC: query + form body; ROA: query
    path_args: Mapping[str, str]
    body: bytes
    principal: Principal


Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    api: str  # vpc | slb | cs
    action: str
    mutating: bool
    handler: Handler | None = None


@dataclass
class Resolution:
    route: Route
    error: errors.ApiError | None = None


@dataclass
class _Product:
    api: str
    responses: object
    actions: dict[str, tuple[str, bool]]


def _guess_mutating(action: str) -> bool:
    return not action.startswith(("Describe", "List", "Get", "Query", "Check"))


class RpcRegistry:
    """RPC products by API version; each maps action names to ``(method name, mutating)``."""

    def __init__(self) -> None:
        self._by_version: dict[str, _Product] = {}

    def register(
        self, version: str, api: str, responses: object, actions: dict[str, tuple[str, bool]]
    ) -> None:
        self._by_version[version] = _Product(api, responses, actions)

    def resolve(self, action: str, version: str) -> Resolution:
        product = self._by_version.get(version)
        if product is None:
            return Resolution(
                Route("rpc", action, _guess_mutating(action)),
                errors.InvalidVersion(f"Specified parameter Version is not valid: {version!r}."),
            )
        entry = product.actions.get(action)
        if entry is None:
            return Resolution(
                Route(product.api, action, _guess_mutating(action)),
                errors.InvalidActionNotFound(
                    f"Specified api is not found, please check your url and method. {action}"
                ),
            )
        method_name, mutating = entry
        method = getattr(product.responses, method_name)

        def handler(call: Call) -> Any:
            return method(call.params)

        return Resolution(Route(product.api, action, mutating, handler))


@dataclass
class RoaRegistry:
    """ROA actions of one product (CS) as werkzeug rules: ``(method, path template, action)``."""

    api: str
    version: str
    rules: list[tuple[str, str, str]]
    handlers: Mapping[str, Handler]
    _map: Map = field(init=False)

    def __post_init__(self) -> None:
        self._map = Map(
            [Rule(path, methods=[m], endpoint=action) for m, path, action in self.rules],
            strict_slashes=False,
            merge_slashes=False,
        )

    def resolve(self, method: str, path: str, version: str | None) -> Resolution:
        adapter = self._map.bind("openapi")
        try:
            action, args = adapter.match(path, method=method)
        except HTTPException:
            return Resolution(
                Route(self.api, "", method != "GET"),
                errors.InvalidActionNotFound(
                    f"Specified api is not found, please check your url and method. {method} {path}"
                ),
            )
        route = Route(
            self.api, str(action), method != "GET", _bind(self.handlers[str(action)], args)
        )
        if version is not None and version != self.version:
            return Resolution(route, errors.InvalidVersion())
        return Resolution(route)


def _bind(handler: Handler, args: Mapping[str, Any]) -> Handler:
    def bound(call: Call) -> Any:
        return handler(
            Call(
                call.request_id,
                call.params,
                {k: str(v) for k, v in args.items()},
                call.body,
                call.principal,
            )
        )

    return bound
