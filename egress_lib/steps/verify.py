"""Step 06: prove egress from pods, with evidence: the route, the EIP seen, and no bypass.

Like the seed's test (``curl --resolve host:80:<CLB IP>``), a pod talks plain HTTP to the
gateway whatever the backend protocol (HTTPS on 443 when the destination has tls_offload);
the gateway does TLS to the external service. ``--connect-to`` (unlike ``--resolve``) also
takes the host name an NLB status carries. Each answer's body is printed before curl's
trailer, so the source address the destination saw can be read from it (or from the
``verify.echo_url`` request) and compared with the SNAT EIP of the gateway's vSwitches. A
second pod then calls every destination directly, which must fail to connect.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from egress_lib import kube, pod_probe
from egress_lib.parameters import Destination
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps import verify_bypass
from egress_lib.steps._common import carry_out, plan_or_refuse
from egress_lib.steps._gateway_state import GatewayWatch
from egress_lib.steps.ingress import (
    ClbAddress,
    current_addresses,
    failed_gateway_warnings,
    wait_for_clb_address,
)
from egress_lib.steps.verify_bypass import EgressFacts
from egress_lib.steps.verify_evidence import EchoTarget, echo_target

# The requests through the gateway live there (module size); tests reach them from here.
from egress_lib.steps.verify_gateway import (
    Request,
    Seen,
    curl_args,
    curl_host,
    gateway_request,
    request_args,
    route_text,
    url_for,
    via_row,
)
from egress_lib.steps.verify_rows import (
    COLUMNS,
    ECHO,
    VIA,
    VerifyResult,
    VerifyRow,
    fix_for,
)

if TYPE_CHECKING:
    from egress_lib.clients import Session

__all__ = [
    "COLUMNS",
    "STEP",
    "Request",
    "Seen",
    "VerifyResult",
    "VerifyRow",
    "apply",
    "curl_args",
    "curl_host",
    "fix_for",
    "gateway_request",
    "plan",
    "request_args",
    "run",
    "url_for",
    "verify",
    "via_row",
]

STEP = "06-verify"
PURPOSE = "verify"  # pods are egress-verify-<run>-<destination> and egress-verify-<run>-direct
DIRECT_KEY = "direct"  # a destination named "direct" shares the name: the pods run one by one
ECHO_TAG = "verify.echo_url"  # a tag no destination name (a DNS label) can be
LABELS = {"app.kubernetes.io/name": "egress-verify"}


def pod_name(session: Session, dest: Destination) -> str:
    """``egress-verify-<run>-<name>``: concurrent runs never share a pod; long names hashed."""
    return pod_probe.probe_name(session, PURPOSE, dest.name)


def direct_pod_name(session: Session) -> str:
    return pod_probe.probe_name(session, PURPOSE, DIRECT_KEY)


def _probe(
    session: Session, name: str, requests: list[Request], args: list[str], reason: str
) -> list[Seen]:
    timeout = session.params.verify.timeout_seconds * len(requests)
    probe = pod_probe.run_curl(session, name, args, reason=reason, timeout=timeout, labels=LABELS)
    return [Seen(r, pod_probe.transfer(probe.log, r.tag), probe) for r in requests]


def _ingresses(session: Session) -> list[dict[str, Any]]:
    p = session.params
    found = (kube.get(session, "Ingress", name, p.namespace) for name in p.ingress_groups())
    return [o for o in found if o]


def _echo_rows(
    session: Session,
    echo: EchoTarget | None,
    seen: Seen | None,
    ingresses: list[dict[str, Any]],
    by_ingress: dict[str, ClbAddress],
    facts: EgressFacts,
) -> tuple[list[VerifyRow], str | None]:
    """The echo_url row and the address it gives the others (None: none)."""
    url = session.params.verify.echo_url
    if not url:
        return [], None
    if echo is None or seen is None:
        row = VerifyRow(
            "verify.echo_url",
            ECHO,
            url,
            None,
            "skipped",
            "no destination has the host of verify.echo_url: it cannot go through the gateway",
        )
        return [row], None
    dest = echo.destination
    route = route_text(ingresses, dest, echo.host, echo.path)
    row = via_row(session, dest, ECHO, route, by_ingress[dest.ingress], seen, facts)
    if row.result == "skipped":  # it answered, without an address: no echo endpoint
        row = replace(
            row,
            result="fail",
            detail=row.detail.split(";")[0] + "; the answer shows no source address",
            fix="set verify.echo_url to an endpoint that answers with the caller's address",
        )
    return [row], row.source if row.ok else None


def verify(session: Session, addresses: list[ClbAddress] | None = None) -> VerifyResult:
    """Every destination through its Ingress's address, then every one directly."""
    p = session.params
    if addresses is None:
        addresses = wait_for_clb_address(session, STEP)  # a Failed gateway stops it at once
    else:
        GatewayWatch(session, STEP, "the requests through the gateway cannot pass").check()
    by_ingress = {a.ingress: a for a in addresses}
    facts = verify_bypass.gather(session)
    ingresses = _ingresses(session)
    echo = echo_target(p)
    timeout = p.verify.timeout_seconds
    via: dict[str, Seen] = {}
    echo_seen: Seen | None = None
    for dest in p.destinations:
        addr = by_ingress[dest.ingress]
        requests = [gateway_request(dest, addr)]
        if echo is not None and echo.destination is dest:
            own = gateway_request(dest, addr, echo.host, echo.path)
            requests.append(Request(ECHO_TAG, own.url, own.connect_to))
        got = _probe(
            session,
            pod_name(session, dest),
            requests,
            request_args(requests, timeout),
            f"curl {requests[0].url} from a pod",
        )
        via[dest.name] = got[0]
        echo_seen = got[1] if len(got) > 1 else echo_seen
    echo_rows, echo_source = _echo_rows(session, echo, echo_seen, ingresses, by_ingress, facts)
    direct = _direct(session, facts)
    result = VerifyResult(
        gateway_vswitches=list(p.gateway.vswitches),
        snat_entry_name=p.snat.entry_name,
        node_vswitches=list(facts.node_vswitches),
    )
    for dest in p.destinations:
        addr = by_ingress[dest.ingress]
        route = route_text(ingresses, dest, curl_host(dest), dest.path)
        seen = via[dest.name]
        result.rows.append(via_row(session, dest, VIA, route, addr, seen, facts, echo_source))
        result.rows.append(direct[dest.name])
    result.rows += echo_rows
    return result


def _direct(session: Session, facts: EgressFacts) -> dict[str, VerifyRow]:
    """One pod calls every destination without the gateway; each row passes if blocked."""
    p = session.params
    calls = [
        (dest, Request(dest.name, verify_bypass.direct_url(dest, curl_host(dest)), ""))
        for dest in p.destinations
    ]
    if not calls:
        return {}
    args = verify_bypass.direct_args([(r.tag, r.url) for _, r in calls], p.verify.timeout_seconds)
    seen = _probe(
        session,
        direct_pod_name(session),
        [r for _, r in calls],
        args,
        "curl every destination directly, without the gateway",
    )
    return {
        dest.name: verify_bypass.direct_row(dest, r.url, s.transfer, s.probe, facts)
        for (dest, r), s in zip(calls, seen, strict=True)
    }


def plan(session: Session) -> Plan:
    """One temporary pod per destination, and one for the direct path (created, deleted);
    and the deletes of the probe pods other runs left behind."""
    p = session.params
    addresses = current_addresses(session)
    changes: list[Change] = []
    notes: list[str] = []
    echo = echo_target(p)
    for d in p.destinations:
        addr = addresses.get(d.ingress)
        via = (
            f"curl {url_for(d, addr)} --connect-to {addr.address}"
            if addr
            else f"curl http://{curl_host(d)}{d.path} through the gateway"
        )
        if echo is not None and echo.destination is d:
            via += f", then {p.verify.echo_url} (verify.echo_url) the same way"
        changes.append(
            Change("test", "Pod", pod_name(session, d), f"temporary: {via}", p.namespace)
        )
    changes.append(
        Change(
            "test",
            "Pod",
            direct_pod_name(session),
            "temporary: curl each destination directly, without the gateway (must fail to connect)",
            p.namespace,
        )
    )
    changes += pod_probe.leftovers(session)
    missing = sorted({d.ingress for d in p.destinations if addresses.get(d.ingress) is None})
    if missing:
        notes.append(
            f"Ingress {', '.join(missing)} has no address yet (steps 02 and 05 publish it): each "
            "pod will use the address the Ingress status carries when this step runs"
        )
    if p.verify.echo_url and echo is None:
        notes.append(
            f"verify.echo_url {p.verify.echo_url}: no destination has its host, so the echo "
            "request is skipped"
        )
    return Plan(STEP, changes, failed_gateway_warnings(session, STEP), notes)


_make_plan = plan  # apply's argument is also called "plan"


def _step_result(result: VerifyResult, removed: list[Change]) -> StepResult:
    return StepResult(
        STEP,
        [
            *removed,
            *(
                Change("check", "Destination", r.destination, f"{r.path}: {r.detail}")
                for r in result.rows
            ),
        ],
        [],
        {"verify": result.to_frame()},
    )


def _run(session: Session, plan: Plan | None) -> tuple[VerifyResult, StepResult]:
    plan = plan_or_refuse(session, plan, _make_plan)
    out: list[VerifyResult] = []

    def go(planned: Plan) -> StepResult:
        # Under the lock, so no other run is running its probes (pod_probe.leftovers).
        removed = pod_probe.remove_leftovers(session, planned)
        result = verify(session)
        out.append(result)
        result.save()
        return _step_result(result, removed)

    step = carry_out(session, plan, None, go)
    return out[0], step


def run(session: Session, plan: Plan | None = None) -> VerifyResult:
    """Check every destination once approved; failures are rows, not exceptions."""
    return _run(session, plan)[0]


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Run the checks; raise :class:`StepFailed` if any row failed."""
    result, step = _run(session, plan)
    result.raise_for_failures()
    return step
