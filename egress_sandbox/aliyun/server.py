"""OpenApiServer: VPC, SLB, CS, MSE and RAM on one loopback HTTP endpoint, like the POP gateway.

Clients use ``Config(endpoint=server.endpoint, protocol="http")``. Each request runs on its own
thread (werkzeug ``threaded=True``); cloud state is guarded by the shared ``lock``. Request
lines are never logged, because legacy v2 calls carry a SecurityToken in the query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from egress_sandbox.aliyun.app import MAX_BODY, OpenApiApp
from egress_sandbox.aliyun.common.auth import Authenticator
from egress_sandbox.aliyun.common.dispatch import RpcRegistry
from egress_sandbox.aliyun.cs.models import CsModel
from egress_sandbox.aliyun.cs.responses import CsResponses
from egress_sandbox.aliyun.faults import FaultRegistry
from egress_sandbox.aliyun.hooks import CloudHooks
from egress_sandbox.aliyun.lifecycle import Lifecycle
from egress_sandbox.aliyun.mse import responses as mse_responses
from egress_sandbox.aliyun.mse.models import MseModel
from egress_sandbox.aliyun.ram import responses as ram_responses
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.aliyun.slb import responses as slb_responses
from egress_sandbox.aliyun.vpc import responses as vpc_responses
from egress_sandbox.aliyun.vpc.models import VpcModel
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.httpguard import HttpLimits
from egress_sandbox.core.httpserver import ThreadedServer
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.core.stuck import StuckRegistry, kind_of_id
from egress_sandbox.topology import Transition, Transitions

VPC_VERSION = "2016-04-28"
SLB_VERSION = "2014-05-15"
MSE_VERSION = "2019-05-31"
RAM_VERSION = "2015-05-01"


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
        limits: HttpLimits | None = None,
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
        rpc.register(
            MSE_VERSION,
            "mse",
            mse_responses.MseResponses(MseModel(cloud, lock)),
            mse_responses.ACTIONS,
        )
        rpc.register(
            RAM_VERSION, "ram", ram_responses.RamResponses(cloud, lock), ram_responses.ACTIONS
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
        # daemon_threads off: stop() waits for in-flight calls, so nothing writes after it.
        self._http = ThreadedServer(
            self.app,
            host=host,
            port=port,
            name="openapi-server",
            daemon_threads=False,
            limits=limits or HttpLimits(max_body=MAX_BODY),
            error_body=self.app.http_error_body,
        )

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket is listening."""
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, the form SDK ``Config(endpoint=...)`` takes (no scheme)."""
        return f"{self._host}:{self.port}"

    # --- for the control API and tests ------------------------------------------------------

    def advance(self, resource_id: str) -> bool:
        """Manual transitions: run the next step of a SNAT entry or a CS task."""
        return self.lifecycle.advance(resource_id)

    def resume(self) -> None:
        """Start the transitions the cloud's records are in the middle of; call it once.

        For a saved world (the scheduler's queue is not saved, so a SNAT entry saved as Pending
        or a task saved as running would never move again) and for a fresh one alike (a
        topology NAT gateway seeded ``Creating``). Each step is scheduled under the current
        transition mode, so a manual mode still waits for ``advance``.
        """
        self.vpc.resume()
        self.cs.resume()
