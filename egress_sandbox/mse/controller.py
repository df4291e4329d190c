"""The emulated MSE Ingress Controller: add-on effects, MseIngressConfig phases, Ingress status.

Store subscribers run on the writer's thread with ``Store.lock`` held, so the subscriber only
schedules work on the Scheduler thread; every write back to the store happens there.
Phases: no status -> Pending (validated) -> [transitions.mse_gateway] -> Running (gateway and
CLBs exist, data plane open) -> [same delay] -> Listening. Deletion waits for the finalizer
``mse.alibabacloud.com/gateway``, which is removed once the gateway is released.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from egress_sandbox.aliyun.ram.models import missing_mse_roles
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.core.stuck import StuckRegistry
from egress_sandbox.k8s.errors import Conflict, NotFound
from egress_sandbox.k8s.store import Store, WatchEvent
from egress_sandbox.mse import gateway as gwmod
from egress_sandbox.mse import ingress_status, install, listeners
from egress_sandbox.mse.binding import config_type_registered
from egress_sandbox.mse.crd import GROUP, MSE_INGRESS_CONFIG, PLURAL
from egress_sandbox.mse.gateway import unauthorized_message
from egress_sandbox.topology import Transition, Transitions

if TYPE_CHECKING:
    from egress_sandbox.dataplane.plane import DataPlane

log = logging.getLogger(__name__)
Obj = dict[str, Any]
FINALIZER = "mse.alibabacloud.com/gateway"
COMPONENT = "mse-ingress-controller"
_WATCHED = {
    (GROUP, PLURAL),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "ingressclasses"),
}


class MseController:
    """Implements ``CloudHooks`` and reconciles MseIngressConfigs and Ingress status."""

    def __init__(
        self,
        store: Store,
        cloud: CloudState,
        *,
        cloud_lock: threading.RLock,
        ids: IdFactory,
        scheduler: Scheduler,
        transitions: Transitions,
        dataplane: DataPlane,
        kubeconfig: Callable[[], str],
        stuck: StuckRegistry | None = None,
        public_slb_by_default: bool = False,
    ) -> None:
        self.store = store
        self.public_slb_by_default = public_slb_by_default
        self.stuck = stuck or StuckRegistry()
        self.cloud = cloud
        self.cloud_lock = cloud_lock
        self.ids = ids
        self.scheduler = scheduler
        self.transitions = transitions
        self.dataplane = dataplane
        self._kubeconfig = kubeconfig
        self._lock = threading.Lock()
        # All reconcile work is serialized: it normally runs on the Scheduler thread, but the
        # hooks and fail() run on their callers' threads.
        self._serial = threading.RLock()
        self._running = False
        self._subscribed = False
        self._cluster_id: str | None = None
        # name -> (uid, step) of the one transition in flight per config.
        self._inflight: dict[str, tuple[str, str]] = {}
        self._manual: dict[str, Callable[[], None]] = {}
        self._failed_generation: dict[str, int] = {}
        self._sync_requested = False

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the store and pick up persisted state (reopen CLBs, resume phases)."""
        with self._lock:
            self._running = True
            if not self._subscribed:
                self.store.subscribe(self._on_event)
                self._subscribed = True
        self.scheduler.call_later(0, self._resync, "mse: resync")

    def stop(self) -> None:
        # The Store has no unsubscribe: the callback turns into a no-op instead.
        with self._lock:
            self._running = False
            self._manual.clear()
            self._inflight.clear()

    # ---- CloudHooks --------------------------------------------------------------------------

    def addon_installing(self, cluster_id: str, name: str, version: str, config: str) -> None:
        # Nothing is visible in the cluster until the install task finishes.
        log.info("add-on %s %s installing on %s", name, version, cluster_id)

    def addon_installed(self, cluster_id: str, name: str, version: str, config: str) -> None:
        if name != install.ADDON_NAME:
            return
        self._cluster_id = cluster_id
        with self._serial:
            install.install(self.store, self.cloud, cluster_id, version)
        self.scheduler.call_later(0, self._resync, "mse: resync")

    def addon_uninstalled(self, cluster_id: str, name: str) -> None:
        if name == install.ADDON_NAME:
            install.uninstall(self.store)

    def kubeconfig(self, cluster_id: str) -> str:
        return self._kubeconfig()

    # ---- fault injection and manual transitions ----------------------------------------------

    def fail(self, name: str, message: str) -> None:
        """Put a config into phase Failed with ``message`` (cancels its pending transition)."""
        with self._serial:
            with self._lock:
                self._inflight.pop(name, None)
                self._manual.pop(name, None)
            obj = self.store.try_get(MSE_INGRESS_CONFIG, None, name)
            if obj is None:
                raise NotFound.of(PLURAL, GROUP, name)
            self._to_failed(obj, message)
        self._request_sync()

    def advance(self, name: str) -> bool:
        """Run the waiting transition of a config under ``mode: manual``; False if none."""
        with self._lock:
            fn = self._manual.pop(name, None)
        if fn is None:
            return False
        self.scheduler.call_later(0, fn, f"mse: advance {name}")
        return True

    # ---- event intake ------------------------------------------------------------------------

    def _on_event(self, ev: WatchEvent) -> None:
        if not self._running or ev.rtype.key not in _WATCHED:
            return
        if ev.rtype.key == (GROUP, PLURAL):
            name = ev.object["metadata"]["name"]
            self.scheduler.call_later(0, lambda: self._reconcile(name), f"mse: reconcile {name}")
        self._request_sync()

    def _request_sync(self) -> None:
        # Many events in a burst collapse into one pass over the Ingresses.
        with self._lock:
            if self._sync_requested or not self._running:
                return
            self._sync_requested = True
        self.scheduler.call_later(0, self._sync_ingresses, "mse: ingress status")

    def _sync_ingresses(self) -> None:
        with self._lock:
            self._sync_requested = False
        if self._running:
            with self._serial:
                # Listeners first: the status carries the real port of a newly opened 443.
                for lb in listeners.sync(self.store, self.cloud, self.cloud_lock):
                    self.dataplane.open_clb(lb)
                ingress_status.sync_all(self.store, self.cloud, self.cloud_lock)

    # ---- reconcile ---------------------------------------------------------------------------

    def _active(self) -> bool:
        return (
            self._running
            and config_type_registered(self.store)
            and install.is_installed(self.store)
        )

    def _cluster(self) -> str:
        if self._cluster_id is None:
            with self.cloud_lock:
                self._cluster_id = next(iter(self.cloud.clusters), "")
        return self._cluster_id

    def _resync(self) -> None:
        with self._serial:
            if not self._active():
                return
            configs, _ = self.store.list(MSE_INGRESS_CONFIG)
            for cfg in configs:
                name = cfg["metadata"]["name"]
                if (cfg.get("status") or {}).get("phase") in ("Running", "Listening"):
                    self._open_clbs(name)  # after a restart from persisted state
                self._reconcile_locked(name)
        self._request_sync()

    def _reconcile(self, name: str) -> None:
        with self._serial:
            self._reconcile_locked(name)

    def _reconcile_locked(self, name: str) -> None:
        if not self._active():
            return
        obj = self.store.try_get(MSE_INGRESS_CONFIG, None, name)
        if obj is None:
            return
        meta = obj["metadata"]
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []):
                self._after(name, uid, "finalize", lambda: self._finalize(name, uid))
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
            try:
                obj = self.store.update(MSE_INGRESS_CONFIG, obj)
            except (Conflict, NotFound):
                return  # a newer version is on its way through the subscriber
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Failed":
            if obj["metadata"].get("generation", 1) == self._failed_generation.get(name):
                return
            phase = None  # the spec changed since it failed: try again from Pending
        if not phase:
            self._begin(obj)
        elif phase == "Pending":
            self._after(name, uid, "provision", lambda: self._provision(name, uid))
        elif phase == "Running":
            self._after(name, uid, "listen", lambda: self._listen(name, uid))
        elif phase == "Listening":
            self._apply_spec(obj)

    def _begin(self, obj: Obj) -> None:
        name, uid = obj["metadata"]["name"], obj["metadata"]["uid"]
        obj = self._set_status(name, "Pending") or obj
        self._event(obj, "Creating", f"Creating MSE gateway {self._gateway_name(obj)}")
        error = self._validate(obj)
        if error:
            self._to_failed(obj, error)
            return
        self._after(name, uid, "provision", lambda: self._provision(name, uid))

    def _validate(self, obj: Obj) -> str | None:
        spec = obj.get("spec") or {}
        with self.cloud_lock:
            missing = missing_mse_roles(self.cloud)
            if missing:
                return unauthorized_message(missing)
            try:
                gwmod.gateway_vswitches(self.cloud, spec, self._cluster())
            except gwmod.GatewayError as exc:
                return str(exc)
            if spec.get("id") and gwmod.find_gateway(self.cloud, spec["id"]) is None:
                return f"gateway {spec['id']} not found"
        return None

    def _after(self, name: str, uid: str, step: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` once after the ``mse_gateway`` transition; one step in flight per config."""
        with self._lock:
            if self._inflight.get(name) == (uid, step):
                return
            self._inflight[name] = (uid, step)
        t: Transition = self.transitions.mse_gateway

        def run() -> None:
            # `fault stuck --kind mse_gateway` parks the step; `fault clear` runs it later.
            if self.stuck.park_if_held("mse_gateway", name, run):
                return
            with self._lock:
                if self._inflight.get(name) != (uid, step):
                    return  # superseded (failed, deleted, or another step started)
                del self._inflight[name]
            with self._serial:
                fn()

        if t.mode == "manual":
            with self._lock:
                self._manual[name] = run
        else:
            delay = 0.0 if t.mode == "immediate" else t.seconds
            self.scheduler.call_later(delay, run, f"mse: {step} {name}")

    def _current(self, name: str, uid: str) -> Obj | None:
        obj = self.store.try_get(MSE_INGRESS_CONFIG, None, name)
        if obj is None or obj["metadata"]["uid"] != uid or not self._running:
            return None
        return obj

    def _provision(self, name: str, uid: str) -> None:
        obj = self._current(name, uid)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        if (obj.get("status") or {}).get("phase") != "Pending":
            return
        try:
            with self.cloud_lock:
                gw, lbs = gwmod.provision(
                    self.cloud,
                    self.ids,
                    config_name=name,
                    spec=obj.get("spec") or {},
                    cluster_id=self._cluster(),
                    public_by_default=self.public_slb_by_default,
                )
                addresses = ", ".join(
                    f"{lb.address_type} CLB {lb.load_balancer_id} at {lb.address}" for lb in lbs
                )
        except gwmod.GatewayError as exc:
            self._to_failed(obj, str(exc))
            return
        for lb in lbs:
            self.dataplane.open_clb(lb)
        obj = self._set_status(name, "Running") or obj
        self._event(obj, "Running", f"Gateway {gw.gateway_id} is running; {addresses}")
        self._after(name, uid, "listen", lambda: self._listen(name, uid))

    def _listen(self, name: str, uid: str) -> None:
        obj = self._current(name, uid)
        if obj is None or (obj.get("status") or {}).get("phase") != "Running":
            return
        obj = self._set_status(name, "Listening") or obj
        with self.cloud_lock:
            gw = gwmod.gateway_of_config(self.cloud, name)
        gw_id = gw.gateway_id if gw else "?"
        self._event(obj, "Listening", f"Gateway {gw_id} is listening to Ingresses")
        self._request_sync()

    def _apply_spec(self, obj: Obj) -> None:
        with self.cloud_lock:
            gw = gwmod.gateway_of_config(self.cloud, obj["metadata"]["name"])
            changed = gw is not None and gwmod.update_instance(gw, obj.get("spec") or {})
        if changed and gw is not None:
            self._event(
                obj, "Updated", f"Gateway {gw.gateway_id}: spec {gw.spec}, replicas {gw.replicas}"
            )

    def _finalize(self, name: str, uid: str) -> None:
        obj = self._current(name, uid)
        if obj is None:
            return
        with self.cloud_lock:
            gw = gwmod.gateway_of_config(self.cloud, name)
            reused = bool((obj.get("spec") or {}).get("id"))
            lb_ids = gwmod.release(self.cloud, gw, reused=reused) if gw else []
        for lb_id in lb_ids:
            self.dataplane.close_clb(lb_id)
        if gw is not None:
            verb = "detached (retained: reused gateway)" if reused else "deleted"
            self._event(obj, "Deleted", f"Gateway {gw.gateway_id} {verb}")
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER
        ]
        try:
            self.store.update(MSE_INGRESS_CONFIG, obj)
        except (Conflict, NotFound):
            self.scheduler.call_later(0, lambda: self._reconcile(name), f"mse: retry {name}")
        self._failed_generation.pop(name, None)
        self._request_sync()

    def _open_clbs(self, name: str) -> None:
        with self.cloud_lock:
            gw = gwmod.gateway_of_config(self.cloud, name)
            lbs = (
                [
                    self.cloud.load_balancers[i]
                    for i in (gw.private_slb_id, gw.public_slb_id)
                    if i in self.cloud.load_balancers
                ]
                if gw
                else []
            )
        for lb in lbs:
            self.dataplane.open_clb(lb)

    # ---- helpers -----------------------------------------------------------------------------

    def _to_failed(self, obj: Obj, message: str) -> None:
        name = obj["metadata"]["name"]
        obj = self._set_status(name, "Failed", message) or obj
        self._failed_generation[name] = obj["metadata"].get("generation", 1)
        self._event(obj, "Failed", message, warning=True)

    def _set_status(self, name: str, phase: str, message: str | None = None) -> Obj | None:
        with self.store.lock:  # read-modify-write without a window for a conflict
            obj = self.store.try_get(MSE_INGRESS_CONFIG, None, name)
            if obj is None:
                return None
            status: Obj = {"phase": phase}
            if message:
                status["message"] = message
            obj["status"] = status
            return self.store.update(MSE_INGRESS_CONFIG, obj, subresource="status")

    @staticmethod
    def _gateway_name(obj: Obj) -> str:
        return str((obj.get("spec") or {}).get("name") or "mse-ingress")

    def _event(self, obj: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        self.store.record_event(
            obj, reason, message, type_="Warning" if warning else "Normal", component=COMPONENT
        )
