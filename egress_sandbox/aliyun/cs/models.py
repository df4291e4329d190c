"""ACK add-on and task rules over CloudState, without HTTP.

InstallClusterAddons creates a Task (``running``) and each Addon (``initial``), then calls
``hooks.addon_installing``. After the ``addon_install`` transition it calls
``hooks.addon_installed`` and only *then* marks the add-on ``active`` and the task ``success``:
a client that waits for the task to succeed may rely on the add-on's effects (CRDs, Deployment)
already being in the cluster. Hooks always run **outside** the cloud lock, because they write to
the Kubernetes store, whose subscribers may take the cloud lock on another thread. A hook that
raises fails the task (``fail``, error code ``AddonInstallFailed``) and leaves the add-on
``unhealthy``. Uninstall mirrors this (``deleting`` -> hook -> removed, task ``success``) and uses
the same ``addon_install`` transition timing.

Choices [UNCONFIRMED] for errors the reference does not pin down (CS renders them lower-case):
unknown add-on 400 AddonNotSupported; unknown version 400 AddonVersionNotSupported; installing an
installed add-on 400 AddonAlreadyInstalled; an add-on mid-install/uninstall 400
AddonStateConflict; reading or uninstalling an add-on that is not installed 404 AddonNotFound;
unknown task 404 ErrorTaskNotFound; unknown cluster 404 ErrorClusterNotFound.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.model import CloudModel
from egress_sandbox.aliyun.hooks import CloudHooks
from egress_sandbox.aliyun.lifecycle import Lifecycle
from egress_sandbox.aliyun.records import (
    AVAILABLE_ADDONS,
    Addon,
    CloudState,
    Cluster,
    NodePool,
    Task,
)
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.topology import Transitions

_CST = dt.timezone(dt.timedelta(hours=8))  # CS reports times in China Standard Time


def cs_now() -> str:
    return dt.datetime.now(_CST).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AddonRequest:
    name: str
    version: str
    config: str


class CsModel(CloudModel):
    def __init__(
        self,
        cloud: CloudState,
        *,
        lock: threading.RLock,
        ids: IdFactory,
        lifecycle: Lifecycle,
        transitions: Transitions,
        hooks: CloudHooks,
    ) -> None:
        super().__init__(cloud, lock=lock, ids=ids, lifecycle=lifecycle, transitions=transitions)
        self.hooks = hooks

    def resume(self) -> None:
        """Schedule the finish of every task still ``running`` (after a saved world loads).

        The add-ons a task still works on are those in the state it leaves behind: ``initial``
        for an install, ``deleting`` for an uninstall.
        """
        with self.lock:
            work: list[tuple[Task, list[Addon]]] = []
            for task in self.cloud.tasks.values():
                if task.state != "running":
                    continue
                cluster = self.cloud.clusters.get(task.cluster_id)
                install = task.task_type == "cluster_addon_install"
                wanted = "initial" if install else "deleting"
                addons = [
                    a for a in (cluster.addons.values() if cluster else []) if a.state == wanted
                ]
                work.append((copy.copy(task), [copy.copy(a) for a in addons]))
        for task, addons in work:
            step: Callable[[], None]
            if task.task_type == "cluster_addon_install":
                reqs = [AddonRequest(a.name, a.version, a.config) for a in addons]
                step = functools.partial(self._finish_install, task.task_id, task.cluster_id, reqs)
            else:
                names = [a.name for a in addons]
                step = functools.partial(
                    self._finish_uninstall, task.task_id, task.cluster_id, names
                )
            self._later(
                self._transitions.addon_install, task.task_id, step, f"task {task.task_id} resumed"
            )

    # --- queries --------------------------------------------------------------------------

    def _cluster(self, cluster_id: str) -> Cluster:
        cluster = self.cloud.clusters.get(cluster_id)
        if cluster is None:
            raise errors.ErrorClusterNotFound(f"cluster {cluster_id} not found")
        return cluster

    def cluster(self, cluster_id: str) -> Cluster:
        with self.lock:
            return copy.deepcopy(self._cluster(cluster_id))

    def node_pools(self, cluster_id: str, name: str | None = None) -> list[NodePool]:
        """The cluster's node pools (those named ``name`` when given)."""
        with self.lock:
            self._cluster(cluster_id)
            return [
                copy.deepcopy(p)
                for p in self.cloud.node_pools.values()
                if p.cluster_id == cluster_id and (name is None or p.name == name)
            ]

    def addon(self, cluster_id: str, name: str) -> Addon:
        with self.lock:
            addon = self._cluster(cluster_id).addons.get(name)
            if addon is None:
                raise errors.AddonNotFound(f"addon {name} is not installed in cluster {cluster_id}")
            return copy.copy(addon)

    def task(self, task_id: str) -> Task:
        return self._copy_of(
            self.cloud.tasks, task_id, lambda: errors.ErrorTaskNotFound(f"task {task_id} not found")
        )

    # --- install / uninstall ------------------------------------------------------------------

    def _run_task(self, task_id: str, finish: Callable[[], None], what: str) -> str:
        """Finish a task after the ``addon_install`` transition (install and uninstall alike)."""
        self._later(self._transitions.addon_install, task_id, finish, f"task {task_id} {what}")
        return task_id

    def _new_task(self, cluster_id: str, task_type: str) -> Task:
        now = cs_now()
        # Real task IDs look like "T-5faa48fb31b6b8078d000006".
        task = Task("T-" + self._ids.hex(24), cluster_id, task_type, "running", now, now)
        self.cloud.tasks[task.task_id] = task
        return task

    def install(self, cluster_id: str, addons: list[AddonRequest]) -> str:
        with self.lock:
            cluster = self._cluster(cluster_id)
            for req in addons:
                if req.name not in AVAILABLE_ADDONS:
                    raise errors.AddonNotSupported(f"addon {req.name} is not supported")
                if req.version != AVAILABLE_ADDONS[req.name]:
                    raise errors.AddonVersionNotSupported(
                        f"version {req.version} of addon {req.name} is not supported"
                    )
                current = cluster.addons.get(req.name)
                if current is not None and current.state in ("initial", "deleting"):
                    raise errors.AddonStateConflict()
                if current is not None:
                    raise errors.AddonAlreadyInstalled(f"addon {req.name} is already installed")
            task = self._new_task(cluster_id, "cluster_addon_install")
            for req in addons:
                cluster.addons[req.name] = Addon(req.name, req.version, "initial", req.config)
        for req in addons:
            self.hooks.addon_installing(cluster_id, req.name, req.version, req.config)
        return self._run_task(
            task.task_id,
            lambda: self._finish_install(task.task_id, cluster_id, addons),
            f"install {','.join(a.name for a in addons)}",
        )

    def _finish_install(self, task_id: str, cluster_id: str, addons: list[AddonRequest]) -> None:
        failure = ""
        for req in addons:
            try:
                self.hooks.addon_installed(cluster_id, req.name, req.version, req.config)
            except Exception as exc:  # noqa: BLE001 - a broken controller fails the task
                failure = f"{req.name}: {exc}"
        with self.lock:
            task = self.cloud.tasks.get(task_id)
            cluster = self.cloud.clusters.get(cluster_id)
            if task is None or cluster is None:
                return
            for req in addons:
                addon = cluster.addons.get(req.name)
                if addon is not None and addon.state == "initial":
                    addon.state = "unhealthy" if failure else "active"
            task.state = "fail" if failure else "success"
            if failure:
                task.error = {"code": "AddonInstallFailed", "message": failure}
            task.updated = cs_now()

    def uninstall(self, cluster_id: str, names: list[str]) -> str:
        with self.lock:
            cluster = self._cluster(cluster_id)
            for name in names:
                addon = cluster.addons.get(name)
                if addon is None:
                    raise errors.AddonNotFound(
                        f"addon {name} is not installed in cluster {cluster_id}"
                    )
                if addon.state in ("initial", "deleting"):
                    raise errors.AddonStateConflict()
            task = self._new_task(cluster_id, "cluster_addon_uninstall")
            for name in names:
                cluster.addons[name].state = "deleting"
        return self._run_task(
            task.task_id,
            lambda: self._finish_uninstall(task.task_id, cluster_id, names),
            f"uninstall {','.join(names)}",
        )

    def _finish_uninstall(self, task_id: str, cluster_id: str, names: list[str]) -> None:
        for name in names:
            self.hooks.addon_uninstalled(cluster_id, name)
        with self.lock:
            cluster = self.cloud.clusters.get(cluster_id)
            task = self.cloud.tasks.get(task_id)
            if cluster is not None:
                for name in names:
                    if name in cluster.addons and cluster.addons[name].state == "deleting":
                        del cluster.addons[name]
            if task is not None:
                task.state = "success"
                task.updated = cs_now()

    def advance_task(self, task_id: str) -> bool:
        """Manual mode: finish the task now (runs the hooks). False when nothing was waiting."""
        return self.advance(task_id)
