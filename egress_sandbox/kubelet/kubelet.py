"""The node: binds pods to itself, "pulls" images, runs containers, reports status.

Two kinds of image can be pulled: those whose repository mentions curl run the real
/usr/bin/curl (see ``runner``), and the well-known HTTP echo servers run an in-process echo
(see ``echoserver``); every other image fails as an unpullable image does (ErrImagePull, then
ImagePullBackOff). Each pod gets an address from the node's share of the pod CIDR
(``podips``), or the node's own with ``hostNetwork``; what a curl container dials goes through
a pod-network socket of its own, so it leaves from that address (``dataplane.podnet``).
Deviations from a real kubelet, on purpose:
- a curl container that exits under ``restartPolicy: Always`` is not restarted: it shows
  ``waiting: CrashLoopBackOff`` (and ``lastState.terminated``) with the pod still Running;
- under ``OnFailure`` a failed container is not restarted either: the pod ends Failed;
- a curl run is capped at ``activeDeadlineSeconds`` or ``max_runtime`` (120 s), then the pod
  fails with reason DeadlineExceeded; an echo server runs until the pod is deleted (or its
  ``activeDeadlineSeconds``);
- a pod loaded from a saved world counts as having been on a node that rebooted: its running
  containers end ``terminated`` (Unknown, 255), see ``_after_reboot``; pods saved before they
  ran (Pending) run now.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.dataplane.podnet import network_at
from egress_sandbox.k8s import podlog
from egress_sandbox.k8s.errors import BadRequest, NotFound
from egress_sandbox.k8s.store import Store, WatchEvent, now_rfc3339
from egress_sandbox.kubelet import curlcmd, runner
from egress_sandbox.kubelet.echoserver import EchoServer
from egress_sandbox.kubelet.podips import PodAddresses
from egress_sandbox.kubelet.podstatus import (
    ContainerState,
    PodState,
    is_curl_image,
    is_echo_image,
    needs_internet,
    normalize_image,
)
from egress_sandbox.kubelet.reporting import StatusWriter, no_route_detail, terminated_state

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DEFAULT_POD_CIDR = "127.244.0.0/16"  # Topology.pod_cidr's default
EXIT_LOST = 255  # what the runtime reports for a container it lost (the node rebooted)
EXIT_KILLED = 137  # SIGKILL, as the runtime reports a container stopped at its deadline


class Kubelet(StatusWriter):
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
        pod_cidr: str = DEFAULT_POD_CIDR,
    ) -> None:
        super().__init__(store, host_ip)
        self.podnet_socket = podnet_socket
        self.node_name = node_name
        self.ids = ids
        self.ca_bundle = ca_bundle
        self.max_runtime = max_runtime
        self.pod_dns = pod_dns
        # Whether the node can reach the internet (SNAT and a route); None: always.
        self.internet = internet
        self._lock = threading.Lock()
        self._pods: dict[str, PodState] = {}  # by uid
        self._procs: dict[str, list[runner.CurlProcess]] = {}
        self._addresses = PodAddresses(pod_cidr, host_ip)
        self._sockets = 0  # pod-network sockets made so far, for their (short) names
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
        pod ends Failed; under ``Always`` a curl container shows CrashLoopBackOff like any
        exited one, while an echo server is started again (``restartCount`` 1, the lost run
        in ``lastState``), as a server under ``Always`` comes back after a real reboot. Logs
        are not saved, so a restored container's log is empty. The pod keeps its address.
        """
        if (pod.get("spec") or {}).get("nodeName") not in (None, "", self.node_name):
            return
        with self._lock:
            if pod["metadata"]["uid"] in self._pods:
                return
            st = PodState.from_pod(pod, self._pick_ip(pod) or "")
            self._pods[st.uid] = st
        restart: set[str] = set()
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
            started = str(running.get("startedAt") or "")
            if is_echo_image(cs.image) and st.restart_policy == "Always":
                with st.lock:
                    cs.last_state = {
                        "terminated": terminated_state(cs, EXIT_LOST, started, "Unknown")
                    }
                    cs.restart_count += 1
                    cs.state = {"waiting": {"reason": "ContainerCreating"}}
                    cs.started = cs.ready = False
                restart.add(cs.name)
                continue
            self._terminate(st, pod, cs, EXIT_LOST, "", started, timed_out=False, reason="Unknown")
        if restart:
            self._publish(st)
            self._start_pod_thread(st, pod, restart)

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
            st = PodState.from_pod(pod, self._pick_ip(pod) or "")
            self._pods[uid] = st
        if not st.pod_ip:
            # host-local IPAM's answer when the node's range is used up; the pod stays Pending
            # (a real kubelet retries; this one does not).
            self._event(
                pod,
                "FailedCreatePodSandBox",
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup "
                f'network for sandbox: plugin type="flannel" failed (add): failed to allocate '
                "for range 0: no IP addresses available in range set: "
                f"{self._addresses.range_text}",
                warning=True,
            )
            return
        self._start_pod_thread(st, pod, None)

    def _start_pod_thread(self, st: PodState, pod: Obj, only: set[str] | None) -> None:
        # Runs the pod off the subscriber stack: the writer still holds Store.lock.
        t = threading.Thread(
            target=self._run_pod, args=(st, pod, only), daemon=True, name=f"kubelet-{st.name}"
        )
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _forget(self, uid: str) -> None:
        with self._lock:
            st = self._pods.pop(uid, None)
            procs = self._procs.pop(uid, [])
        if st is not None:
            st.deleted.set()  # also stops the pod's echo servers (their threads wait on it)
        for p in procs:
            p.kill()

    def _pick_ip(self, pod: Obj) -> str | None:
        """The address for a new pod (called with ``_lock`` held): the node's for hostNetwork,
        else a free one of the node's pod range. A saved pod's own address wins over both
        (``PodState.from_pod``)."""
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.host_ip
        saved = (pod.get("status") or {}).get("podIP")
        if saved:
            return str(saved)
        live: list[str] = []
        released: list[str] = []
        for st in self._pods.values():
            (released if st.phase in ("Succeeded", "Failed") else live).append(st.pod_ip)
        return self._addresses.pick(live, released)

    # ---- the pod -----------------------------------------------------------------------------

    def _run_pod(self, st: PodState, pod: Obj, only: set[str] | None) -> None:
        """Run the pod's containers (``only`` those, when restarting some) to their end."""
        try:
            self._bind(st, pod)
            self._publish(st)
            deadline_s = (pod.get("spec") or {}).get("activeDeadlineSeconds")
            active = float(deadline_s) if deadline_s else None
            limit = min(active, self.max_runtime) if active else self.max_runtime
            threads = [
                (
                    threading.Thread(
                        target=self._run_container,
                        args=(st, pod, cs, active if echo else limit),
                        daemon=True,
                        name=f"kubelet-{st.name}-{cs.name}",
                    ),
                    echo,
                )
                for cs in st.containers
                if only is None or cs.name in only
                for echo in [is_echo_image(cs.image)]
            ]
            for t, _ in threads:
                t.start()
            for t, echo in threads:
                # The runner enforces a curl run's limit (this is a safety net); a server runs
                # until the pod goes, and stop() must be able to wait for it to close.
                t.join(None if echo else limit + 15)
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

    def _run_container(
        self, st: PodState, pod: Obj, cs: ContainerState, limit: float | None
    ) -> None:
        """Pull, create and run one container; ``limit`` None: until the pod is deleted."""
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == cs.name)
        ref = normalize_image(cs.image)
        self._event(pod, "Pulling", f'Pulling image "{cs.image}"')
        if needs_internet(cs.image) and self.internet is not None and not self.internet():
            self._pull_fails(st, pod, cs, ref, no_route_detail(ref))
            return
        if not (is_curl_image(cs.image) or is_echo_image(cs.image)):
            self._pull_fails(st, pod, cs, ref)
            return
        self._event(
            pod, "Pulled", f'Successfully pulled image "{cs.image}" in 0s (0s including waiting)'
        )
        with st.lock:
            cs.image_id = f"{ref.rsplit(':', 1)[0]}@sha256:{self.ids.hex(64)}"
            cs.container_id = f"containerd://{self.ids.hex(64)}"
        self._event(pod, "Created", f"Created container {cs.name}")
        if is_echo_image(cs.image):
            self._run_echo(st, pod, cs, spec, limit)
        else:
            self._run_curl(st, pod, cs, spec, limit or self.max_runtime)

    def _run_curl(
        self, st: PodState, pod: Obj, cs: ContainerState, spec: Obj, limit: float
    ) -> None:
        started = now_rfc3339()
        try:
            invocation = curlcmd.parse(spec.get("command"), spec.get("args"))
        except curlcmd.CommandRefused as refused:
            self._set_running(st, cs, started)
            self._event(pod, "Started", f"Started container {cs.name}")
            self._terminate(st, pod, cs, refused.exit_code, refused.log, started, timed_out=False)
            return
        net = network_at(self.podnet_socket)
        proxy = self.podnet_socket  # no pod network in this process: the node's own socket
        if net is not None:
            with self._lock:
                self._sockets += 1
                proxy = self._tmp / f"p{self._sockets}.sock"
            try:
                net.attach(proxy, st.pod_ip)
            except (OSError, ValueError) as exc:
                # The container never starts, as when CNI cannot set up the pod's network.
                self._event(
                    pod,
                    "FailedCreatePodSandBox",
                    f"Failed to create pod sandbox: pod network: {exc}",
                    warning=True,
                )
                return
        try:
            proc = runner.CurlProcess(
                invocation.args,
                podnet_socket=proxy,
                isolation=self.isolation,
                resolv=self._resolv,
                ca_bundle=self.ca_bundle,
                hosts=self._hosts_file(),
                resolve_locally=invocation.resolves_locally,
            )
            with self._lock:
                if st.deleted.is_set():
                    return
                self._procs.setdefault(st.uid, []).append(proc)
            self._set_running(st, cs, started)
            self._event(pod, "Started", f"Started container {cs.name}")
            result = proc.run(limit)
        finally:
            if net is not None:
                net.detach(proxy)
        if result.killed or st.deleted.is_set():
            self._event(pod, "Killing", f"Stopping container {cs.name}")
            return
        self._terminate(
            st, pod, cs, result.exit_code, result.output, started, timed_out=result.timed_out
        )

    def _run_echo(
        self, st: PodState, pod: Obj, cs: ContainerState, spec: Obj, limit: float | None
    ) -> None:
        """Serve the echo on the pod's address until the pod goes (or its deadline)."""
        ports = [
            int(p["containerPort"])
            for p in spec.get("ports") or []
            if (p.get("protocol") or "TCP") == "TCP" and p.get("containerPort")
        ]
        pod_spec = pod.get("spec") or {}
        # The container's hostname: the pod's (spec.hostname, else its name), or the node's.
        hostname = (
            self.node_name
            if pod_spec.get("hostNetwork")
            else str(pod_spec.get("hostname") or st.name)
        )

        def log_line(line: str) -> None:
            with st.lock:
                cs.append_log(line)

        server = EchoServer(st.pod_ip, ports, hostname, log_line)
        started = now_rfc3339()
        try:
            server.start()
        except OSError as exc:
            # What Node prints when listen() fails, and its exit code.
            self._set_running(st, cs, started)
            self._event(pod, "Started", f"Started container {cs.name}")
            self._terminate(st, pod, cs, 1, f"Error: {exc.strerror}\n", started, timed_out=False)
            return
        try:
            if st.deleted.is_set():
                return
            self._set_running(st, cs, started)
            self._event(pod, "Started", f"Started container {cs.name}")
            gone = st.deleted.wait(limit)  # set when the pod is deleted or the node stops
        finally:
            server.stop()
        if gone:
            self._event(pod, "Killing", f"Stopping container {cs.name}")
            return
        self._terminate(st, pod, cs, EXIT_KILLED, cs.log, started, timed_out=True)
