"""Run one curl pod to completion and hand back what it printed: the runbook's probe.

The pod carries the runbook's ownership labels and the run label (teardown finds leftovers),
is waited for with a deadline, and is always deleted. curl's ``-w`` trailer (:func:`write_out`)
is one marked line per transfer, so a log holding response bodies, error messages and several
transfers (``--next``) still parses (:func:`parse_transfers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_lib import kube, ownership
from egress_lib.errors import KubernetesApiError, PreconditionFailed
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.plan import Change

if TYPE_CHECKING:
    from egress_lib.clients import Session

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
# Extra seconds beyond curl's own deadline for scheduling, image pull and container start.
POD_MARGIN_SECONDS = 120
MARKER = "@egress-probe"
# %{exitcode} and %{errormsg} need curl >= 7.75 (verify.image is 8.x; the sandbox runs 7.88).
# The leading newline ends a body that has none; the tag names the transfer.
_WRITE_OUT = (
    "\\n" + MARKER + " tag={tag} code=%{{http_code}} time=%{{time_total}} "
    "connect=%{{time_connect}} remote=%{{remote_ip}} exit=%{{exitcode}} error=%{{errormsg}}\\n"
)
_TRAILER = re.compile(
    re.escape(MARKER) + r" tag=(?P<tag>\S*) code=(?P<code>\d{3}) time=(?P<time>[0-9.]+) "
    r"connect=(?P<connect>[0-9.]+) remote=(?P<remote>\S*) exit=(?P<exit>\d+) "
    r"error=(?P<error>.*?)\s*$"
)


@dataclass(frozen=True)
class ProbeOutput:
    pod: str  # pod name
    exit_code: int | None  # the curl container's exit code
    log: str  # its whole log (stdout+stderr)
    pod_ip: str | None  # status.podIP (the source address the gateway sees)
    host_ip: str | None
    phase: str | None


@dataclass(frozen=True)
class Transfer:
    """One transfer's trailer, and what the log held between it and the previous one."""

    tag: str
    status: int | None  # None: no HTTP answer (curl prints 000)
    seconds: float
    connect_seconds: float  # curl's %{time_connect}: 0 when no TCP connection was made
    remote: str  # curl's %{remote_ip}: through a proxy, the proxy's
    curl_exit: int  # curl's exit code for this transfer (0: it got an answer)
    error: str  # curl's error message, "" on success
    body: str  # the body (and any curl messages) printed before the trailer


def write_out(tag: str) -> str:
    """The ``-w`` argument for a transfer named ``tag`` (no spaces, no ``%``)."""
    if not tag or any(ch.isspace() or ch == "%" for ch in tag):
        raise ValueError(f"probe tag {tag!r}: expected a word without spaces or %")
    return _WRITE_OUT.format(tag=tag)


def parse_transfers(log: str) -> list[Transfer]:
    """Every trailer in ``log`` in order, each with the text printed since the one before."""
    out: list[Transfer] = []
    body: list[str] = []
    for line in log.splitlines():
        start = line.find(MARKER)
        m = _TRAILER.match(line[start:]) if start >= 0 else None
        if m is None:
            body.append(line)
            continue
        if start > 0:
            body.append(line[:start])  # a body without a final newline
        code = int(m.group("code"))
        out.append(
            Transfer(
                tag=m.group("tag"),
                status=code or None,
                seconds=float(m.group("time")),
                connect_seconds=float(m.group("connect")),
                remote=m.group("remote"),
                curl_exit=int(m.group("exit")),
                error=m.group("error").strip(),
                body="\n".join(body).strip("\n"),
            )
        )
        body = []
    return out


def transfer(log: str, tag: str) -> Transfer | None:
    """The trailer tagged ``tag`` in ``log``, or None when curl never printed it."""
    return next((t for t in parse_transfers(log) if t.tag == tag), None)


def probe_name(session: Session, purpose: str, key: str) -> str:
    """``egress-<purpose>-<run>-<key>``: concurrent runs never share a pod; long ones hashed."""
    name = f"egress-{purpose}-{session.short_run_id}-{key}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{name[: 63 - 9].rstrip('-')}-{digest}"


def manifest(
    session: Session,
    name: str,
    args: list[str],
    *,
    host_network: bool = False,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The pod: the curl image running ``args``, labelled as the runbook's and this run's."""
    p = session.params
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "curl", "image": p.verify.image, "args": list(args)}],
    }
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": p.namespace,
            "labels": {
                **dict(labels or {}),
                **ownership.labels(p),
                ownership.RUN_LABEL: session.short_run_id,
            },
        },
        "spec": spec,
    }


def _finished(obj: dict[str, Any] | None) -> bool:
    status = (obj or {}).get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            raise PreconditionFailed(
                f"pod {(obj or {}).get('metadata', {}).get('name')} cannot pull its image: "
                f"{waiting.get('reason')}: {waiting.get('message') or ''} (set verify.image)"
            )
    return status.get("phase") in ("Succeeded", "Failed")


def _exit_code(obj: dict[str, Any]) -> int | None:
    for cs in (obj.get("status") or {}).get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            return int(terminated["exitCode"])
    return None


def _log(session: Session, name: str, namespace: str) -> str:
    with k8s_errors("read log", "Pod", name):
        resp = session.core.read_namespaced_pod_log(
            name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
    data = resp.data
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def run_curl(
    session: Session,
    name: str,
    args: list[str],
    *,
    reason: str,
    timeout: int,
    host_network: bool = False,
    labels: Mapping[str, str] | None = None,
) -> ProbeOutput:
    """Create the pod, wait (``timeout`` + a margin) until it ends, read its log, delete it.

    ``timeout`` is curl's own deadline (all its transfers); raises ``PreconditionFailed``
    when the image cannot be pulled and ``WaitTimeout`` when the pod never finishes.
    """
    p = session.params
    wait = timeout + POD_MARGIN_SECONDS
    # This run's pod from an earlier probe in the same session (pods are immutable).
    kube.delete(session, "Pod", name, p.namespace, wait=True, timeout=wait)
    body = manifest(session, name, args, host_network=host_network, labels=labels)
    kube.apply_change(session, Change("create", "Pod", name, "", p.namespace, payload=body))
    try:
        pod = kube.wait_for(
            session, "Pod", name, p.namespace, _finished, timeout=wait, reason=reason
        )
        log = _log(session, name, p.namespace)
    finally:
        with contextlib.suppress(KubernetesApiError):  # best effort: teardown cleans up
            kube.delete(session, "Pod", name, p.namespace)
    status = pod.get("status") or {}
    return ProbeOutput(
        pod=name,
        exit_code=_exit_code(pod),
        log=log,
        pod_ip=status.get("podIP") or None,
        host_ip=status.get("hostIP") or None,
        phase=status.get("phase") or None,
    )
