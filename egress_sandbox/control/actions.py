"""What the control API can do to a running sandbox, without HTTP: faults, holds, transitions,
public hosts taken down.

Every operation validates its input and raises ``ValueError`` (400) or ``LookupError`` (404)
with a message meant for the person at the terminal. Nothing here is saved to state.json.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from egress_sandbox.core import stuck as stuckmod
from egress_sandbox.k8s import faults as k8s_faults
from egress_sandbox.k8s.errors import NotFound
from egress_sandbox.topology import Transition, Transitions

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

# The products the OpenAPI endpoint serves (RPC action names are not unique across them).
CLOUD_APIS = ("vpc", "slb", "cs", "mse", "ram")
APIS = (*CLOUD_APIS, "k8s")
MODES = ("immediate", "timed", "manual")


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be an integer") from None


def normalize_since(since: str) -> str:
    """An ISO time (any offset, or naive = UTC) in the audit log's own format, for comparing.

    Microseconds, as the records have them: a request answered within the millisecond of a
    mark is not counted as after it.
    """
    try:
        when = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since: not an ISO time: {since!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


class SandboxControls:
    def __init__(self, sandbox: Sandbox) -> None:
        self.box = sandbox
        # `reset` puts the transition modes back to what the topology file said.
        self._defaults = sandbox.topology.transitions.model_copy(deep=True)

    @property
    def transitions(self) -> Transitions:
        # The one live object every consumer reads at each transition.
        return self.box.topology.transitions

    # ---- faults ------------------------------------------------------------------------------

    def add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        api = str(body.get("api") or "")
        if api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}")
        action = str(body.get("action") or "")
        if not action:
            raise ValueError("action is required (an OpenAPI action, or a Kubernetes verb)")
        code = str(body.get("code") or "")
        status = _int(body, "status", 0) or 0
        count = _int(body, "count", 1) or 0
        message = str(body.get("message") or "")
        retry_after_ms = _int(body, "retry_after_ms")
        latency_ms = _int(body, "latency_ms", 0) or 0
        reset = str(body.get("reset") or "")
        if api == "k8s":
            fault: Any = self.box.k8s.app.faults.add(
                action,
                code,
                status,
                count,
                resource=str(body.get("resource") or k8s_faults.ANY),
                message=message,
                retry_after_ms=retry_after_ms,
                latency_ms=latency_ms,
                reset=reset,
                skip_dry_runs=bool(body.get("skip_dry_runs")),
            )
        else:
            if body.get("resource"):
                raise ValueError("resource applies to --api k8s only")
            if body.get("skip_dry_runs"):
                raise ValueError("skip_dry_runs applies to --api k8s only")
            fault = self.box.aliyun.faults.add(
                action, code, status, count, message, retry_after_ms, latency_ms, api, reset
            )
        return {"api": api, **asdict(fault)}

    def list_faults(self) -> dict[str, Any]:
        return {
            "cloud": self.box.aliyun.faults.list(),
            "k8s": self.box.k8s.app.faults.list(),
            "stuck": self.box.stuck.describe(),
        }

    def clear_faults(self) -> dict[str, int]:
        counts = {
            "cloud": len(self.box.aliyun.faults.list()),
            "k8s": len(self.box.k8s.app.faults.list()),
            "stuck": len(self.box.stuck.describe()),
        }
        self.box.aliyun.faults.clear()
        self.box.k8s.app.faults.clear()
        released = self.box.stuck.release_all()
        for step in released:
            # On the scheduler thread, as if they had just come due (never on this request's).
            self.box.scheduler.call_later(0, step, "stuck: released")
        counts["released_steps"] = len(released)
        return counts

    def hold(self, body: dict[str, Any]) -> dict[str, Any]:
        kind, rid = str(body.get("kind") or ""), str(body.get("id") or "")
        self.box.stuck.hold(kind, rid)
        return {"kind": kind, "id": rid}

    def mse_fail(self, body: dict[str, Any]) -> dict[str, Any]:
        name, message = str(body.get("name") or ""), str(body.get("message") or "")
        if not name or not message:
            raise ValueError("name and message are required")
        try:
            self.box.mse.fail(name, message)
        except NotFound:
            raise LookupError(f"MseIngressConfig {name} not found") from None
        return {"name": name, "phase": "Failed", "message": message}

    def drop_watches(self, body: dict[str, Any]) -> dict[str, Any]:
        resource = body.get("resource") or None
        return {"dropped": k8s_faults.drop_watches(self.box.store, resource)}

    # ---- the origin ("internet") --------------------------------------------------------------

    def origin_hosts(self) -> dict[str, Any]:
        return {"hosts": self.box.dataplane.origin_rules.describe()}

    def origin_set(self, body: dict[str, Any], *, down: bool) -> dict[str, Any]:
        host = str(body.get("host") or "")
        if not host:
            raise ValueError("host is required (a public host name, e.g. api.maps-backup.example)")
        return self.box.dataplane.set_origin_down(host, down)

    # ---- transitions -------------------------------------------------------------------------

    def list_transitions(self) -> dict[str, Any]:
        return self.transitions.model_dump()

    def set_transition(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind not in stuckmod.KINDS:
            raise LookupError(f"unknown kind {kind!r}; one of {', '.join(stuckmod.KINDS)}")
        mode = str(body.get("mode") or "")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        current: Transition = getattr(self.transitions, kind)
        seconds = body.get("seconds")
        try:
            seconds = current.seconds if seconds is None else float(seconds)
        except (TypeError, ValueError):
            raise ValueError("seconds must be a number") from None
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        # Replace the attribute of the shared object: consumers hold `transitions`, not a kind.
        setattr(self.transitions, kind, Transition(mode=mode, seconds=seconds))
        return {kind: getattr(self.transitions, kind).model_dump()}

    def advance(self, body: dict[str, Any]) -> dict[str, Any]:
        rid = str(body.get("id") or "")
        if not rid:
            raise ValueError("id is required (SNAT entry id, CS task id or MseIngressConfig name)")
        kind = stuckmod.kind_of_id(rid)
        advanced = self.box.aliyun.advance(rid) if kind else self.box.mse.advance(rid)
        if not advanced:
            raise LookupError(f"no manual transition of {rid} is waiting")
        return {"id": rid, "advanced": True}

    # ---- audit, reset ------------------------------------------------------------------------

    def audit(self, since: str | None, mutating: bool | None, api: str | None) -> list[Any]:
        records = self.box.audit.records(
            since=normalize_since(since) if since else None, mutating=mutating
        )
        return [asdict(r) for r in records if api is None or r.api == api]

    def reset(self) -> dict[str, Any]:
        cleared = self.clear_faults()
        cleared["origin_hosts"] = self.box.dataplane.origin_rules.clear()
        for kind in stuckmod.KINDS:
            setattr(self.transitions, kind, getattr(self._defaults, kind).model_copy())
        return {"cleared": cleared, "transitions": self.list_transitions()}
