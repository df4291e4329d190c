"""The request pipeline of the emulated OpenAPI endpoint (a WSGI app).

body size limit -> authenticate -> route (RPC by header, ROA by path) -> fault injection -> RAM
check (of every action, by its RAM action name) -> action -> render -> audit. Gateway errors
(size, authentication, routing, and RPC products' errors) render as
``{RequestId, HostId, Code, Message, Recommend}``; errors raised past routing on CS (business
errors, RAM denials and injected faults) render in CS's lower-case style [UNCONFIRMED: which
layer renders CS's RAM denials].
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.auth import (
    Authenticator,
    IncomingRequest,
    Principal,
    check_permission,
)
from egress_sandbox.aliyun.common.dispatch import Call, Resolution, RoaRegistry, RpcRegistry
from egress_sandbox.aliyun.common.params import Params
from egress_sandbox.aliyun.faults import FaultRegistry
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.faults import reset_if_asked
from egress_sandbox.core.ids import IdFactory

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

_PRODUCT = {"vpc": "Vpc", "slb": "Slb", "cs": "CS", "rpc": "Vpc", "mse": "mse", "ram": "Ram"}
# The largest body the endpoint reads. The real limit is not documented: 1 MiB is nginx's (and
# Tengine's) default client_max_body_size; every call the runbook makes is a few KB at most.
MAX_BODY = 1024 * 1024


def read_body(request: Request) -> bytes:
    """The body, refused past MAX_BODY by its declared length before a byte is read, and by a
    bounded read when it is chunked (nothing is authenticated yet: nothing else may be read)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.RequestEntityTooLarge(_TOO_LARGE)
    try:
        data = request.stream.read(MAX_BODY + 1)
    except (OSError, ValueError, HTTPException) as exc:  # bad chunking, a client gone
        raise errors.BadRequest("The request body could not be read.") from exc
    if len(data) > MAX_BODY:
        raise errors.RequestEntityTooLarge(_TOO_LARGE)
    return data


_TOO_LARGE = f"The request body exceeds the limit of {MAX_BODY} bytes."


def _host_id(api: str, region_id: str) -> str:
    return {
        "slb": "slb.aliyuncs.com",
        "cs": f"cs.{region_id}.aliyuncs.com",
        "mse": f"mse.{region_id}.aliyuncs.com",
        "ram": "ram.aliyuncs.com",
    }.get(api, "vpc.aliyuncs.com")


class OpenApiApp:
    def __init__(
        self,
        *,
        cloud: CloudState,
        lock: threading.RLock,
        ids: IdFactory,
        authenticator: Authenticator,
        rpc: RpcRegistry,
        roa: RoaRegistry,
        faults: FaultRegistry,
        audit: AuditLog | None,
    ) -> None:
        self._cloud = cloud
        self._lock = lock
        self._ids = ids
        self._auth = authenticator
        self._rpc = rpc
        self._roa = roa
        self._faults = faults
        self._audit = audit

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.handle(Request(environ))(environ, start_response)

    def _incoming(self, request: Request, body: bytes) -> IncomingRequest:
        # The signature covers the path and query exactly as sent, so use the raw request URI.
        raw_uri = str(request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or "/")
        raw_path, _, raw_query = raw_uri.partition("?")
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        if request.mimetype == "application/x-www-form-urlencoded" and raw_path == "/":
            # Other SDKs (and legacy v2 calls with a body) send RPC parameters as a form.
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            if value != "":
                headers.setdefault(name.lower(), []).append(value)
        return IncomingRequest(request.method, raw_path, raw_query, headers, body, params)

    def _resolve(self, req: IncomingRequest) -> Resolution:
        version = req.header("x-acs-version") or req.params.get("Version")
        if req.raw_path == "/" and req.method in ("POST", "GET"):
            action = req.header("x-acs-action") or req.params.get("Action") or ""
            return self._rpc.resolve(action, version or "")
        return self._roa.resolve(req.method, unquote(req.raw_path), version)

    def handle(self, request: Request) -> Response:
        request_id = self._ids.request_id()
        refusal: errors.ApiError | None = None
        try:
            data = read_body(request)
        except errors.ApiError as err:
            data, refusal = b"", err  # routed without the body, for the audit record
        req = self._incoming(request, data)
        resolution = self._resolve(req)
        route = resolution.route
        principal: Principal | None = None
        backend = False  # past authentication and routing: CS renders its own errors
        status, body, extra_headers = 200, None, {}
        error_code = ""
        try:
            if refusal is not None:
                raise refusal
            principal = self._auth.authenticate(req)
            if resolution.error is not None:
                raise resolution.error
            backend = True
            fault = self._faults.take(route.action, route.api, request.environ)
            if fault is not None:
                if fault.latency_ms:
                    time.sleep(fault.latency_ms / 1000)
                if fault.code:
                    raise errors.DynamicError(
                        fault.code,
                        fault.status,
                        fault.message or "Injected fault.",
                        retry_after_ms=fault.retry_after_ms,
                    )
            check_permission(
                principal,
                service=route.api,
                action=route.action,
                mutating=route.mutating,
                account_id=self._cloud.account_id,
            )
            assert route.handler is not None
            params = Params(req.params)
            result = route.handler(Call(request_id, params, {}, req.body, principal))
            body = result if route.api == "cs" else {"RequestId": request_id, **result}
        except errors.ApiError as err:
            status, error_code, extra_headers = err.http_status, err.error_code, err.headers()
            if backend and route.api == "cs":
                body = err.render_cs(request_id)
            else:
                body = err.render_pop(
                    request_id, _host_id(route.api, self._cloud.region_id), _PRODUCT[route.api]
                )
        except Exception:  # never let a bug answer with a non-JSON 500 (the SDK cannot parse it)
            log.exception("OpenAPI %s failed", route.action)
            internal = errors.ApiError()
            status, error_code = internal.http_status, internal.error_code
            body = internal.render_pop(
                request_id, _host_id(route.api, self._cloud.region_id), _PRODUCT[route.api]
            )
        if self._audit is not None:
            self._audit.record(
                api=route.api,
                principal=principal.name if principal else "anonymous",
                action=route.action,
                path=req.raw_path,
                mutating=route.mutating,
                status=status,
                request_id=request_id,
                error_code=error_code,
            )
        # A reset fault (before or after the action) answers nothing at all.
        return reset_if_asked(request.environ, self._json(status, body, request_id, extra_headers))

    def http_error_body(self, status: int, message: str) -> bytes:
        """The gateway's error JSON for what the HTTP layer refuses (malformed requests)."""
        if status == 413:
            err: errors.ApiError = errors.RequestEntityTooLarge(message)
        elif status >= 500:
            err = errors.ApiError()
        else:
            err = errors.DynamicError("BadRequest", status, message)
        body = err.render_pop(self._ids.request_id(), _host_id("rpc", ""), _PRODUCT["rpc"])
        return json.dumps(body).encode()

    @staticmethod
    def _json(status: int, body: Any, request_id: str, headers: dict[str, str]) -> Response:
        response = Response(
            json.dumps(body, ensure_ascii=False),
            status=status,
            content_type="application/json;charset=utf-8",
        )
        response.headers["x-acs-request-id"] = request_id
        for name, value in headers.items():
            response.headers[name] = value
        return response
