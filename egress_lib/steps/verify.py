"""Step 06: prove it works: from a pod, curl each destination through the gateway's CLB.

Like the seed's test (``curl --resolve host:80:<CLB IP>``), the pod talks plain HTTP to the
gateway whatever the backend protocol; the gateway does TLS to the external service. It uses
``--connect-to``, which (unlike ``--resolve``) also takes the host name an NLB status carries.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from egress_lib import kube, ownership, remedies
from egress_lib.errors import KubernetesApiError, PreconditionFailed, StepFailed
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.parameters import Destination
from egress_lib.plan import RUN_DIR_ENV, Change, Plan, StepResult
from egress_lib.steps._common import carry_out, plan_or_refuse
from egress_lib.steps.ingress import ClbAddress, current_addresses, wait_for_clb_address
from egress_lib.tables import Table, mark

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "06-verify"
POD_PREFIX = "egress-verify-"
# Extra seconds beyond curl's --max-time for scheduling, image pull and container start.
POD_MARGIN_SECONDS = 120
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
WRITE_OUT = "%{http_code} %{time_total} %{remote_ip}"
_RESULT = re.compile(r"(\d{3}) ([0-9.]+) ?(\S*)\s*$")
COLUMNS = ["Destination", "URL", "HTTP status", "Time (s)", "Remote address", "OK", "Detail"]


def pod_name(dest: Destination, run: str) -> str:
    """``egress-verify-<run>-<name>``: concurrent runs never share a pod; long names are hashed."""
    name = f"{POD_PREFIX}{run}-{dest.name}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(dest.name.encode()).hexdigest()[:8]
    return f"{name[: 63 - 9].rstrip('-')}-{digest}"


def curl_host(dest: Destination) -> str:
    """A concrete host for the request (a wildcard rule gets a sample name)."""
    return "egress-verify." + dest.host[2:] if dest.host.startswith("*.") else dest.host


def url_for(dest: Destination, addr: ClbAddress) -> str:
    port = "" if addr.port == 80 else f":{addr.port}"
    return f"http://{curl_host(dest)}{port}{dest.path}"


def curl_args(dest: Destination, addr: ClbAddress, timeout: int) -> list[str]:
    """curl arguments: connect to the status's address (IP or name), print ``code time ip``."""
    return [
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        WRITE_OUT,
        "--max-time",
        str(timeout),
        "--connect-to",
        f"{curl_host(dest)}:{addr.port}:{addr.address}:{addr.port}",
        url_for(dest, addr),
    ]


def pod_manifest(session: Session, dest: Destination, addr: ClbAddress) -> dict[str, Any]:
    p = session.params
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(dest, session.short_run_id),
            "namespace": p.namespace,
            "labels": {
                "app.kubernetes.io/name": "egress-verify",
                **ownership.labels(p),
                ownership.RUN_LABEL: session.short_run_id,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "curl",
                    "image": p.verify.image,
                    "args": curl_args(dest, addr, p.verify.timeout_seconds),
                }
            ],
        },
    }


@dataclass(frozen=True)
class VerifyRow:
    destination: str
    url: str
    status: int | None
    seconds: float | None
    remote: str
    ok: bool
    detail: str


@dataclass
class VerifyResult:
    """One row per destination; ``ok`` when every request got a 2xx/3xx answer."""

    rows: list[VerifyRow] = field(default_factory=list)
    # False in a plan-only notebook run: no pod was started, so nothing passed or failed.
    ran: bool = True
    # What a failure's remedy names: the vSwitches step 03 gives SNAT entries, and their name.
    gateway_vswitches: list[str] = field(default_factory=list)
    snat_entry_name: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (:data:`COLUMNS`), for code."""
        frame: pd.DataFrame = pd.DataFrame(
            [
                [r.destination, r.url, r.status, r.seconds, r.remote, r.ok, r.detail]
                for r in self.rows
            ],
            columns=COLUMNS,
        )
        return frame

    def to_table(self) -> Table:
        """The rows to read: ✓ or ✗ error, and for each ✗ what to check."""
        columns = ["Result", "Destination", "URL", "HTTP status", "Time (s)", "Remote address"]
        failed = any(not r.ok for r in self.rows)
        rows = [
            [mark(r.ok), r.destination, r.url, r.status, r.seconds, r.remote, r.detail]
            + ([fix_for(r)] if failed else [])
            for r in self.rows
        ]
        columns += ["Detail", "Fix"] if failed else ["Detail"]
        empty = "not run: the plan was not applied" if not self.ran else "no destinations"
        return Table(columns, rows, empty=empty)

    def __str__(self) -> str:
        return str(self.to_table())

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: the table, not the dataclass fields.
        return str(self)

    def _repr_html_(self) -> str:
        return self.to_table()._repr_html_()

    def records(self) -> list[dict[str, Any]]:
        """Plain rows, for ``egress-runbook run``'s summary table."""
        return [
            {
                "destination": r.destination,
                "url": r.url,
                "http_status": r.status,
                "time_s": r.seconds,
                "remote_address": r.remote,
                "ok": r.ok,
            }
            for r in self.rows
        ]

    def save(self) -> str | None:
        """Write ``verify.json`` into the run folder ``egress-runbook run`` names; else nothing."""
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            return None
        path = os.path.join(run_dir, "verify.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.records(), f, indent=2)
        return path

    def raise_for_failures(self) -> None:
        """Raise :class:`EgressError` naming every failing destination."""
        bad = [r for r in self.rows if not r.ok]
        if not self.ran:
            return
        if bad:
            lines = "\n".join(f"  - {r.destination} ({r.url}): {r.detail}" for r in bad)
            raise StepFailed(
                f"{len(bad)} destination(s) not reachable through the gateway:\n{lines}",
                remedy=self._remedy(bad),
            )

    def _remedy(self, bad: list[VerifyRow]) -> str:
        # Every route is an ExternalName one: all of them 503 also fits a gateway that does
        # not resolve ExternalName Services, which SNAT cannot fix.
        if all(r.status == 503 for r in self.rows):
            return remedies.verify_all_503(self.gateway_vswitches, self.snat_entry_name)
        if any(r.status == 503 for r in bad):
            return remedies.verify_503(self.gateway_vswitches, self.snat_entry_name)
        return remedies.verify_failed()


def fix_for(row: VerifyRow) -> str:
    """What to check when a destination failed, naming the step that sets it up."""
    if row.ok:
        return ""
    if row.status is None:
        return (
            "no answer from the CLB address: check that the MseIngressConfig is Listening "
            "(02-create-gateway) and the Ingress address (05-ingress-routes)"
        )
    if row.status == 404:
        return "no route for this host and path: run 05-ingress-routes (and 04-external-services)"
    if row.status in (502, 503, 504):
        return (
            "the gateway could not reach the destination: check the SNAT entry for the gateway "
            "vSwitch (run 03-configure-snat)"
        )
    return "the destination answered with an error: check destinations[].path and port"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_output(text: str) -> tuple[int | None, float | None, str]:
    """(HTTP status, seconds, remote ip) from curl's ``-w`` line; Nones if absent."""
    for line in reversed(text.strip().splitlines()):
        m = _RESULT.search(line)
        if m:
            code = int(m.group(1))
            return (code or None), float(m.group(2)), m.group(3)
    return None, None, ""


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


def _log(session: Session, name: str, namespace: str) -> str:
    with k8s_errors("read log", "Pod", name):
        resp = session.core.read_namespaced_pod_log(
            name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
    data = resp.data
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def check_destination(session: Session, dest: Destination, addr: ClbAddress) -> VerifyRow:
    """Run one curl pod to completion, read its output, delete it."""
    p = session.params
    name = pod_name(dest, session.short_run_id)
    wait = p.verify.timeout_seconds + POD_MARGIN_SECONDS
    # This run's pod from an earlier check in the same session (pods are immutable).
    kube.delete(session, "Pod", name, p.namespace, wait=True, timeout=wait)
    manifest = pod_manifest(session, dest, addr)
    url = url_for(dest, addr)
    kube.apply_change(session, Change("create", "Pod", name, "", p.namespace, payload=manifest))
    try:
        pod = kube.wait_for(
            session,
            "Pod",
            name,
            p.namespace,
            _finished,
            timeout=wait,
            reason=f"curl {url} from a pod",
        )
        output = _log(session, name, p.namespace)
    finally:
        with contextlib.suppress(KubernetesApiError):  # best effort: teardown cleans up
            kube.delete(session, "Pod", name, p.namespace)
    status, seconds, remote = parse_output(output)
    if remote and not _is_ip(remote):
        # Through a proxy (the sandbox's pod network is one) curl reports the proxy, not the
        # peer; the request still went to the address given with --connect-to.
        remote = addr.address
    phase = (pod.get("status") or {}).get("phase")
    # An answer from another address than the status's IP did not come through the gateway.
    elsewhere = bool(addr.ip and remote and _is_ip(remote) and remote != addr.ip)
    ok = status is not None and 200 <= status < 400 and not elsewhere
    if elsewhere:
        detail = f"HTTP {status} from {remote}, not from the Ingress address {addr.ip}"
    elif ok:
        detail = f"HTTP {status} via {addr.address}"
    elif status is None:
        tail = output.strip().splitlines()[-1:] or ["no output"]
        detail = f"no HTTP answer (pod {phase}): {tail[0][:200]}"
    else:
        detail = f"HTTP {status}: the gateway answered but the route or destination failed"
    return VerifyRow(dest.name, url, status, seconds, remote, ok, detail)


def verify(session: Session, addresses: list[ClbAddress] | None = None) -> VerifyResult:
    """Check every destination through its Ingress's CLB address."""
    p = session.params
    by_ingress = {a.ingress: a for a in (addresses or wait_for_clb_address(session))}
    result = VerifyResult(
        gateway_vswitches=list(p.gateway.vswitches), snat_entry_name=p.snat.entry_name
    )
    for dest in p.destinations:
        result.rows.append(check_destination(session, dest, by_ingress[dest.ingress]))
    return result


def plan(session: Session) -> Plan:
    """One temporary pod per destination (created, waited for, deleted)."""
    p = session.params
    addresses = current_addresses(session)
    changes: list[Change] = []
    notes: list[str] = []
    for d in p.destinations:
        addr = addresses.get(d.ingress)
        via = (
            f"curl {url_for(d, addr)} --connect-to {addr.address}"
            if addr
            else f"curl http://{curl_host(d)}{d.path} through the gateway"
        )
        changes.append(
            Change(
                "test", "Pod", pod_name(d, session.short_run_id), f"temporary: {via}", p.namespace
            )
        )
    missing = sorted({d.ingress for d in p.destinations if addresses.get(d.ingress) is None})
    if missing:
        notes.append(
            f"Ingress {', '.join(missing)} has no address yet (steps 02 and 05 publish it): each "
            "pod will use the address the Ingress status carries when this step runs"
        )
    return Plan(STEP, changes, notes=notes)


_make_plan = plan  # apply's argument is also called "plan"


def run(session: Session, plan: Plan | None = None) -> VerifyResult:
    """Check every destination once approved; failures are rows, not exceptions."""
    plan = plan_or_refuse(session, plan, _make_plan)
    out: list[VerifyResult] = []

    def go(planned: Plan) -> StepResult:
        result = verify(session)
        out.append(result)
        result.save()
        return StepResult(
            STEP,
            [Change("check", "Destination", r.destination, r.detail) for r in result.rows],
            [],
            {"verify": result.to_frame()},
        )

    carry_out(session, plan, None, go)
    return out[0]


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Run the checks; raise :class:`StepFailed` if any destination is unreachable."""
    result = run(session, plan)
    step = StepResult(
        STEP,
        [Change("check", "Destination", r.destination, r.detail) for r in result.rows],
        [],
        {"verify": result.to_frame()},
    )
    result.raise_for_failures()
    return step
