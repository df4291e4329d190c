"""The control endpoint: ``http://127.0.0.1:<port>/_sandbox/...``, JSON in and out.

It is how the CLI (``egress-sandbox fault|transition|audit``) reaches a sandbox running in
another process. Requests carry ``Authorization: Bearer <token>`` with the admin token of the
kubeconfig; the read-only token may only read (GET). Changes are audited as ``api=control``.

Routes::

    GET    /_sandbox/faults                 cloud + k8s faults and stuck holds
    POST   /_sandbox/faults                 {api, action, resource?, code, status, count, ...}
    DELETE /_sandbox/faults                 clear every fault and hold (held steps then run)
    POST   /_sandbox/faults/stuck           {kind, id}
    POST   /_sandbox/faults/mse-fail        {name, message}
    POST   /_sandbox/faults/drop-watches    {resource?}
    GET    /_sandbox/transitions
    PUT    /_sandbox/transitions/<kind>     {mode, seconds?}
    POST   /_sandbox/transitions/advance    {id}
    GET    /_sandbox/audit?since=&mutating=&api=
    GET    /_sandbox/origin                 public hosts with rules or a run-time state
    POST   /_sandbox/origin/down            {host}: connections to it are refused
    POST   /_sandbox/origin/up              {host}: back up
    POST   /_sandbox/reset                  faults, holds, downed hosts and transition modes
                                            back to start
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from egress_sandbox.control.actions import SandboxControls
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.httpguard import HttpLimits
from egress_sandbox.core.httpserver import ThreadedServer
from egress_sandbox.core.ids import IdFactory

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
PREFIX = "/_sandbox"
# Control bodies are a few hundred bytes; the limit is checked before authentication.
MAX_BODY = 64 * 1024


class _TooLarge(Exception):
    pass


def _read_body(request: Request) -> bytes:
    """At most MAX_BODY bytes, refused by the declared length before any is read."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _TooLarge
    try:
        data = request.stream.read(MAX_BODY + 1)
    except (OSError, ValueError, HTTPException) as exc:  # bad chunking, a client gone
        raise ValueError("the request body could not be read") from exc
    if len(data) > MAX_BODY:
        raise _TooLarge
    return data


class _Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bool(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _origin_state(args: Mapping[str, Any]) -> bool:
    state = str(args.get("state", ""))
    if state not in ("down", "up"):
        raise LookupError(f"no control route origin/{state}: use origin/down or origin/up")
    return state == "down"


class ControlApp:
    def __init__(
        self,
        controls: SandboxControls,
        *,
        admin_token: str,
        readonly_token: str,
        audit: AuditLog | None,
        ids: IdFactory,
    ) -> None:
        self.controls = controls
        self._admin = admin_token
        self._readonly = readonly_token
        self._audit = audit
        self._ids = ids
        self.url_map = Map(
            [
                Rule(f"{PREFIX}/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
                Rule(f"{PREFIX}/faults/stuck", endpoint="stuck", methods=["POST"]),
                Rule(f"{PREFIX}/faults/mse-fail", endpoint="mse_fail", methods=["POST"]),
                Rule(f"{PREFIX}/faults/drop-watches", endpoint="drop", methods=["POST"]),
                Rule(f"{PREFIX}/transitions", endpoint="transitions", methods=["GET"]),
                Rule(f"{PREFIX}/transitions/advance", endpoint="advance", methods=["POST"]),
                Rule(f"{PREFIX}/transitions/<kind>", endpoint="transition", methods=["PUT"]),
                Rule(f"{PREFIX}/audit", endpoint="audit", methods=["GET"]),
                Rule(f"{PREFIX}/origin", endpoint="origin", methods=["GET"]),
                Rule(f"{PREFIX}/origin/<state>", endpoint="origin_set", methods=["POST"]),
                Rule(f"{PREFIX}/reset", endpoint="reset", methods=["POST"]),
            ]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        principal = "anonymous"
        try:
            data = _read_body(request)
            principal = self._authenticate(request)
            status, body = 200, self._route(request, data)
        except _TooLarge:
            status, body = 413, {"error": f"the request body is larger than {MAX_BODY} bytes"}
        except _Denied as exc:
            status, body = exc.status, {"error": str(exc)}
        except ValueError as exc:
            status, body = 400, {"error": str(exc)}
        except LookupError as exc:
            status, body = 404, {"error": str(exc).strip("'\"")}
        except MethodNotAllowed:
            status, body = 405, {"error": "method not allowed"}
        except HTTPException as exc:
            status, body = exc.code or 500, {"error": exc.description or exc.name}
        except Exception:  # the CLI must get JSON it can print, never a traceback page
            log.exception("control %s %s failed", request.method, request.path)
            status, body = 500, {"error": "internal error; see sandbox.log"}
        if request.method != "GET" and self._audit is not None:
            self._audit.record(
                api="control",
                principal=principal,
                action=f"{request.method} {request.path.removeprefix(PREFIX)}",
                path=request.path,
                mutating=status < 400,
                status=status,
                request_id=self._ids.uuid("control"),  # own stream: cloud RequestIds stay put
                error_code=str(body.get("error", ""))[:80] if status >= 400 else "",
            )
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        return response(environ, start_response)

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _Denied(401, "a bearer token is required (the kubeconfig's sandbox-admin)")
        if hmac.compare_digest(token, self._admin):
            return "sandbox-admin"
        if hmac.compare_digest(token, self._readonly):
            if request.method != "GET":
                raise _Denied(403, "sandbox-readonly may only read")
            return "sandbox-readonly"
        raise _Denied(401, "unknown token")

    def _route(self, request: Request, data: bytes) -> Any:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            raise LookupError(f"no control route {request.method} {request.path}") from None
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT") and data:
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):
                raise ValueError("the body must be a JSON object") from None
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        c = self.controls
        handlers: dict[tuple[str, str], Callable[[], Any]] = {
            ("faults", "GET"): c.list_faults,
            ("faults", "POST"): lambda: c.add_fault(body),
            ("faults", "DELETE"): lambda: {"cleared": c.clear_faults()},
            ("stuck", "POST"): lambda: c.hold(body),
            ("mse_fail", "POST"): lambda: c.mse_fail(body),
            ("drop", "POST"): lambda: c.drop_watches(body),
            ("transitions", "GET"): c.list_transitions,
            ("transition", "PUT"): lambda: c.set_transition(args.get("kind", ""), body),
            ("advance", "POST"): lambda: c.advance(body),
            ("audit", "GET"): lambda: {
                "records": c.audit(
                    request.args.get("since"),
                    _bool(request.args.get("mutating")),
                    request.args.get("api") or None,
                )
            },
            ("origin", "GET"): c.origin_hosts,
            ("origin_set", "POST"): lambda: c.origin_set(body, down=_origin_state(args)),
            ("reset", "POST"): c.reset,
        }
        return handlers[(endpoint, request.method)]()


class ControlServer(ThreadedServer):
    """Serves a ControlApp on a loopback port, on a daemon thread."""

    def __init__(
        self,
        app: ControlApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
    ) -> None:
        super().__init__(
            app,
            host=host,
            port=port,
            name="control-server",
            limits=limits or HttpLimits(max_body=MAX_BODY),
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PREFIX}"
