"""The node: binds pods to itself, "pulls" images, runs curl containers, reports status.

Only images whose repository mentions curl can be pulled (they run the real /usr/bin/curl,
see ``runner``); every other image fails as an unpullable image does (ErrImagePull, then
ImagePullBackOff). Deviations from a real kubelet, on purpose:
- a container that exits under ``restartPolicy: Always`` is not restarted: it shows
  ``waiting: CrashLoopBackOff`` (and ``lastState.terminated``) with the pod still Running;
- under ``OnFailure`` a failed container is not restarted either: the pod ends Failed;
- a run is capped at ``activeDeadlineSeconds`` or ``max_runtime`` (120 s), then the pod fails
  with reason DeadlineExceeded;
- a pod loaded from a saved world counts as having been on a node that rebooted: its running
  containers end ``terminated`` (Unknown, 255), see ``_after_reboot``; pods saved before they
  ran (Pending) run now.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.k8s import podlog
from egress_sandbox.k8s.errors import BadRequest, Conflict, NotFound
from egress_sandbox.k8s.store import Store, WatchEvent, now_rfc3339
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.kubelet import curlcmd, runner
from egress_sandbox.kubelet.podstatus import (
    ContainerState,
    PodState,
    is_curl_image,
    needs_internet,
    normalize_image,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PULL_BACKOFF = 0.3  # seconds between ErrImagePull and ImagePullBackOff
POD_CIDR = "127.16.1.0/24"  # the node vSwitch: pod IPs are only reported, never dialled
FIRST_POD_HOST = 100
EXIT_LOST = 255  # what the runtime reports for a container it lost (the node rebooted)


class Kubelet:
    def __init__(
        self,
        store: Store,
        *,
        podnet_socket: Path,
        node_name: str = "cn-hangzhou.127.16.1.10",
        ids: IdFactory,
        host_ip: str = "127.16.1.10",
        ca_bundle: Path | None = None,
        max_runtime: float = 120.0,
        pod_dns: Callable[[], dict[str, str]] | None = None,
        internet: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.podnet_socket = podnet_socket
        self.node_name = node_name
        self.ids = ids
        self.host_ip = host_ip
        self.ca_bundle = ca_bundle
        self.max_runtime = max_runtime
        self.pod_dns = pod_dns
        # Whether the node can reach the internet (SNAT and a route); None: always.
        self.internet = internet
        rt = store.types.get("", "v1", "pods")
        assert rt is not None
        self.pods_rt: ResourceType = rt
        self._lock = threading.Lock()
        self._pods: dict[str, PodState] = {}  # by uid
        self._procs: dict[str, list[runner.CurlProcess]] = {}
        self._threads: list[threading.Thread] = []
        self._running = False
        self._subscribed = False
        self._tmp = Path(tempfile.mkdtemp(prefix="kubelet-"))
        self._resolv = self._tmp / "resolv.conf"
        self._resolv.write_text("nameserver 127.0.0.1\n")
        self.isolation = runner.Isolation(False, False)

    def _hosts_file(self) -> Path:
        """/etc/hosts for the next container: the names the cluster's DNS answers right now."""
        names = self.pod_dns() if self.pod_dns is not None else {}
        lines = ["127.0.0.1 localhost", *(f"{addr} {name}" for name, addr in names.items())]
        path = self._tmp / "hosts"
        # Written whole and renamed: a container starting meanwhile binds the old file or the
        # new one, never half of one.
        tmp = self._tmp / f"hosts.{threading.get_ident()}"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
        return path

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.isolation = runner.probe_isolation(self._resolv)
        if not self.isolation.net:
            log.warning(
                "kubelet: unshare --net unavailable; curl runs on the host network "
                "with socks5h:// (no --resolve)"
            )
        with self._lock:
            self._running = True
            if not self._subscribed:
                self.store.subscribe(self._on_event)
                self._subscribed = True
        pods, _ = self.store.list(self.pods_rt)
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            if phase in (None, "", "Pending"):
                self._admit(pod)  # created before the node came up, or saved before it ran
            else:
                self._after_reboot(pod)  # saved Running, Succeeded or Failed

    def _after_reboot(self, pod: Obj) -> None:
        """Take back a pod a saved world had bound here: its running containers died.

        The sandbox going down is the node rebooting, which kills every container. What a real
        kubelet then reports for a container the runtime lost is ``terminated`` with reason
        ``Unknown`` and exit code 255 (not 137: nothing sent it a signal the runtime saw).
        Under ``restartPolicy: Never`` (and ``OnFailure``, which this node never restarts) the
        pod ends Failed; under ``Always`` it shows CrashLoopBackOff like any exited container.
        Logs are not saved, so a restored container's log is empty.
        """
        if (pod.get("spec") or {}).get("nodeName") not in (None, "", self.node_name):
            return
        with self._lock:
            if pod["metadata"]["uid"] in self._pods:
                return
            st = PodState.from_pod(pod, self._allocate_ip())
            self._pods[st.uid] = st
        for cs in st.containers:
            running = cs.state.get("running")
            if running is None:
                continue
            self._event(
                pod,
                "Rebooted",
                f"Node {self.node_name} restarted; container {cs.name} was killed",
                warning=True,
            )
            self._terminate(
                st,
                pod,
                cs,
                EXIT_LOST,
                "",
                str(running.get("startedAt") or ""),
                timed_out=False,
                reason="Unknown",
            )

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._running = False
            states = list(self._pods.values())
            procs = [p for ps in self._procs.values() for p in ps]
            threads = list(self._threads)
        for st in states:
            st.deleted.set()
        for p in procs:
            p.kill()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ---- logs --------------------------------------------------------------------------------

    def logs(self, namespace: str, name: str, container: str | None = None) -> str:
        pod = self.store.try_get(self.pods_rt, namespace, name)
        if pod is None:
            raise NotFound.of("pods", "", name)
        container = podlog.container_of(pod, container)
        with self._lock:
            st = self._pods.get(pod["metadata"]["uid"])
        cs = st.container(container) if st else None
        if cs is None or not cs.started:
            waiting = (cs.state.get("waiting") or {}).get("reason", "") if cs else ""
            why = (
                "trying and failing to pull image"
                if waiting in ("ErrImagePull", "ImagePullBackOff")
                else "ContainerCreating"
            )
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {why}')
        return cs.log

    # ---- events from the store ---------------------------------------------------------------

    def _on_event(self, ev: WatchEvent) -> None:
        if not self._running or ev.rtype.key != self.pods_rt.key:
            return
        if ev.type == "ADDED":
            self._admit(ev.object)
        elif ev.type == "DELETED":
            self._forget(ev.object["metadata"]["uid"])

    def _admit(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") not in (None, "", self.node_name):
            return  # bound to another node
        uid = pod["metadata"]["uid"]
        with self._lock:
            if uid in self._pods:
                return
            st = PodState.from_pod(pod, self._allocate_ip())
            self._pods[uid] = st
            # Runs the pod off the subscriber stack: the writer still holds Store.lock.
            t = threading.Thread(
                target=self._run_pod, args=(st, pod), daemon=True, name=f"kubelet-{st.name}"
            )
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _forget(self, uid: str) -> None:
        with self._lock:
            st = self._pods.pop(uid, None)
            procs = self._procs.pop(uid, [])
        if st is not None:
            st.deleted.set()
        for p in procs:
            p.kill()

    def _allocate_ip(self) -> str:
        used = {st.pod_ip for st in self._pods.values()}
        net = ipaddress.ip_network(POD_CIDR)
        for host in range(FIRST_POD_HOST, net.num_addresses - 1):
            ip = str(net.network_address + host)
            if ip not in used:
                return ip
        return str(net.network_address + FIRST_POD_HOST)

    # ---- the pod -----------------------------------------------------------------------------

    def _run_pod(self, st: PodState, pod: Obj) -> None:
        try:
            self._bind(st, pod)
            self._publish(st)
            deadline_s = (pod.get("spec") or {}).get("activeDeadlineSeconds")
            limit = min(float(deadline_s), self.max_runtime) if deadline_s else self.max_runtime
            threads = [
                threading.Thread(
                    target=self._run_container,
                    args=(st, pod, cs, limit),
                    daemon=True,
                    name=f"kubelet-{st.name}-{cs.name}",
                )
                for cs in st.containers
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(limit + 15)  # the runner enforces the limit; this is a safety net
        except Exception:
            log.exception("kubelet: pod %s/%s failed", st.namespace, st.name)

    def _bind(self, st: PodState, pod: Obj) -> None:
        with self.store.lock:
            cur = self.store.try_get(self.pods_rt, st.namespace, st.name)
            if cur is None or cur["metadata"]["uid"] != st.uid:
                return
            if not (cur.get("spec") or {}).get("nodeName"):
                cur["spec"]["nodeName"] = self.node_name
                self.store.update(self.pods_rt, cur)
                self._event(
                    pod,
                    "Scheduled",
                    f"Successfully assigned {st.namespace}/{st.name} to {self.node_name}",
                    component="default-scheduler",
                )

    def _run_container(self, st: PodState, pod: Obj, cs: ContainerState, limit: float) -> None:
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == cs.name)
        ref = normalize_image(cs.image)
        self._event(pod, "Pulling", f'Pulling image "{cs.image}"')
        if needs_internet(cs.image) and self.internet is not None and not self.internet():
            self._pull_fails(st, pod, cs, ref, _no_route_detail(ref))
            return
        if not is_curl_image(cs.image):
            self._pull_fails(st, pod, cs, ref)
            return
        self._event(
            pod, "Pulled", f'Successfully pulled image "{cs.image}" in 0s (0s including waiting)'
        )
        with st.lock:
            cs.image_id = f"{ref.rsplit(':', 1)[0]}@sha256:{self.ids.hex(64)}"
            cs.container_id = f"containerd://{self.ids.hex(64)}"
        self._event(pod, "Created", f"Created container {cs.name}")
        started = now_rfc3339()
        try:
            invocation = curlcmd.parse(spec.get("command"), spec.get("args"))
        except curlcmd.CommandRefused as refused:
            self._set_running(st, cs, started)
            self._event(pod, "Started", f"Started container {cs.name}")
            self._terminate(st, pod, cs, refused.exit_code, refused.log, started, timed_out=False)
            return
        proc = runner.CurlProcess(
            invocation.args,
            podnet_socket=self.podnet_socket,
            isolation=self.isolation,
            resolv=self._resolv,
            ca_bundle=self.ca_bundle,
            hosts=self._hosts_file(),
        )
        with self._lock:
            if st.deleted.is_set():
                return
            self._procs.setdefault(st.uid, []).append(proc)
        self._set_running(st, cs, started)
        self._event(pod, "Started", f"Started container {cs.name}")
        result = proc.run(limit)
        if result.killed or st.deleted.is_set():
            self._event(pod, "Killing", f"Stopping container {cs.name}")
            return
        self._terminate(
            st, pod, cs, result.exit_code, result.output, started, timed_out=result.timed_out
        )

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
        terminated = {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "startedAt": started,
            "finishedAt": now_rfc3339(),
            "containerID": cs.container_id,
        }
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


def _no_route_detail(ref: str) -> str:
    """containerd's message when the registry cannot be reached (a node without internet)."""
    registry, _, rest = ref.partition("/")
    host = "registry-1.docker.io" if registry == "docker.io" else registry
    repo, _, tag = rest.rpartition(":")
    return (
        f'rpc error: code = DeadlineExceeded desc = failed to pull and unpack image "{ref}": '
        f'failed to resolve reference "{ref}": failed to do request: Head '
        f'"https://{host}/v2/{repo}/manifests/{tag}": dial tcp: lookup {host}: i/o timeout'
    )
