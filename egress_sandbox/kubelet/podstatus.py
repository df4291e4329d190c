"""The in-memory state of a pod on the node, and the ``status`` the kubelet reports for it."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from egress_sandbox.k8s.store import now_rfc3339

Obj = dict[str, Any]
# A running container's log is kept to this many characters (the kubelet rotates at 10 MiB;
# an echo server logs about 1 KB per request, so this holds the last thousand or so).
LOG_LIMIT = 1024 * 1024


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd names references."""
    name, _, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def _repository(image: str) -> str:
    """The repository path of an image reference: no registry, no tag, no digest."""
    ref = normalize_image(image).split("@")[0]
    return ref.split("/", 1)[1].rsplit(":", 1)[0]


def is_curl_image(image: str) -> bool:
    """True when the repository path (no registry, no tag) mentions curl."""
    return "curl" in _repository(image)


# mendhak/http-https-echo, ealen/echo-server, registry.k8s.io/echoserver and their mirrors.
ECHO_WORDS = ("http-https-echo", "echo-server", "echoserver")


def is_echo_image(image: str) -> bool:
    """True when the repository path names one of the well-known HTTP echo servers."""
    repo = _repository(image)
    return any(word in repo for word in ECHO_WORDS)


# ACR's VPC endpoints: registry-vpc.<region>.aliyuncs.com (Personal Edition) and
# <instance>-registry-vpc.<region>.cr.aliyuncs.com (Enterprise Edition), reached without internet
# (https://www.alibabacloud.com/help/en/acr/user-guide/pull-images-over-a-vpc).
_VPC_REGISTRY = re.compile(
    r"^(registry-vpc\.[a-z0-9-]+\.aliyuncs\.com|[a-z0-9-]+-registry-vpc\.[a-z0-9-]+\.cr\.aliyuncs\.com)$"
)


def registry_of(image: str) -> str:
    """The registry host of an image reference (``docker.io`` when it names none)."""
    return normalize_image(image).split("/", 1)[0]


def needs_internet(image: str) -> bool:
    """True unless the image comes from an ACR VPC endpoint."""
    return not _VPC_REGISTRY.match(registry_of(image))


@dataclass
class ContainerState:
    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    started: bool = False
    ready: bool = False
    container_id: str = ""
    image_id: str = ""
    log: str = ""
    restart_count: int = 0

    def append_log(self, line: str) -> None:
        """Add a line to a running container's log, keeping it under ``LOG_LIMIT``.

        Past the limit the oldest lines go (down to three quarters of it), as a rotated log
        loses its oldest file. Called with the pod's lock held.
        """
        self.log += line if line.endswith("\n") else line + "\n"
        if len(self.log) > LOG_LIMIT:
            cut = self.log.find("\n", len(self.log) - LOG_LIMIT * 3 // 4)
            self.log = self.log[cut + 1 :] if cut >= 0 else ""

    @classmethod
    def from_status(cls, name: str, image: str, reported: Obj) -> ContainerState:
        """The state a saved ``containerStatuses`` entry describes (its log is not saved)."""
        return cls(
            name,
            image,
            state=dict(reported.get("state") or {"waiting": {"reason": "ContainerCreating"}}),
            last_state=dict(reported.get("lastState") or {}),
            started=bool(reported.get("started")),
            ready=bool(reported.get("ready")),
            container_id=str(reported.get("containerID") or ""),
            image_id=str(reported.get("imageID") or ""),
            restart_count=int(reported.get("restartCount") or 0),
        )

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass
class PodState:
    uid: str
    namespace: str
    name: str
    pod_ip: str
    restart_policy: str
    containers: list[ContainerState]
    start_time: str = field(default_factory=now_rfc3339)
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    deleted: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_pod(cls, pod: Obj, pod_ip: str) -> PodState:
        """The node's view of ``pod``: fresh for a new pod, as reported for a saved one.

        ``pod_ip`` is used only when the pod has none yet.
        """
        meta, spec = pod["metadata"], pod.get("spec") or {}
        status = pod.get("status") or {}
        reported = {c.get("name"): c for c in status.get("containerStatuses") or []}
        st = cls(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            pod_ip=status.get("podIP") or pod_ip,
            restart_policy=spec.get("restartPolicy") or "Always",
            containers=[
                ContainerState.from_status(
                    c["name"], c.get("image", ""), reported.get(c["name"], {})
                )
                for c in spec.get("containers") or []
            ],
            phase=status.get("phase") or "Pending",
            reason=status.get("reason") or "",
            message=status.get("message") or "",
        )
        if status.get("startTime"):
            st.start_time = status["startTime"]
        for cond in status.get("conditions") or []:
            # Conditions keep their saved transition times until their status changes.
            st.transitions[cond["type"]] = (cond["status"], cond.get("lastTransitionTime") or "")
        return st

    def container(self, name: str) -> ContainerState | None:
        return next((c for c in self.containers if c.name == name), None)

    def compute_phase(self) -> None:
        """Phase from container states (called with ``lock`` held)."""
        if self.reason == "DeadlineExceeded":
            self.phase = "Failed"
            return
        states = [c.state for c in self.containers]
        if all("terminated" in s for s in states):
            codes = [s["terminated"]["exitCode"] for s in states]
            self.phase = "Succeeded" if all(c == 0 for c in codes) else "Failed"
        elif any(c.started for c in self.containers) or self.phase == "Running":
            # Includes CrashLoopBackOff under restartPolicy Always, and a container being
            # started again: a pod never goes back to Pending.
            self.phase = "Running"
        else:
            self.phase = "Pending"

    def _condition(self, ctype: str, ok: bool, reason: str = "", message: str = "") -> Obj:
        status = "True" if ok else "False"
        prev = self.transitions.get(ctype)
        if prev is None or prev[0] != status:
            self.transitions[ctype] = (status, now_rfc3339())
        cond: Obj = {
            "type": ctype,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self.transitions[ctype][1],
        }
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        return cond

    def status(self, host_ip: str) -> Obj:
        """The pod status object (called with ``lock`` held)."""
        ready = self.phase == "Running" and all(c.ready for c in self.containers)
        if self.phase in ("Succeeded", "Failed"):
            why, msg = ("PodCompleted" if self.phase == "Succeeded" else "PodFailed"), ""
        elif ready:
            why, msg = "", ""
        else:
            unready = " ".join(c.name for c in self.containers if not c.ready)
            why, msg = "ContainersNotReady", f"containers with unready status: [{unready}]"
        out: Obj = {
            "phase": self.phase,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition("Initialized", True),
                self._condition("Ready", ready, why, msg),
                self._condition("ContainersReady", ready, why, msg),
                self._condition("PodScheduled", True),
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "qosClass": "BestEffort",
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        return out
