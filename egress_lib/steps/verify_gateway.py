"""Verify's requests through the gateway and their rows: the route, the status, the EIP seen.

A pod talks plain HTTP to the gateway whatever the backend protocol (HTTPS on 443 when the
destination has tls_offload); the gateway does TLS to the external service. ``--connect-to``
(unlike ``--resolve``) also takes the host name an NLB status carries. The body is printed
before curl's trailer, so the source address the destination saw can be read from it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from egress_lib import remedies
from egress_lib.parameters import Destination
from egress_lib.pod_probe import ProbeOutput, Transfer, write_out
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.verify_bypass import EgressFacts
from egress_lib.steps.verify_evidence import denying_policy, matched_rule, source_address
from egress_lib.steps.verify_rows import VerifyRow

if TYPE_CHECKING:
    from egress_lib.clients import Session

# curl exit codes of a TLS handshake the pod could not complete (35) or a certificate it did
# not trust (60): with tls_offload the gateway's certificate or TLS versions are at fault.
TLS_EXITS = frozenset({35, 60})


def curl_host(dest: Destination) -> str:
    """The host the request names: the destination's (``check`` refuses wildcard hosts)."""
    return dest.host


@dataclass(frozen=True)
class Request:
    """One request through the gateway: the URL and where --connect-to sends it."""

    tag: str
    url: str
    connect_to: str


def gateway_request(
    dest: Destination, addr: ClbAddress, host: str | None = None, path: str | None = None
) -> Request:
    """``dest`` (or ``host`` + ``path`` on its route) at the gateway address of its Ingress.

    Plain HTTP on the status's port; with tls_offload HTTPS on 443, the port the gateway's
    TLS listener has whatever port the status carries for HTTP.
    """
    host = host or curl_host(dest)
    tls = dest.policies.tls_offload is not None
    scheme, port = ("https", 443) if tls else ("http", addr.port)
    shown = "" if port == (443 if tls else 80) else f":{port}"
    return Request(
        dest.name,
        f"{scheme}://{host}{shown}{path or dest.path}",
        f"{host}:{port}:{addr.address}:{port}",
    )


def url_for(dest: Destination, addr: ClbAddress) -> str:
    return gateway_request(dest, addr).url


def request_args(requests: list[Request], timeout: int) -> list[str]:
    """curl for every request, ``--next`` between them: the body, then the tagged trailer."""
    args: list[str] = []
    for i, r in enumerate(requests):
        if i:
            args.append("--next")
        args += ["-s", "-w", write_out(r.tag), "--max-time", str(timeout)]
        args += ["--connect-to", r.connect_to, r.url]
    return args


def curl_args(dest: Destination, addr: ClbAddress, timeout: int) -> list[str]:
    """curl arguments for one destination through the gateway address of its Ingress."""
    return request_args([gateway_request(dest, addr)], timeout)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Seen:
    """What one request gave: its trailer (None: curl printed none) and the pod it ran in."""

    request: Request
    transfer: Transfer | None
    probe: ProbeOutput


def _tail(probe: ProbeOutput) -> str:
    return (probe.log.strip().splitlines() or ["no output"])[-1][:200]


def route_text(ingresses: list[dict[str, Any]], dest: Destination, host: str, path: str) -> str:
    """The matched rule as the row names it, or why there is none."""
    rule = matched_rule(ingresses, host, path)
    return str(rule) if rule else f"no rule of Ingress {dest.ingress} matches {host}{path}"


def _failed_fix(session: Session, dest: Destination, seen: Seen) -> tuple[str, str, str]:
    """(detail, fix, remedy) for a request through the gateway that got no good answer."""
    t, probe = seen.transfer, seen.probe
    p = session.params
    i = p.destinations.index(dest)
    if t is None:
        why = f"curl gave no result (pod {probe.phase}, exit {probe.exit_code}): {_tail(probe)}"
        return why, "", ""
    if t.status is None:
        detail = f"no HTTP answer (curl exit {t.curl_exit}: {t.error or _tail(probe)})"
        offload = dest.policies.tls_offload
        if offload is not None and t.curl_exit in TLS_EXITS:
            fix = (
                f"TLS to the gateway failed: the pods must trust the issuer of Secret "
                f"{offload.certificate} and it must name {curl_host(dest)}; check "
                f"destinations[{i}].policies.tls_offload (min_version/max_version) and re-run "
                "05-ingress-routes"
            )
            return detail, fix, ""
        return detail, "", ""
    if t.status == 403:
        found = denying_policy(p, dest, probe.pod_ip)
        if found:
            key, value = found
            fix = (
                f"{key} ({value}) refuses the test pod's address {probe.pod_ip}: the operator's "
                f"pods cannot reach it either; change {key} if they should"
            )
            return (
                f"HTTP 403: the gateway refused the pod's address {probe.pod_ip} ({key})",
                fix,
                remedies.verify_denied(key, value, probe.pod_ip or ""),
            )
    if t.status == 429 and dest.policies.rate_limit is not None:
        key = f"destinations[{i}].policies.rate_limit"
        return (
            "HTTP 429: the gateway throttled the request",
            (
                f"{key} is lower than the traffic the gateway replicas see; raise it (then "
                "re-run 05-ingress-routes) or re-run 06-verify when the traffic is lower"
            ),
            "",
        )
    return f"HTTP {t.status}: the gateway answered but the route or destination failed", "", ""


def via_row(
    session: Session,
    dest: Destination,
    path: str,
    route: str,
    addr: ClbAddress,
    seen: Seen,
    facts: EgressFacts,
    echo_source: str | None = None,
) -> VerifyRow:
    """The row of one request through the gateway; ``echo_source`` from the echo_url row."""
    t = seen.transfer
    row = VerifyRow(
        dest.name,
        path,
        seen.request.url,
        t.status if t is not None else None,
        "fail",
        "",
        route=route,
        seconds=t.seconds if t is not None else None,
        # Through a proxy (the sandbox's pod network is one) curl reports the proxy, not the
        # peer; the request still went to the address given with --connect-to.
        remote=(t.remote if _is_ip(t.remote) else addr.address) if t is not None else "",
        expected=", ".join(facts.expected_eips),
    )
    if t is not None and addr.ip and row.remote != addr.ip:
        # An answer from another address than the status's IP did not come through the gateway.
        return replace(row, detail=f"HTTP {t.status} from {row.remote}, not from {addr.ip}")
    if t is None or t.status is None or not 200 <= t.status < 400:
        detail, fix, remedy = _failed_fix(session, dest, seen)
        return replace(row, detail=detail, fix=fix, remedy=remedy)
    own = source_address(t.body)
    source, how = (echo_source, "the echo_url answer") if echo_source else (own, "the answer")
    via = f"HTTP {t.status} via {addr.address}"
    if source is None:
        return replace(
            row,
            result="skipped",
            detail=f"{via}; egress address not checked: the answer shows no source address "
            "(set verify.echo_url to an echo endpoint on a destination's host)",
        )
    if source in facts.expected_eips:
        return replace(
            row,
            result="pass",
            source=source,
            detail=f"{via}; {how} shows the SNAT EIP {source} as the source",
        )
    want = row.expected or "none: no Available SNAT entry serves the gateway vSwitches"
    if not ipaddress.ip_address(source).is_global:
        # No internet host sees a private peer: the endpoint echoed the X-Forwarded-For the
        # gateway adds (checkip.amazonaws.com does), not the address it saw.
        return replace(
            row,
            source=source,
            detail=f"{via}, but {how} shows {source}, a private address: the endpoint echoes "
            "the X-Forwarded-For header the gateway adds, not the address it saw",
            fix="use an echo endpoint that reports the connection's address (see the README), "
            "or remove x-forwarded-for with destinations[].policies.request_headers.remove",
        )
    return replace(
        row,
        source=source,
        detail=f"{via}, but {how} shows the source {source}, not the gateway's SNAT EIP ({want})",
        fix="the traffic left through another address: check the SNAT entries of "
        "03-configure-snat for the gateway vSwitch",
        remedy=remedies.verify_wrong_eip(
            [source], list(facts.expected_eips), list(facts.gateway_vswitches)
        ),
    )
