"""Mirroring's check: requests carrying this run's marker, and the copies the mirror logs.

The mirror target's pods are found through its Service's selector and their logs read while
they run; an echo server logs one JSON line per request, so the copies (and their Host, with
``-shadow``) can be counted.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from egress_lib import kube
from egress_lib.errors import EgressError
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.pod_probe import ProbeOutput
from egress_lib.steps import policy_expect as expect
from egress_lib.steps.policy_expect import Verdict
from egress_lib.steps.policy_parts import Part
from egress_lib.steps.policy_probes import Context, Head, answers, request
from egress_lib.steps.policy_results import CheckRow

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Destination

MIRROR_REQUESTS = 4  # at 100 %: every copy must arrive
MIRROR_REQUESTS_PARTIAL = 10  # below 100 %: enough for a share to show
MIRROR_WAIT_SECONDS = 10.0  # copies travel in the background: give them this long
MIRROR_POLL_SECONDS = 0.25
_SERVICE_REF = re.compile(r"^(?:(?P<ns>[^/]+)/)?(?P<name>[^:]+)(?::(?P<port>\d+))?$")


def mirror_service(ref: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a mirror.service reference."""
    m = _SERVICE_REF.match(ref)
    if m is None:
        return namespace, ref
    return m.group("ns") or namespace, m.group("name")


def _pod_logs(session: Session, namespace: str, name: str) -> list[str]:
    """The log lines of the Service's running pods (found through its selector)."""
    svc = kube.get(session, "Service", name, namespace)
    if svc is None:
        raise EgressError(f"Service {namespace}/{name} not found")
    selector = ((svc.get("spec") or {}).get("selector")) or {}
    if not selector:
        raise EgressError(f"Service {namespace}/{name} has no selector: no pods to read")
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    with k8s_errors("list", "Pod", None):
        resp = session.core.list_namespaced_pod(
            namespace,
            label_selector=labels,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    items: list[dict[str, Any]] = json.loads(resp.data).get("items") or []
    lines: list[str] = []
    for pod in items:
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        pod_name = pod["metadata"]["name"]
        with k8s_errors("read log", "Pod", pod_name):
            log = session.core.read_namespaced_pod_log(
                pod_name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        data = log.data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        lines += text.splitlines()
    return lines


def mirror_part(ctx: Context, i: int, d: Destination, budget: int | None) -> Part | None:
    """Requests carrying this run's marker; the mirror's pods log the copies."""
    m = d.policies.mirror
    if m is None:
        return None
    p = 100 if m.percentage is None else m.percentage
    n = MIRROR_REQUESTS if p in (0, 100) else MIRROR_REQUESTS_PARTIAL
    if budget is not None:
        n = max(1, min(n, budget))
    namespace, name = mirror_service(m.service, ctx.params.namespace)
    marker = f"{ctx.marker}-{i}"
    sep = "&" if "?" in d.path else "?"
    head = Head(
        d.name,
        "mirror",
        f"{n} requests marked {marker}",
        f"{p}% copied to {namespace}/{name} with Host {d.host}-shadow; the client does not wait",
        f"destinations[{i}].policies.mirror",
    )
    req = request(
        d,
        ctx.address(d),
        "mirror",
        path=f"{d.path}{sep}egress-probe={marker}",
        repeat=n,
    )
    fix = f"check the mirror annotations and that {namespace}/{name} has Running pods"

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        got = answers(out, "mirror")
        slowest = max((a.seconds for a in got), default=0.0)
        answered = sum(1 for a in got if a.status is not None and a.status < 400)
        deadline = time.monotonic() + MIRROR_WAIT_SECONDS
        try:
            while True:
                seen, shadow = expect.mirror_copies(_pod_logs(session, namespace, name), marker)
                if seen >= n or (0 < p < 100 and seen) or p == 0 or time.monotonic() >= deadline:
                    break
                time.sleep(MIRROR_POLL_SECONDS)  # the copies are on their way
        except EgressError as e:
            return [head.row(f"cannot read the mirror's logs: {e}", "fail", out.pod, fix)]
        v = expect.judge_mirror(seen, answered, m.percentage, shadow)
        observed = f"{answered}/{n} answered (slowest {slowest:.2f} s); {v.observed}"
        if not ctx.sandbox and seen == 0 and p > 0:
            # A real mirror target need not log requests the way an echo server does.
            note = "; the target's logs do not show the marker (not an echo server?)"
            return [head.row(observed + note, "skipped", out.pod)]
        ok = v.ok and answered == n
        return [head.judged(Verdict(ok, observed), out.pod, fix)]

    return Part((head,), judge, (req,), f"{n} marked requests for the mirror")
