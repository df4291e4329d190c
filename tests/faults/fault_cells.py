"""The fault matrix's cells: for each mutating step and each fault, what is done to the sandbox
and what the issue demands of the runbook.

Each step has one write the faults aim at (:data:`TARGETS`): the call that changes the world,
so that a fault there tests what a retry or a re-run may repeat. Kubernetes faults skip
server-side dry runs, which the plan (and apply's stale check) make of the same create.

Expected outcomes: a transient fault (once, a reset, a conflict, a dropped watch) must be
absorbed: the run **converges**. A lasting one (past the deadline, for good, a held resource,
a Failed gateway) must **stop** with an egress_lib error naming the cause, after which a
fault-free re-run converges. A run **killed** half-way is followed by a re-run that converges.
A cell is ``n/a`` only where the fault cannot reach the step; ``why`` says why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fault_world import STEPS, k8s_type

from egress_lib import manifests

if TYPE_CHECKING:
    from egress_lib import Parameters
    from egress_sandbox.sandbox import Sandbox

FOREVER = 1_000_000  # "for good": far more calls than any deadline lets a run make
LATENCY_MS = 1500  # holds a write while another writer gets in first
KILL_LATENCY_MS = 1500

FAULTS: tuple[str, ...] = (
    "throttle_once",
    "throttle_deadline",
    "5xx_once",
    "5xx_forever",
    "reset",
    "conflict",
    "stuck",
    "gateway_failed",
    "dropped_watch",
    "killed",
)
FAULT_TITLES = {
    "throttle_once": "throttling once",
    "throttle_deadline": "throttling past the deadline",
    "5xx_once": "5xx once",
    "5xx_forever": "5xx for good",
    "reset": "connection reset",
    "conflict": "conflict",
    "stuck": "stuck Pending",
    "gateway_failed": "gateway Failed",
    "dropped_watch": "dropped watch",
    "killed": "killed half-way",
}
FAILED_MESSAGE = "injected: the gateway's vSwitch has no free IP address"


@dataclass(frozen=True)
class Cloud:
    api: str
    action: str

    def spec(self, **fault: Any) -> dict[str, Any]:
        return {"api": self.api, "action": self.action, **fault}

    def matches(self, record: Any) -> bool:
        return bool(record.api == self.api and record.action == self.action)

    def __str__(self) -> str:
        return f"{self.api}:{self.action}"


@dataclass(frozen=True)
class Kube:
    verb: str
    resource: str

    def spec(self, **fault: Any) -> dict[str, Any]:
        return {
            "api": "k8s",
            "action": self.verb,
            "resource": self.resource,
            "skip_dry_runs": True,
            **fault,
        }

    def matches(self, record: Any) -> bool:
        return bool(
            record.api == "k8s"
            and record.action == self.verb
            and record.mutating
            and f"/{self.resource}" in record.path
        )

    def __str__(self) -> str:
        return f"k8s {self.verb} {self.resource}"


Target = Cloud | Kube

TARGETS: dict[str, Target] = {
    "01": Cloud("cs", "InstallClusterAddons"),
    "02": Kube("create", "mseingressconfigs"),
    "03": Cloud("vpc", "CreateSnatEntry"),
    "04": Kube("create", "services"),
    "05": Kube("create", "ingresses"),
    "06": Kube("create", "pods"),
    "99": Cloud("vpc", "DeleteSnatEntry"),
}


def throttling(target: Target, count: int) -> dict[str, Any]:
    # Both with the server's retry hint: x-acs-retry-after (ms) / Retry-After (s).
    if isinstance(target, Cloud):
        return target.spec(code="Throttling.User", status=400, retry_after_ms=500, count=count)
    return target.spec(code="TooManyRequests", status=429, retry_after_ms=1000, count=count)


def server_error(target: Target, count: int) -> dict[str, Any]:
    if isinstance(target, Cloud):
        return target.spec(code="ServiceUnavailable", status=503, count=count)
    return target.spec(code="InternalError", status=500, count=count)


def remaining(box: Sandbox, spec: dict[str, Any]) -> int:
    """How many uses of the faults like ``spec`` are left (0: used up or never added)."""
    listed = box.controls.list_faults()
    key = ("code", "reset", "latency_ms")
    if spec["api"] == "k8s":
        same = [
            f
            for f in listed["k8s"]
            if (f["verb"], f["resource"]) == (spec["action"], spec["resource"])
            and f["reason"] == spec.get("code", "")
            and all(f[k] == spec.get(k, f[k]) for k in key[1:])
        ]
    else:
        same = [
            f
            for f in listed["cloud"]
            if (f["api"], f["action"]) == (spec["api"], spec["action"])
            and all(f[k] == spec.get(k, f[k]) for k in key)
        ]
    return sum(int(f["count"]) for f in same)


@dataclass
class Context:
    """What an attack works on: the running sandbox and the parameters of the cell's runs."""

    box: Sandbox
    params: Parameters


class Attack:
    """One fault: set up before the step, driven while it runs, and proof that it fired."""

    def inject(self, ctx: Context) -> None:
        pass

    def drive(self, ctx: Context, running: Callable[[], bool]) -> None:
        pass

    def not_fired(self, ctx: Context) -> str | None:
        """None when the fault hit the run; otherwise why it did not."""
        return None


@dataclass
class Counted(Attack):
    """A fault registry entry: the next N matching calls fail, reset or slow down."""

    spec: dict[str, Any]

    def inject(self, ctx: Context) -> None:
        ctx.box.controls.add_fault(dict(self.spec))

    def not_fired(self, ctx: Context) -> str | None:
        if remaining(ctx.box, self.spec) < int(self.spec.get("count", 1)):
            return None
        return f"the run never made the call the fault was on ({self.spec})"


@dataclass
class Hold(Attack):
    """``fault stuck``: every resource of a kind stays in its current state."""

    kind: str

    def inject(self, ctx: Context) -> None:
        ctx.box.controls.hold({"kind": self.kind, "id": "*"})

    def not_fired(self, ctx: Context) -> str | None:
        held = [h for h in ctx.box.controls.list_faults()["stuck"] if h["kind"] == self.kind]
        if any(h["parked_steps"] for h in held):
            return None
        return f"no {self.kind} transition came due while it was held"


@dataclass
class FailGateway(Attack):
    """The MseIngressConfig goes Failed: before the step, or while the step waits for it."""

    during: bool = False
    failed: bool = False

    def inject(self, ctx: Context) -> None:
        if self.during:
            # Manual: the config stays Pending until it is failed, whatever the timing.
            ctx.box.controls.set_transition("mse_gateway", {"mode": "manual"})
        else:
            self._fail(ctx)

    def drive(self, ctx: Context, running: Callable[[], bool]) -> None:
        if not self.during:
            return
        rt_name = ctx.params.gateway.config_name
        while running() and not self.failed:
            rt = k8s_type(ctx.box, "mseingressconfigs")
            obj = ctx.box.store.try_get(rt, None, rt_name) if rt is not None else None
            if obj is not None and (obj.get("status") or {}).get("phase") == "Pending":
                self._fail(ctx)
            time.sleep(0.02)

    def _fail(self, ctx: Context) -> None:
        ctx.box.controls.mse_fail(
            {"name": ctx.params.gateway.config_name, "message": FAILED_MESSAGE}
        )
        self.failed = True

    def not_fired(self, ctx: Context) -> str | None:
        return None if self.failed else "the MseIngressConfig never got to Pending"


@dataclass
class DropWatches(Attack):
    """End the watch streams of a resource while the step waits on one.

    ``advance``: the resource moves only on a manual transition (``mse_gateway``), advanced
    right after a stream was dropped, so the change lands while the client has no watch open:
    it must resume from the last resourceVersion (or relist) to see it. Without a watch to
    drop for a second, it is advanced anyway (a client that polls still converges, but the
    cell then says the fault never fired).
    """

    resource: str
    advance: bool = False
    dropped: int = 0

    def inject(self, ctx: Context) -> None:
        if self.advance:
            ctx.box.controls.set_transition("mse_gateway", {"mode": "manual"})

    def drive(self, ctx: Context, running: Callable[[], bool]) -> None:
        last_drop = time.monotonic()
        while running():
            n = ctx.box.controls.drop_watches({"resource": self.resource})["dropped"]
            self.dropped += n
            if n:
                last_drop = time.monotonic()
            if self.advance and (n or time.monotonic() - last_drop > 1.0):
                with contextlib.suppress(LookupError):  # nothing waiting yet
                    ctx.box.controls.advance({"id": ctx.params.gateway.config_name})
            time.sleep(0.02)

    def not_fired(self, ctx: Context) -> str | None:
        return None if self.dropped else f"no {self.resource} watch was open to drop"


@dataclass
class Race(Attack):
    """Another writer creates the same object (ours, as planned) while the step's create is
    held in the server: the create then meets a real 409 AlreadyExists."""

    target: Kube
    body: Callable[[Parameters], dict[str, Any]]
    created: int = 0  # the audit log's length once the other writer's object existed
    error: str = ""

    def inject(self, ctx: Context) -> None:
        ctx.box.controls.add_fault(self.target.spec(latency_ms=LATENCY_MS))

    def drive(self, ctx: Context, running: Callable[[], bool]) -> None:
        spec = self.target.spec(latency_ms=LATENCY_MS)
        while running() and remaining(ctx.box, spec):
            time.sleep(0.01)
        if remaining(ctx.box, spec):
            return  # the step ended without creating
        try:
            create_as_another_writer(ctx.box, self.target.resource, self.body(ctx.params))
        except Exception as e:  # noqa: BLE001 - reported by not_fired
            self.error = f"the other writer's create failed: {e}"
            return
        self.created = len(ctx.box.audit.records())

    def not_fired(self, ctx: Context) -> str | None:
        if not self.created:
            return self.error or f"the run never sent {self.target}"
        met = [
            r
            for r in ctx.box.audit.records()[self.created :]
            if self.target.matches(r) and r.status == 409
        ]
        return None if met else f"the run's {self.target} never met the other writer's object"


def create_as_another_writer(box: Sandbox, resource: str, body: dict[str, Any]) -> None:
    from kubernetes import client as k8s
    from sandbox_clients import kube

    api = kube(box)
    try:
        ns = (body.get("metadata") or {}).get("namespace") or "default"
        if resource == "services":
            k8s.CoreV1Api(api).create_namespaced_service(ns, body)
        elif resource == "ingresses":
            k8s.NetworkingV1Api(api).create_namespaced_ingress(ns, body)
        elif resource == "ingressclasses":
            k8s.NetworkingV1Api(api).create_ingress_class(body)
        else:
            group, version = manifests.MSE_GROUP, manifests.MSE_VERSION
            k8s.CustomObjectsApi(api).create_cluster_custom_object(
                group, version, manifests.MSE_PLURAL, body
            )
    finally:
        api.close()


@dataclass
class InstallInFlight(Attack):
    """Another run's step 01 is in flight when this one runs: it created the IngressClass and
    called InstallClusterAddons, and CS still works on the install (its task is held).

    CS answers a second InstallClusterAddons with AddonStateConflict meanwhile. The install
    is let go once the run has met that answer, or has made enough CS calls to be waiting for
    it; a run that returns first (a false "installed") finds it still in flight.
    """

    mark: int = 0
    started: bool = False
    released: bool = False

    def inject(self, ctx: Context) -> None:
        from alibabacloud_cs20151215 import models as cs_models
        from sandbox_clients import MSE_ADDON, cs

        ctx.box.controls.hold({"kind": "addon_install", "id": "*"})
        create_as_another_writer(ctx.box, "ingressclasses", manifests.ingress_class(ctx.params))
        name, version = MSE_ADDON
        body = cs_models.InstallClusterAddonsRequestBody(name=name, version=version)
        request = cs_models.InstallClusterAddonsRequest(body=[body])
        cs(ctx.box).install_cluster_addons(ctx.params.cluster_id, request)
        self.mark = len(ctx.box.audit.records())
        self.started = True

    def drive(self, ctx: Context, running: Callable[[], bool]) -> None:
        while running() and not self.released:
            calls = [r for r in ctx.box.audit.records()[self.mark :] if r.api == "cs"]
            met = any(r.error_code == "AddonStateConflict" for r in calls)
            if met or len(calls) >= WAITING_CALLS:
                ctx.box.controls.clear_faults()  # the held task goes on and succeeds
                self.released = True
            time.sleep(0.02)

    def not_fired(self, ctx: Context) -> str | None:
        return None if self.started else "the other install was not started"


# CS calls after which a run that did not call InstallClusterAddons is taken to be waiting:
# its plan makes three (DescribeClusterAddonsVersion, ListAddons, GetClusterAddonInstance).
WAITING_CALLS = 6


@dataclass(frozen=True)
class Kill:
    """The runbook process is SIGKILLed while the server holds its write (a latency fault)."""

    target: Target

    def spec(self) -> dict[str, Any]:
        return self.target.spec(latency_ms=KILL_LATENCY_MS)


Markers = tuple[tuple[str, ...], ...]  # every group must match, any word of a group


@dataclass(frozen=True)
class Cell:
    step: str
    fault: str
    expect: str  # converge | stop | killed | n/a
    attack: Callable[[], Attack | Kill] | None = None
    cause: Markers = ()  # what a stop's error must name
    rerun_from: str = ""  # the first step of the fault-free re-run ("": the step itself)
    why: str = ""  # n/a: why the fault cannot reach the step
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.step}-{self.fault}"


THROTTLED: Markers = (("throttl", "toomanyrequests", "429"),)
SERVER_ERROR: Markers = (("serviceunavailable", "internalerror", "503", "500"),)

NA = {
    ("01", "gateway_failed"): "01 makes no gateway: its IngressClass mse keeps the add-on from "
    "creating the default one, and nothing in 01 reads a MseIngressConfig",
    ("03", "gateway_failed"): "SNAT serves the gateway's vSwitch, not the gateway: 03 neither "
    "reads nor waits on the MseIngressConfig",
    ("04", "gateway_failed"): "ExternalName Services do not depend on the gateway; 04 waits "
    "on nothing",
    ("04", "stuck"): "a Service has no Pending state: 04 creates it and reads it back",
    ("05", "stuck"): "the gateway binds an Ingress the moment it is stored (no Pending state in "
    "between); a gateway that never listens is 02 x stuck, one that failed 05 x gateway Failed",
    ("06", "stuck"): "the sandbox's kubelet starts a pod at once (no image pulls, no hold on "
    "pods); a pod that never answers is bounded by verify.timeout_seconds",
    ("06", "conflict"): "06 names each attempt's pod with a random suffix: no other writer can "
    "hold its name, and its own retried create after a lost answer is 06 x connection reset",
    ("01", "dropped_watch"): "the sandbox's add-on is ready when its CS task succeeds: 01 polls "
    "the task, and its waits for the CRD and the Deployment find them ready (no watch opens)",
    ("03", "dropped_watch"): "03 watches nothing: it polls DescribeSnatTableEntries",
    ("04", "dropped_watch"): "04 waits on nothing",
    ("05", "dropped_watch"): "the gateway publishes an Ingress's address as it stores it, so "
    "05's wait finds it on its first list and opens no watch",
}

CONFLICTS: dict[str, Callable[[], Attack]] = {
    "01": InstallInFlight,
    "02": lambda: Race(Kube("create", "mseingressconfigs"), manifests.mse_ingress_config),
    "03": lambda: Counted(TARGETS["03"].spec(code="OperationConflict", status=400, count=1)),
    "04": lambda: Race(
        Kube("create", "services"), lambda p: manifests.external_name_services(p)[0]
    ),
    "05": lambda: Race(Kube("create", "ingresses"), lambda p: manifests.ingresses(p)[0]),
    "99": lambda: Counted(TARGETS["99"].spec(code="IncorretSnatEntryStatus", status=400, count=1)),
}
HOLDS = {"01": "addon_install", "02": "mse_gateway", "03": "snat_entry", "99": "snat_entry"}
HELD: dict[str, Markers] = {
    "01": (("task", "install"),),
    "02": (("pending",), ("mseingressconfig", "egress-gateway")),
    "03": (("pending",), ("snat",)),
    "99": (("deleting",), ("snat",)),
}
GATEWAY_FAILED: Markers = (("failed",), ("egress-gateway",))


def cell(step: str, fault: str) -> Cell:
    target = TARGETS[step]
    if (step, fault) in NA:
        return Cell(step, fault, "n/a", why=NA[(step, fault)])
    if fault == "throttle_once":
        return Cell(step, fault, "converge", lambda: Counted(throttling(target, 1)))
    if fault == "throttle_deadline":
        return Cell(step, fault, "stop", lambda: Counted(throttling(target, FOREVER)), THROTTLED)
    if fault == "5xx_once":
        return Cell(step, fault, "converge", lambda: Counted(server_error(target, 1)))
    if fault == "5xx_forever":
        return Cell(
            step, fault, "stop", lambda: Counted(server_error(target, FOREVER)), SERVER_ERROR
        )
    if fault == "reset":
        return Cell(step, fault, "converge", lambda: Counted(target.spec(reset="after", count=1)))
    if fault == "conflict":
        return Cell(step, fault, "converge", CONFLICTS[step])
    if fault == "stuck":
        kind = HOLDS[step]
        return Cell(step, fault, "stop", lambda: Hold(kind), HELD[step])
    if fault == "gateway_failed":
        if step == "99":  # teardown of a Failed gateway: delete it as any other
            return Cell(step, fault, "converge", lambda: FailGateway())
        during = step == "02"
        return Cell(
            step,
            fault,
            "stop",
            lambda: FailGateway(during=during),
            GATEWAY_FAILED,
            rerun_from="02",
        )
    if fault == "dropped_watch":
        if step == "06":
            return Cell(step, fault, "converge", lambda: DropWatches("pods"))
        return Cell(step, fault, "converge", lambda: DropWatches("mseingressconfigs", advance=True))
    if fault == "killed":
        return Cell(step, fault, "killed", lambda: Kill(target))
    raise ValueError(f"no cell {step} x {fault}")


CELLS: tuple[Cell, ...] = tuple(cell(s, f) for s in STEPS for f in FAULTS)
