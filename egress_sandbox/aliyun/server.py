"""OpenApiServer: VPC, SLB and CS on one loopback HTTP endpoint, like the real POP gateway.

Clients use ``Config(endpoint=server.endpoint, protocol="http")``. Each request runs on its own
thread (werkzeug ``threaded=True``); cloud state is guarded by the shared ``lock``. Request
lines are never logged, because legacy v2 calls carry a SecurityToken in the query.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from egress_sandbox.aliyun.app import OpenApiApp
from egress_sandbox.aliyun.common.auth import Authenticator
from egress_sandbox.aliyun.common.dispatch import RpcRegistry
from egress_sandbox.aliyun.cs.models import AddonRequest, CsModel
from egress_sandbox.aliyun.cs.responses import CsResponses
from egress_sandbox.aliyun.faults import FaultRegistry
from egress_sandbox.aliyun.hooks import CloudHooks
from egress_sandbox.aliyun.lifecycle import Lifecycle
from egress_sandbox.aliyun.records import Addon, CloudState
from egress_sandbox.aliyun.slb import responses as slb_responses
from egress_sandbox.aliyun.vpc import responses as vpc_responses
from egress_sandbox.aliyun.vpc.models import VpcModel
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.core.stuck import StuckRegistry, kind_of_id
from egress_sandbox.topology import Transition, Transitions

VPC_VERSION = "2016-04-28"
SLB_VERSION = "2014-05-15"


class _QuietHandler(WSGIRequestHandler):
    """No per-request log lines: a query string may hold a security token."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


class _HeldLifecycle(Lifecycle):
    """A Lifecycle whose steps park themselves while ``fault stuck`` holds their resource."""

    def __init__(self, scheduler: Scheduler, stuck: StuckRegistry) -> None:
        super().__init__(scheduler)
        self._stuck = stuck

    def schedule(
        self, transition: Transition, resource_id: str, step: Callable[[], None], reason: str
    ) -> None:
        gated = self._stuck.gate(kind_of_id(resource_id), resource_id, step)
        super().schedule(transition, resource_id, gated, reason)


class OpenApiServer:
    def __init__(
        self,
        cloud: CloudState,
        *,
        lock: threading.RLock,
        ids: IdFactory,
        scheduler: Scheduler,
        transitions: Transitions,
        hooks: CloudHooks,
        audit: AuditLog | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        stuck: StuckRegistry | None = None,
    ) -> None:
        self.cloud = cloud
        self.lock = lock
        self.transitions = transitions
        self.faults = FaultRegistry()
        self.stuck = stuck or StuckRegistry()
        self.lifecycle: Lifecycle = _HeldLifecycle(scheduler, self.stuck)
        self.vpc = VpcModel(
            cloud, lock=lock, ids=ids, lifecycle=self.lifecycle, transitions=transitions
        )
        self.cs = CsModel(
            cloud,
            lock=lock,
            ids=ids,
            lifecycle=self.lifecycle,
            transitions=transitions,
            hooks=hooks,
        )
        rpc = RpcRegistry()
        rpc.register(
            VPC_VERSION, "vpc", vpc_responses.VpcResponses(self.vpc), vpc_responses.ACTIONS
        )
        rpc.register(
            SLB_VERSION, "slb", slb_responses.SlbResponses(cloud, lock), slb_responses.ACTIONS
        )
        self.authenticator = Authenticator(cloud, lock)
        self.app = OpenApiApp(
            cloud=cloud,
            lock=lock,
            ids=ids,
            authenticator=self.authenticator,
            rpc=rpc,
            roa=CsResponses(self.cs).registry(),
            faults=self.faults,
            audit=audit,
        )
        self._host = host
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket is listening."""
        if self._server is not None:
            return
        self._server = make_server(
            self._host, self._requested_port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name="openapi-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OpenApiServer is not started")
        return int(self._server.server_port)

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, the form SDK ``Config(endpoint=...)`` takes (no scheme)."""
        return f"{self._host}:{self.port}"

    # --- for the control API and tests ------------------------------------------------------

    def advance(self, resource_id: str) -> bool:
        """Manual transitions: run the next step of a SNAT entry or a CS task."""
        return self.lifecycle.advance(resource_id)

    def resume(self) -> None:
        """After loading a saved world, pick up the transitions that were under way at ``down``.

        The scheduler's queue is not saved, so without this a SNAT entry saved as Pending (or a
        task saved as running) would never move again. Each step is scheduled anew under the
        current transition mode, so a manual mode still waits for ``advance``.
        """
        with self.lock:
            snat = [(e.snat_entry_id, e.status) for e in self.cloud.snat_entries.values()]
            tasks = [t for t in self.cloud.tasks.values() if t.state == "running"]
            work: list[tuple[str, str, list[Addon]]] = []
            for task in tasks:
                cluster = self.cloud.clusters.get(task.cluster_id)
                addons = list(cluster.addons.values()) if cluster else []
                wanted = "initial" if task.task_type == "cluster_addon_install" else "deleting"
                work.append(
                    (task.task_id, task.cluster_id, [a for a in addons if a.state == wanted])
                )
        for entry_id, status in snat:
            if status in ("Pending", "Deleting"):
                self.lifecycle.schedule(
                    self.transitions.snat_entry,
                    entry_id,
                    functools.partial(self._settle_snat, entry_id, status),
                    f"snat {entry_id} resumed from {status}",
                )
        for task_id, cluster_id, addons in work:
            step: Callable[[], None]
            if addons and addons[0].state == "initial":
                reqs = [AddonRequest(a.name, a.version, a.config) for a in addons]
                step = functools.partial(self.cs._finish_install, task_id, cluster_id, reqs)
            else:
                names = [a.name for a in addons]
                step = functools.partial(self.cs._finish_uninstall, task_id, cluster_id, names)
            self.lifecycle.schedule(
                self.transitions.addon_install, task_id, step, f"task {task_id} resumed"
            )

    def _settle_snat(self, entry_id: str, status: str) -> None:
        with self.lock:
            entry = self.cloud.snat_entries.get(entry_id)
            if entry is None or entry.status != status:
                return
            if status == "Pending":
                entry.status = "Available"
            else:
                del self.cloud.snat_entries[entry_id]
