"""Run one curl pod to completion and hand back what it printed: the runbook's probe.

The pod carries the runbook's ownership labels and the run label, is waited for with a
deadline, and is always deleted, unless the run is killed first (or its create lands after it
died): steps 06 and 07 plan the deletes of other runs' probe pods (:func:`leftovers`), and
teardown deletes every pod of the runbook. curl's ``-w`` trailer (:func:`write_out`)
is one marked line per transfer, so a log holding response bodies, error messages and several
transfers (``--next``) still parses (:func:`parse_transfers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress_lib import kinds, kube, ownership, remedies
from egress_lib.errors import EgressError, KubernetesApiError, PlanStale, PreconditionFailed
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.plan import Change, Plan

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


# Each attempt's pod is <base>-<4 hex>: a base name is at most this long.
MAX_BASE = 63 - 5


def probe_name(session: Session, purpose: str, key: str) -> str:
    """``egress-<purpose>-<run>-<key>``, the base of the pods' names; long ones hashed.

    :func:`run_curl` adds a random suffix per attempt, so neither two runs nor two attempts
    of one run (two kernels of one run ID, a retried step) ever share a pod.
    """
    name = f"egress-{purpose}-{session.short_run_id}-{key}"
    if len(name) <= MAX_BASE:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{name[: MAX_BASE - 9].rstrip('-')}-{digest}"


def attempt_name(base: str) -> str:
    """``base`` plus a random suffix: the name of one attempt's pod (at most 63 characters)."""
    return f"{base[:MAX_BASE].rstrip('-')}-{secrets.token_hex(2)}"


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

    ``name`` is the base (:func:`probe_name`): the pod is :func:`attempt_name` of it, unique
    to this call. ``timeout`` is curl's own deadline (all its transfers); raises
    ``PreconditionFailed`` when the image cannot be pulled and ``WaitTimeout`` when the pod
    never finishes. The pod is deleted whatever happens, even when its create got no answer.
    """
    p = session.params
    wait = timeout + POD_MARGIN_SECONDS
    pod_name = attempt_name(name)
    body = manifest(session, pod_name, args, host_network=host_network, labels=labels)
    sent = time.monotonic()
    uid = create(session, body)
    # Slower than one read timeout: an attempt timed out and was retried, and that attempt
    # may still land on the server after the pod is deleted, making it anew.
    slow = time.monotonic() - sent >= kinds.REQUEST_TIMEOUT[1]
    try:
        pod = kube.wait_for(
            session, "Pod", pod_name, p.namespace, _finished, timeout=wait, reason=reason
        )
        log = _log(session, pod_name, p.namespace)
    finally:
        with contextlib.suppress(KubernetesApiError):  # best effort: teardown cleans up
            kube.delete(session, "Pod", pod_name, p.namespace)
        if slow:
            _remove_late(session, pod_name, p.namespace, sent + CREATE_SETTLE_SECONDS, uid)
    status = pod.get("status") or {}
    return ProbeOutput(
        pod=pod_name,
        exit_code=_exit_code(pod),
        log=log,
        pod_ip=status.get("podIP") or None,
        host_ip=status.get("hostIP") or None,
        phase=status.get("phase") or None,
    )


# kube-apiserver gives up on a request after --request-timeout (default 1m0s,
# https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/): a create
# the client saw time out has landed by then, or never will.
CREATE_SETTLE_SECONDS = 60.0


def create(session: Session, body: dict[str, Any]) -> str:
    """Create the probe pod and return its uid; if no answer came, delete it should it appear.

    A client-side timeout (or a reset, or a 504) says nothing about the server: it may have
    stored the pod anyway, and a pod nobody waits for would be left behind. So the name is
    watched until the server must have finished, and the pod deleted if it shows up; then
    the error is raised with what to do.
    """
    meta = body["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    sent = time.monotonic()
    try:
        done = kube.apply_change(
            session, Change("create", "Pod", name, "", namespace, payload=body)
        )
    except kube.StaleObject:
        # AlreadyExists for a name no one else uses: an earlier attempt of ours landed.
        found = kube.get(session, "Pod", name, namespace)
        return str(((found or {}).get("metadata") or {}).get("uid") or "")
    except KubernetesApiError as e:
        if e.status is not None and e.status != 504 and e.status < 500:
            raise  # refused (403, 422, 429...): nothing was stored
        lost = e.status is None or e.status == 504  # no answer: it may land later
        _remove_late(session, name, namespace, sent + (CREATE_SETTLE_SECONDS if lost else 0), None)
        e.remedy = remedies.probe_pod_unknown(name, namespace)
        raise
    return str(done.result.get("uid") or "")


def _remove_late(
    session: Session, name: str, namespace: str, until: float, ours: str | None
) -> None:
    """Delete pod ``name`` if a create of it lands (a uid other than ``ours``) before ``until``."""

    def late(obj: dict[str, Any] | None) -> bool:
        return obj is not None and (obj.get("metadata") or {}).get("uid") != ours

    try:
        found = kube.get(session, "Pod", name, namespace)
        remaining = until - time.monotonic()
        if not late(found) and remaining > 0:
            found = kube.wait_for(
                session,
                "Pod",
                name,
                namespace,
                late,
                timeout=remaining,
                reason=f"a late create of pod {name} (a create that got no answer), to delete it",
            )
        if late(found):
            kube.delete(session, "Pod", name, namespace)
    except EgressError:
        return  # none by the deadline (WaitTimeout), or the API is down: teardown finds it


# How long a leftover pod may take to go after its delete (a kubelet stopping a container).
LEFTOVER_DELETE_SECONDS = 120


def leftover_reason(obj: dict[str, Any]) -> str:
    """What the plan says of a probe pod another run left: whose, and why it is deleted."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    what = str(labels.get("app.kubernetes.io/name") or "egress-probe").removeprefix("egress-")
    return (
        f"leftover {what} pod of run {labels.get(ownership.RUN_LABEL)}: that run stopped "
        "before it deleted the pod (a pod whose create landed after the run was killed)"
    )


def leftovers(session: Session) -> list[Change]:
    """Deletes of the probe pods of runs other than this one (reads only).

    Probes run only under the cluster lock (steps 06 and 07 take it: ``carry_out``), and
    these deletes are applied under it too, so a probe pod of another run is one that run
    will never delete: it was stopped first.
    """
    p = session.params
    out = []
    for obj in kube.list_owned(session, "Pod", p.namespace):
        run = ((obj.get("metadata") or {}).get("labels") or {}).get(ownership.RUN_LABEL)
        if run and run != session.short_run_id:
            out.append(kube.plan_delete(session, obj, leftover_reason(obj)))
    return out


def remove_leftovers(session: Session, plan: Plan) -> list[Change]:
    """Carry out ``plan``'s deletes of pods (the leftovers), each waited for until gone."""
    applied: list[Change] = []
    for change in plan.changes:
        if change.kind != "Pod" or change.action != "delete":
            continue
        try:
            applied.append(kube.apply_change(session, change))
        except kube.StaleObject as e:
            raise PlanStale(plan.step, [str(e)], written=[c.ref for c in applied]) from e
        kube.wait_for(
            session,
            "Pod",
            change.name,
            change.namespace,
            lambda o: o is None,
            timeout=LEFTOVER_DELETE_SECONDS,
            reason=f"the leftover pod {change.name} to be deleted",
        )
    return applied
