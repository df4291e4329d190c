"""How the node reports what its containers do: pod status, container states, events.

The kubelet's container runs call these; each write goes to the store only while the pod it
describes is still there (the same UID) and the node has not let go of it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from egress_sandbox.k8s.errors import Conflict, NotFound
from egress_sandbox.k8s.store import Store, now_rfc3339
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.kubelet.podstatus import ContainerState, PodState

Obj = dict[str, Any]
PULL_BACKOFF = 0.3  # seconds between ErrImagePull and ImagePullBackOff


class StatusWriter:
    """The part of the kubelet that writes pod status and events."""

    def __init__(self, store: Store, host_ip: str) -> None:
        self.store = store
        self.host_ip = host_ip
        rt = store.types.get("", "v1", "pods")
        assert rt is not None
        self.pods_rt: ResourceType = rt

    def _set_running(self, st: PodState, cs: ContainerState, started: str) -> None:
        with st.lock:
            cs.state = {"running": {"startedAt": started}}
            cs.started = cs.ready = True
            st.compute_phase()
        self._publish(st)

    def _terminate(
        self,
        st: PodState,
        pod: Obj,
        cs: ContainerState,
        code: int,
        output: str,
        started: str,
        *,
        timed_out: bool,
        reason: str | None = None,
    ) -> None:
        terminated = terminated_state(cs, code, started, reason)
        with st.lock:
            cs.log = output
            cs.ready = False
            if timed_out:
                st.reason = "DeadlineExceeded"
                st.message = "Pod was active on the node longer than the specified deadline"
            if st.restart_policy == "Always" and not timed_out:
                cs.last_state = {"terminated": terminated}
                cs.state = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 10s restarting failed container={cs.name} "
                        f"pod={st.name}_{st.namespace}({st.uid})",
                    }
                }
            else:
                cs.state = {"terminated": terminated}
            st.compute_phase()
        if timed_out:
            self._event(pod, "DeadlineExceeded", st.message, warning=True)
        elif st.restart_policy == "Always":
            self._event(
                pod,
                "BackOff",
                f"Back-off restarting failed container {cs.name} in pod "
                f"{st.name}_{st.namespace}({st.uid})",
                warning=True,
            )
        self._publish(st)

    def _pull_fails(
        self, st: PodState, pod: Obj, cs: ContainerState, ref: str, detail: str = ""
    ) -> None:
        detail = detail or (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found'
        )
        with st.lock:
            cs.state = {"waiting": {"reason": "ErrImagePull", "message": detail}}
        self._event(pod, "Failed", f'Failed to pull image "{cs.image}": {detail}', warning=True)
        self._event(pod, "Failed", "Error: ErrImagePull", warning=True)
        self._publish(st)
        if st.deleted.wait(PULL_BACKOFF):
            return
        with st.lock:
            cs.state = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{cs.image}"',
                }
            }
        self._event(pod, "BackOff", f'Back-off pulling image "{cs.image}"')
        self._event(pod, "Failed", "Error: ImagePullBackOff", warning=True)
        self._publish(st)

    # ---- writes ------------------------------------------------------------------------------

    def _publish(self, st: PodState) -> None:
        with self.store.lock:
            cur = self.store.try_get(self.pods_rt, st.namespace, st.name)
            if cur is None or cur["metadata"]["uid"] != st.uid or st.deleted.is_set():
                return
            with st.lock:
                cur["status"] = st.status(self.host_ip)
            # Conflict cannot happen under Store.lock; a deleted pod needs no status.
            with contextlib.suppress(Conflict, NotFound):
                self.store.update(self.pods_rt, cur, subresource="status")

    def _event(
        self,
        pod: Obj,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        component: str = "kubelet",
    ) -> None:
        self.store.record_event(
            pod, reason, message, type_="Warning" if warning else "Normal", component=component
        )


def terminated_state(cs: ContainerState, code: int, started: str, reason: str | None) -> Obj:
    """A ``state.terminated`` for ``cs`` ending now with ``code``."""
    return {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "startedAt": started,
        "finishedAt": now_rfc3339(),
        "containerID": cs.container_id,
    }


def no_route_detail(ref: str) -> str:
    """containerd's message when the registry cannot be reached (a node without internet)."""
    registry, _, rest = ref.partition("/")
    host = "registry-1.docker.io" if registry == "docker.io" else registry
    repo, _, tag = rest.rpartition(":")
    return (
        f'rpc error: code = DeadlineExceeded desc = failed to pull and unpack image "{ref}": '
        f'failed to resolve reference "{ref}": failed to do request: Head '
        f'"https://{host}/v2/{repo}/manifests/{tag}": dial tcp: lookup {host}: i/o timeout'
    )
