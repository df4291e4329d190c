"""Step 07's probes: curl pods whose transfers exercise the policies, and how they are run.

A :class:`Probe` is one pod: its transfers (each tagged, so one log holds several), the
checks it answers and a judge that turns its output into rows. Probes of one phase run
concurrently (each waits on its own pod); phase 2 runs after phase 1, so that the throttle
check starts with the buckets the lighter probes left alone and an endpoint taken down for
the failover check does not skew the load-balancing split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from egress_lib import pod_probe, retry
from egress_lib.errors import EgressError, KubernetesApiError, PreconditionFailed
from egress_lib.pod_probe import ProbeOutput
from egress_lib.progress import waiting_bar
from egress_lib.steps import policy_expect as expect
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.policy_expect import Answer, Verdict
from egress_lib.steps.policy_results import CheckRow, Outcome

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Destination, Parameters

PURPOSE = "policy"
# At most this many pods at once: enough for every probe of a few destinations.
MAX_CONCURRENT = 8
# curl's --max-time for one ordinary transfer.
TRANSFER_SECONDS = 20
# The retry reason counted when a probe meets its route's own rate limit and runs again.
THROTTLED_REASON = "throttled by the route's rate limit"


@dataclass(frozen=True)
class Request:
    """One curl transfer (``repeat`` times the same URL, on one connection)."""

    tag: str
    url: str
    connect_to: str
    extra: tuple[str, ...] = ()
    repeat: int = 1
    max_time: int = TRANSFER_SECONDS


@dataclass(frozen=True)
class Head:
    """What a check is, before it runs: the columns a row has whatever happens."""

    destination: str
    policy: str
    check: str
    expectation: str
    parameter: str

    def row(self, observed: str, outcome: Outcome, pod: str = "", fix: str = "") -> CheckRow:
        """This check's row with what was observed."""
        return CheckRow(
            self.destination,
            self.policy,
            self.check,
            self.expectation,
            observed,
            outcome,
            self.parameter,
            pod,
            fix,
        )

    def judged(self, verdict: Verdict, pod: str, fix: str = "") -> CheckRow:
        """This check's row from a verdict (the fix only when it failed)."""
        outcome = verdict.outcome
        return self.row(verdict.observed, outcome, pod, fix if outcome == "fail" else "")


Judge = Callable[["Session", ProbeOutput], list[CheckRow]]


@dataclass(frozen=True)
class Probe:
    """One temporary curl pod and the checks its output answers."""

    key: str  # the pod's name is egress-policy-<run>-<key>
    summary: str  # what the plan says the pod does
    requests: tuple[Request, ...]
    heads: tuple[Head, ...]
    judge: Judge
    host_network: bool = False
    phase: int = 1
    # Sandbox only: the host the sandbox takes down while this probe runs (failover).
    outage: str | None = None
    # A probe of a rate-limited route: when the route's own limit answered some of its
    # requests (other traffic, or a check just before, drained the bucket), the probe to run
    # instead once the bucket has refilled, and how long that takes.
    on_throttle: tuple[Callable[[], Probe], float] | None = None

    @property
    def timeout(self) -> int:
        """curl's deadline for all its transfers, one after the other."""
        return sum(r.max_time * r.repeat for r in self.requests)


@dataclass(frozen=True)
class Context:
    """What the probes are built from: the parameters, the gateway's addresses, the target."""

    params: Parameters
    addresses: Mapping[str, ClbAddress]  # by Ingress name
    sandbox: bool
    marker: str  # unique to this run: finds the mirror's copies of this run's requests

    def address(self, dest: Destination) -> ClbAddress:
        """The gateway address of ``dest``'s Ingress (a placeholder while there is none)."""
        return self.addresses.get(dest.ingress) or ClbAddress(dest.ingress, "0.0.0.0")


def curl_host(dest: Destination) -> str:
    """The host the request names: the destination's (``check`` refuses wildcard hosts)."""
    return dest.host


def offloaded(dest: Destination) -> bool:
    """Pods talk HTTPS to the gateway for this destination (tls_offload)."""
    return dest.policies.tls_offload is not None


def target(dest: Destination, addr: ClbAddress, path: str | None = None) -> tuple[str, str]:
    """(URL, --connect-to) for ``dest`` through the gateway: plain HTTP on the Ingress
    status's port, or HTTPS on 443 when the gateway offloads TLS for the host."""
    host = curl_host(dest)
    p = dest.path if path is None else path
    if offloaded(dest):
        return f"https://{host}{p}", f"{host}:443:{addr.address}:443"
    port = "" if addr.port == 80 else f":{addr.port}"
    return f"http://{host}{port}{p}", f"{host}:{addr.port}:{addr.address}:{addr.port}"


def request(
    dest: Destination,
    addr: ClbAddress,
    tag: str,
    *,
    path: str | None = None,
    extra: Sequence[str] = (),
    repeat: int = 1,
    max_time: int = TRANSFER_SECONDS,
) -> Request:
    """A transfer to ``dest`` through the gateway."""
    url, connect_to = target(dest, addr, path)
    return Request(tag, url, connect_to, tuple(extra), repeat, max_time)


def curl_args(requests: Sequence[Request]) -> list[str]:
    """One curl invocation: the transfers separated by ``--next``, each with its trailer."""
    args: list[str] = []
    for i, r in enumerate(requests):
        if i:
            args.append("--next")
        args += ["-sS", "--max-time", str(r.max_time), "--connect-to", r.connect_to]
        args += ["-w", pod_probe.write_out(r.tag), *r.extra, *([r.url] * r.repeat)]
    return args


def transfers(out: ProbeOutput, tag: str) -> list[pod_probe.Transfer]:
    """The transfers tagged ``tag``, in order."""
    return [t for t in pod_probe.parse_transfers(out.log) if t.tag == tag]


def answers(out: ProbeOutput, tag: str) -> list[Answer]:
    """The answers of the transfers tagged ``tag`` (status, body, seconds)."""
    return [Answer(t.status, t.body, t.seconds) for t in transfers(out, tag)]


def pod_name(session: Session, probe: Probe) -> str:
    return pod_probe.probe_name(session, PURPOSE, probe.key)


# Sandbox only: host -> a context inside which the sandbox's origin refuses that host.
Outage = Callable[[str], AbstractContextManager[object]]


def _failed(probe: Probe, pod: str, error: EgressError) -> list[CheckRow]:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if probe.host_network and isinstance(error, KubernetesApiError) and error.status == 403:
        # Pod security admission (or a policy engine) may refuse hostNetwork pods.
        return [
            h.row(f"the cluster refuses hostNetwork pods: {text}", "skipped") for h in probe.heads
        ]
    return [
        h.row(f"the probe pod failed: {text}", "fail", pod, "see the probe pod's error")
        for h in probe.heads
    ]


def run_one(session: Session, probe: Probe, outage: Outage | None) -> list[CheckRow]:
    """Run ``probe``'s pod (inside its outage, if any) and judge its output."""
    name = pod_name(session, probe)
    args = curl_args(probe.requests)
    reason = f"the policy probe {probe.key}: {probe.summary}"

    def go() -> ProbeOutput:
        return pod_probe.run_curl(
            session,
            name,
            args,
            reason=reason,
            timeout=probe.timeout,
            host_network=probe.host_network,
            labels={"app.kubernetes.io/name": "egress-policy-probe"},
        )

    if probe.outage is not None and outage is None:
        why = f"not exercised: the sandbox's control endpoint cannot take {probe.outage} down"
        return [h.row(why, "skipped") for h in probe.heads]
    try:
        if probe.outage is not None and outage is not None:
            with outage(probe.outage):
                out = go()
        else:
            out = go()
    except PreconditionFailed:
        raise  # the image cannot be pulled: every probe would fail the same way
    except EgressError as e:
        return _failed(probe, name, e)
    limited = expect.throttled(
        [Answer(t.status, t.body) for t in pod_probe.parse_transfers(out.log)]
    )
    if limited and probe.on_throttle is not None:
        again, seconds = probe.on_throttle
        why = f"{limited} answered 429 {expect.THROTTLED_BODY} by the route's own limit"
        retry.note(f"policy probe {probe.key}", THROTTLED_REASON, 1, seconds)
        with waiting_bar(
            f"{why}: letting its bucket refill before running the probe once more",
            what=f"the rate-limit bucket of {probe.key}",
            timeout=seconds,
        ):
            time.sleep(seconds)
        return run_one(session, again(), outage)
    rows = probe.judge(session, out)
    if not limited:
        return rows
    note = (
        f" ({limited} of the probe's requests met the route's own rate limit, 429 "
        f"{expect.THROTTLED_BODY}: other traffic shares its bucket; run the check again later)"
    )
    return [replace(r, observed=r.observed + note) if r.outcome == "fail" else r for r in rows]


def run_probes(
    session: Session, probes: Sequence[Probe], outage: Outage | None = None
) -> list[CheckRow]:
    """Every probe, phase by phase, concurrently within a phase; rows in probe order."""
    rows: dict[int, list[CheckRow]] = {}
    for phase in sorted({p.phase for p in probes}):
        batch = [(i, p) for i, p in enumerate(probes) if p.phase == phase]
        workers = max(1, min(MAX_CONCURRENT, len(batch)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="egress-probe") as pool:
            futures = {i: pool.submit(run_one, session, p, outage) for i, p in batch}
            for i, f in futures.items():
                rows[i] = f.result()
    return [r for i in sorted(rows) for r in rows[i]]
