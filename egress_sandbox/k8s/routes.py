"""URL routing of the emulated kube-apiserver, and dispatch of each request to its handler.

:class:`ApiApp` is the WSGI application: authentication, authorization, audit and the
rendering of errors as ``Status`` happen here, once, for every path.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.faults import reset_if_asked
from egress_sandbox.k8s import bodies, discovery, handlers, podlog, watch
from egress_sandbox.k8s.auth import User, allowed, authenticate, authorize
from egress_sandbox.k8s.errors import ApiError, MethodNotAllowed, NotFound
from egress_sandbox.k8s.faults import KubeFaultRegistry
from egress_sandbox.k8s.handlers import Target
from egress_sandbox.k8s.openapi import OpenApiDocs
from egress_sandbox.k8s.store import Obj, Store
from egress_sandbox.k8s.tables import to_table
from egress_sandbox.k8s.types import ResourceType

log = logging.getLogger(__name__)
PodLogs = Callable[[str, str, "str | None"], str]
_JSON = "application/json"
_MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass
class Ctx:
    """What the audit record needs to know about a request, filled as it is handled."""

    user: User | None = None
    verb: str = ""
    # Reviews are created and dry runs write, yet change nothing: the audit log must not count
    # them as writes.
    read_only: bool = False


def _not_found_path() -> ApiError:
    return NotFound("the server could not find the requested resource", details={})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype=_JSON, headers=headers
    )


class ApiApp:
    def __init__(
        self,
        store: Store,
        users: dict[str, User],
        audit: AuditLog | None,
        pod_logs: PodLogs | None,
        server_address: Callable[[], str],
    ) -> None:
        self.store = store
        self.users = users
        self.audit = audit
        self.pod_logs = pod_logs
        self.server_address = server_address
        self.openapi = OpenApiDocs()
        self.stopping = threading.Event()
        self.faults = KubeFaultRegistry()  # `egress-sandbox fault add --api k8s`
        self.bookmark_interval = 1.0
        self._openapi_bytes: dict[tuple[str, str], bytes] = {}
        self.url_map = Map(
            [
                Rule("/version", endpoint="version"),
                Rule("/api", endpoint="api"),
                Rule("/apis", endpoint="apis"),
                Rule("/api/<version>", endpoint="core_gv"),
                Rule("/apis/<group>", endpoint="group"),
                Rule("/apis/<group>/<version>", endpoint="named_gv"),
                Rule("/api/<version>/<path:rest>", endpoint="core_res"),
                Rule("/apis/<group>/<version>/<path:rest>", endpoint="named_res"),
                Rule("/openapi/v3", endpoint="openapi_root"),
                Rule("/openapi/v3/<path:gv>", endpoint="openapi_gv"),
                *(Rule(p, endpoint="health") for p in ("/healthz", "/livez", "/readyz")),
            ],
            strict_slashes=False,
        )

    # ---- WSGI -------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        ctx = Ctx()
        audit_id = self.store.ids.uuid()
        try:
            response = self._handle(request, ctx)
        except ApiError as exc:
            response = _json(exc.code, exc.status(), getattr(exc, "headers", None))
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            err = ApiError(
                "Internal error occurred: unexpected server error", code=500, reason="InternalError"
            )
            response = _json(500, err.status())
        response.headers["Audit-Id"] = audit_id
        response.headers.setdefault("Cache-Control", "no-cache, private")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        self._audit(request, ctx, response, audit_id)
        # A reset fault (before or after the request) answers nothing at all.
        return reset_if_asked(environ, response)(environ, start_response)

    def _audit(self, request: Request, ctx: Ctx, response: Response, audit_id: str) -> None:
        if self.audit is None:
            return
        reason = ""
        if response.status_code >= 400 and response.mimetype == _JSON and not response.is_streamed:
            try:
                reason = str(json.loads(response.get_data()).get("reason", ""))
            except ValueError:
                reason = ""
        self.audit.record(
            api="k8s",
            principal=ctx.user.name if ctx.user else "system:anonymous",
            action=ctx.verb or request.method.lower(),
            path=request.full_path.rstrip("?"),
            mutating=ctx.verb in _MUTATING and not ctx.read_only,
            status=response.status_code,
            request_id=audit_id,
            error_code=reason,
        )

    def _handle(self, request: Request, ctx: Ctx) -> Response:
        ctx.user = authenticate(request.headers.get("Authorization"), self.users)
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match(return_rule=False)
        except HTTPException as exc:
            raise _not_found_path() from exc
        if endpoint in ("core_res", "named_res"):
            return self._resource(
                request, ctx, args.get("group", ""), args["version"], args["rest"]
            )
        ctx.verb = "get"
        if request.method != "GET":
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource", details={}
            )
        return self._nonresource(endpoint, args)

    # ---- non-resource paths -----------------------------------------------------------------

    def _nonresource(self, endpoint: str, args: Mapping[str, Any]) -> Response:
        reg = self.store.types
        if endpoint == "version":
            return _json(200, discovery.KUBE_VERSION)
        if endpoint == "health":
            return Response("ok", mimetype="text/plain")
        if endpoint == "api":
            return _json(200, discovery.core_versions(self.server_address()))
        if endpoint == "apis":
            return _json(200, discovery.group_list(reg))
        if endpoint == "group":
            g = discovery.group(reg, args["group"])
            if g is None:
                raise _not_found_path()
            return _json(200, g)
        if endpoint in ("core_gv", "named_gv"):
            group = args.get("group", "")
            types = discovery.types_in(reg, group, args["version"])
            if not types:
                raise _not_found_path()
            gv = f"{group}/{args['version']}" if group else args["version"]
            return _json(200, discovery.resource_list(gv, types))
        if endpoint == "openapi_root":
            return _json(200, self.openapi.root(self._by_gv()))
        if endpoint == "openapi_gv":
            return self._openapi_gv(args["gv"])
        raise _not_found_path()

    def _by_gv(self) -> dict[tuple[str, str], list[ResourceType]]:
        out: dict[tuple[str, str], list[ResourceType]] = {}
        for t in self.store.types.all():
            out.setdefault((t.group, t.version), []).append(t)
        return out

    def _openapi_gv(self, gv: str) -> Response:
        parts = gv.split("/")
        if parts[0] == "api" and len(parts) == 2:
            key = ("", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            key = (parts[1], parts[2])
        else:
            raise _not_found_path()
        types = self._by_gv().get(key)
        if not types:
            raise _not_found_path()
        h, doc = self.openapi.document(key[0], key[1], types)
        data = self._openapi_bytes.get((gv, h))
        if data is None:
            data = json.dumps(doc, separators=(",", ":")).encode()
            self._openapi_bytes[(gv, h)] = data
        return Response(data, mimetype=_JSON, headers={"Etag": f'"{h}"'})

    # ---- resources --------------------------------------------------------------------------

    def _target(self, group: str, version: str, rest: str) -> Target:
        segs = [s for s in rest.split("/") if s]
        ns: str | None = None
        if (
            len(segs) >= 3
            and segs[0] == "namespaces"
            and not (group == "" and len(segs) == 3 and segs[2] in ("status", "finalize"))
        ):
            ns, segs = segs[1], segs[2:]
        if not segs or len(segs) > 3:
            raise _not_found_path()
        rt = self.store.types.get(group, version, segs[0])
        if rt is None or (ns is not None and not rt.namespaced):
            raise _not_found_path()
        name = segs[1] if len(segs) > 1 else None
        sub = segs[2] if len(segs) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise _not_found_path()
        return Target(rt, ns if rt.namespaced else None, name, sub)

    @staticmethod
    def _verb(request: Request, t: Target) -> str:
        m = request.method
        if t.name is None:
            if m == "GET":
                return "watch" if request.args.get("watch") in ("1", "true") else "list"
            return {"POST": "create", "DELETE": "deletecollection"}.get(m, "")
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(m, "")

    def _resource(
        self, request: Request, ctx: Ctx, group: str, version: str, rest: str
    ) -> Response:
        t = self._target(group, version, rest)
        verb = self._verb(request, t)
        ctx.verb = verb
        allowed_verbs = set(t.rt.verbs)
        if t.subresource == "log":
            allowed_verbs = {"get"}
        elif t.subresource:
            allowed_verbs = {"get", "update", "patch"}
        if not verb or (
            verb not in allowed_verbs and not (verb == "watch" and "watch" in t.rt.verbs)
        ):
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource", details={}
            )
        assert ctx.user is not None
        if t.rt.kind != "SelfSubjectAccessReview":  # every user may ask what it may do
            authorize(ctx.user, verb, t.rt.plural, t.rt.group, t.namespace, t.name, t.subresource)
        # Injected faults hit authorized requests only.
        self.faults.check(verb, t.rt.plural, request.environ)
        if t.rt.namespaced and t.namespace and verb == "create":
            self._namespace_exists(t.namespace)
        if t.rt.kind == "SelfSubjectAccessReview":
            ctx.read_only = True
            return self._access_review(request, t, ctx.user)
        if t.subresource == "log":
            return self._pod_log(request, t)
        table = "as=Table" in (request.headers.get("Accept") or "")
        if verb == "watch":
            render = self._renderer(request, t) if table else (lambda o: o)
            events = watch.stream(
                self.store, t, request, render, self.stopping, self.bookmark_interval
            )
            return Response(events, mimetype=_JSON, direct_passthrough=True)
        status, body, headers = self._dispatch(verb, request, t, ctx)
        if table and verb in ("get", "list") and isinstance(body, dict):
            body = self._table(request, t, body)
        return _json(status, body, headers)

    def _dispatch(self, verb: str, request: Request, t: Target, ctx: Ctx) -> handlers.Result:
        # Any dryRun value means nothing is stored: "All" is a dry run, others are refused.
        ctx.read_only = bool(request.args.getlist("dryRun"))
        if verb in ("delete", "deletecollection"):
            opts = handlers.delete_options(request)  # DeleteOptions may ask for it in the body
            ctx.read_only = bool(opts.get("dryRun"))
            if verb == "delete":
                return handlers.delete(self.store, t, opts)
            return handlers.delete_collection(self.store, t, request, opts)
        if verb == "get":
            return handlers.get(self.store, t)
        if verb == "list":
            return handlers.list_(self.store, t, request)
        if verb == "create":
            return handlers.create(self.store, t, request)
        if verb == "update":
            return handlers.update(self.store, t, request)
        return handlers.patch_(self.store, t, request)

    def _namespace_exists(self, ns: str) -> None:
        nst = self.store.types.get("", "v1", "namespaces")
        assert nst is not None
        if self.store.try_get(nst, None, ns) is None:
            raise NotFound.of("namespaces", "", ns)

    # ---- rendering --------------------------------------------------------------------------

    def _printer_columns(self, t: Target) -> list[Obj] | None:
        if t.rt.schema is None:
            return None
        crd_rt = self.store.types.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        crd = self.store.try_get(crd_rt, None, f"{t.rt.plural}.{t.rt.group}")
        for v in (crd or {}).get("spec", {}).get("versions") or []:
            if v.get("name") == t.rt.version:
                cols: list[Obj] | None = v.get("additionalPrinterColumns")
                return cols
        return None

    def _renderer(self, request: Request, t: Target) -> Callable[[Obj], Obj]:
        include = request.args.get("includeObject", "Metadata")
        cols = self._printer_columns(t)

        def render(o: Obj) -> Obj:
            if o.get("kind") == t.rt.kind and "metadata" in o and "name" in o["metadata"]:
                return to_table(
                    t.rt,
                    [o],
                    {"resourceVersion": o["metadata"].get("resourceVersion", "")},
                    include,
                    cols,
                )
            return o

        return render

    def _table(self, request: Request, t: Target, body: Obj) -> Obj:
        include = request.args.get("includeObject", "Metadata")
        cols = self._printer_columns(t)
        if "items" in body:
            items = [
                {**o, "apiVersion": t.rt.group_version, "kind": t.rt.kind} for o in body["items"]
            ]
            return to_table(t.rt, items, body["metadata"], include, cols)
        return to_table(
            t.rt,
            [body],
            {"resourceVersion": body["metadata"].get("resourceVersion", "")},
            include,
            cols,
        )

    # ---- special resources ------------------------------------------------------------------

    def _pod_log(self, request: Request, t: Target) -> Response:
        assert t.name is not None and t.namespace is not None
        ns, name = t.namespace, t.name
        pod = self.store.get(t.rt, ns, name)
        opts = podlog.parse(request, pod)

        def source() -> str:
            return self.pod_logs(ns, name, opts.container) if self.pod_logs else ""

        if not opts.follow:
            return Response(podlog.render(source(), pod, opts), mimetype="text/plain")
        source()  # a container that has not started is refused before streaming begins
        chunks = podlog.follow(
            source, lambda: self.store.try_get(t.rt, ns, name), pod, opts, self.stopping
        )
        return Response(chunks, mimetype="text/plain", direct_passthrough=True)

    def _access_review(self, request: Request, t: Target, user: User) -> Response:
        body = bodies.decode_object(request, bodies.raw_body(request))
        handlers.check_identity(t, body, for_update=False)
        spec = body.get("spec") or {}
        attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        verb = str(attrs.get("verb", ""))
        ok = allowed(user, verb)
        status: Obj = {"allowed": ok}
        if ok:
            status["reason"] = (
                'RBAC: allowed by ClusterRoleBinding "sandbox" of ClusterRole "cluster-admin" '
                f'to User "{user.name}"'
            )
        body.setdefault("metadata", {})["creationTimestamp"] = None
        body["apiVersion"], body["kind"] = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
        body["status"] = status
        return _json(201, body)
