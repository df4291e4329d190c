"""The checks one destination's main probe pod runs, each a :class:`Part` of that pod.

The pod's first transfer ("main", with ``-D -``) serves several checks at once: TLS
origination and offload, header control and upstream-vhost read its answer; load
balancing, the timeout and the TLS version range add transfers of their own (mirroring:
:mod:`egress_lib.steps.policy_mirror`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from egress_lib.pod_probe import ProbeOutput, Transfer
from egress_lib.policies import HeaderControl
from egress_lib.steps import policy_expect as expect
from egress_lib.steps.policy_expect import Verdict
from egress_lib.steps.policy_probes import (
    Context,
    Head,
    Judge,
    Request,
    answers,
    request,
    transfers,
)
from egress_lib.steps.policy_results import CheckRow, Outcome

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Destination

MAIN = "main"
LB_REQUESTS = 20
DELAY_MARGIN = 2  # /delay/<timeout + this>: longer than the timeout, so the gateway cuts it
ORIGIN_MAX_DELAY = 30  # the sandbox origin delays at most this long
SENT_VALUE = "egress-probe"  # what the pod sends itself in headers a policy updates/removes


@dataclass(frozen=True)
class Part:
    """Some checks of a destination: extra transfers, their heads and their judge."""

    heads: tuple[Head, ...]
    judge: Judge
    requests: tuple[Request, ...] = ()
    summary: str = ""


def _key(i: int, rest: str) -> str:
    return f"destinations[{i}].{rest}"


def main_transfer(out: ProbeOutput) -> tuple[Transfer | None, dict[str, str], str]:
    """The main transfer, its response headers (lower-cased) and its body."""
    found = transfers(out, MAIN)
    if not found:
        return None, {}, ""
    t = found[0]
    _, headers, body = expect.split_head(t.body)
    return t, headers, body


def sent_headers(d: Destination) -> dict[str, str]:
    """Headers the pod sends itself: those a request policy updates or removes, so the
    check shows the gateway overwriting or stripping a value the client gave."""
    rh = d.policies.request_headers
    if rh is None:
        return {}
    names = [*rh.update, *rh.remove]
    return {n.lower(): SENT_VALUE for n in names}


def main_request(ctx: Context, d: Destination) -> Request:
    """The main transfer: response headers on stdout (``-D -``), the echo after them."""
    extra = ["-D", "-"]
    for name, value in sent_headers(d).items():
        extra += ["-H", f"{name}: {value}"]
    return request(d, ctx.address(d), MAIN, extra=extra)


# ---- TLS -------------------------------------------------------------------------------------

TLS_FIX = (
    "the destination refused the gateway's TLS: check sni (proxy-ssl-name with "
    "proxy-ssl-server-name on) and upstream_tls.client_certificate (proxy-ssl-secret) on "
    "the Ingress, and that the Secret holds a certificate the destination accepts"
)


def origination_part(ctx: Context, i: int, d: Destination) -> Part | None:
    """HTTPS backends: the origin saw TLS, the SNI and (mTLS) the client certificate."""
    if d.backend_protocol != "HTTPS":
        return None
    tls = d.policies.upstream_tls
    mtls = tls is not None and tls.client_certificate is not None
    keys = [_key(i, "backend_protocol")]
    if d.sni is not None:
        keys.append(_key(i, "sni"))
    if mtls:
        keys.append(_key(i, "policies.upstream_tls.client_certificate"))
    policy = "upstream_tls" if mtls else ("sni" if d.sni else "backend_protocol")
    cert = "a client certificate" if mtls else "no client certificate"
    head = Head(
        d.name,
        policy,
        "TLS from the gateway to the destination",
        f"tls true, sni {d.sni or 'none'}, {cert}",
        ", ".join(keys),
    )

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        t, _, body = main_transfer(out)
        status = t.status if t else None
        v = expect.judge_origination(expect.echo_of(body), status, d.sni, mtls)
        return [head.judged(v, out.pod, TLS_FIX)]

    return Part((head,), judge, summary="TLS to the destination")


def offload_part(ctx: Context, i: int, d: Destination) -> Part | None:
    """TLS offload: HTTPS to the gateway works, at the minimum version too; a client
    limited below the minimum (or above the maximum) fails the handshake."""
    off = d.policies.tls_offload
    if off is None:
        return None
    key = _key(i, "policies.tls_offload")
    addr = ctx.address(d)
    heads = [
        Head(
            d.name,
            "tls_offload",
            f"HTTPS to the gateway's 443 (Secret {off.certificate})",
            "an HTTP answer over TLS",
            f"{key}.certificate",
        )
    ]
    cases: list[tuple[str, list[str], bool]] = []  # (tag, curl TLS options, should work)
    if off.min_version is not None:
        v = expect.curl_tls(off.min_version)
        cases.append(("tls-min", [f"--tlsv{v}", "--tls-max", v], True))
        heads.append(
            Head(
                d.name,
                "tls_offload",
                f"client at {off.min_version} (the minimum)",
                "an HTTP answer over TLS",
                f"{key}.min_version",
            )
        )
        low = expect.below(off.min_version)
        if low is not None:
            # OpenSSL 3 may refuse TLS < 1.2 on the client side too; either way no answer.
            cases.append(("tls-low", ["--tlsv1.0", "--tls-max", expect.curl_tls(low)], False))
            heads.append(
                Head(
                    d.name,
                    "tls_offload",
                    f"client limited to {low} (below the minimum)",
                    "the handshake fails",
                    f"{key}.min_version",
                )
            )
    if off.max_version is not None and (high := expect.above(off.max_version)) is not None:
        cases.append(("tls-high", [f"--tlsv{expect.curl_tls(high)}"], False))
        heads.append(
            Head(
                d.name,
                "tls_offload",
                f"client requiring {high} (above the maximum)",
                "the handshake fails",
                f"{key}.max_version",
            )
        )
    reqs = tuple(request(d, addr, tag, extra=["-o", "/dev/null", *opts]) for tag, opts, _ in cases)
    fix = (
        f"check the Ingress spec.tls (Secret {off.certificate}) and the tls-min/max-protocol-"
        "version annotations; curl exit 60 means the pod does not trust the certificate"
    )

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        t, _, _ = main_transfer(out)
        rows = [
            heads[0].judged(
                expect.judge_handshake(
                    t.status if t else None, t.error if t else "", should_work=True
                ),
                out.pod,
                fix,
            )
        ]
        for head, (tag, _, works) in zip(heads[1:], cases, strict=True):
            found = transfers(out, tag)
            got = found[0] if found else None
            v = expect.judge_handshake(
                got.status if got else None, got.error if got else "", should_work=works
            )
            rows.append(head.judged(v, out.pod, fix))
        return rows

    return Part(tuple(heads), judge, reqs, "HTTPS to the gateway, TLS versions")


# ---- headers ---------------------------------------------------------------------------------


def _header_heads(
    d: Destination, i: int, policy: str, control: HeaderControl, where: str
) -> list[Head]:
    key = _key(i, f"policies.{policy}")
    sent = sent_headers(d) if policy == "request_headers" else {}
    out = []
    for name, value in control.add.items():
        before = sent.get(name.lower())
        want = f"{name}: {before}, {value}" if before else f"{name}: {value}"
        out.append(Head(d.name, policy, f"{where}: add {name}", want, f"{key}.add"))
    for name, value in control.update.items():
        out.append(
            Head(d.name, policy, f"{where}: update {name}", f"{name}: {value}", f"{key}.update")
        )
    for name in control.remove:
        out.append(Head(d.name, policy, f"{where}: remove {name}", f"no {name}", f"{key}.remove"))
    return out


HEADER_FIX = "compare the Ingress's request/response-header-control-* annotations with 07's plan"


def headers_part(ctx: Context, i: int, d: Destination) -> Part | None:
    """Request headers as the origin echoes them; response headers as curl printed them;
    the Host the origin saw when upstream_vhost is set."""
    req, resp, vhost = d.policies.request_headers, d.policies.response_headers, d.upstream_vhost
    if req is None and resp is None and vhost is None:
        return None
    req_heads = _header_heads(d, i, "request_headers", req, "request") if req else []
    resp_heads = _header_heads(d, i, "response_headers", resp, "response") if resp else []
    vhost_head = (
        Head(
            d.name,
            "upstream_vhost",
            "Host header at the destination",
            f"host: {vhost}",
            _key(i, "upstream_vhost"),
        )
        if vhost
        else None
    )
    heads = [*req_heads, *resp_heads, *([vhost_head] if vhost_head else [])]

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        t, response, body = main_transfer(out)
        echo = expect.echo_of(body)
        echoed = echo.get("headers") if echo else None
        seen = expect.lower_keys(echoed) if isinstance(echoed, dict) else None
        rows: list[CheckRow] = []
        if req is not None:
            rows += _judged_headers(req_heads, seen, req, sent_headers(d), out.pod, t)
        if resp is not None:
            got = response if t is not None and t.status is not None else None
            rows += _judged_headers(resp_heads, got, resp, {}, out.pod, t)
        if vhost_head is not None:
            if seen is None:
                rows.append(
                    vhost_head.row(_no_echo(t), "skipped" if _answered(t) else "fail", out.pod)
                )
            else:
                host = seen.get("host")
                v = Verdict(host == vhost, f"host: {host}" if host else "no host")
                rows.append(vhost_head.judged(v, out.pod, HEADER_FIX))
        return rows

    return Part(tuple(heads), judge, summary="header control")


def _answered(t: Transfer | None) -> bool:
    return t is not None and t.status is not None and t.status < 400


def _no_echo(t: Transfer | None) -> str:
    if t is None or t.status is None:
        return "no HTTP answer"
    return f"HTTP {t.status}: the answer does not echo the request headers"


def _judged_headers(
    heads: Sequence[Head],
    seen: dict[str, str] | None,
    control: HeaderControl,
    sent: dict[str, str],
    pod: str,
    t: Transfer | None,
) -> list[CheckRow]:
    if seen is None:
        # Only an echoing origin shows what arrived: skipped, unless there was no answer.
        outcome: Outcome = "skipped" if _answered(t) else "fail"
        return [h.row(_no_echo(t), outcome, pod) for h in heads]
    judged = expect.judge_headers(seen, control, sent)
    return [h.judged(v, pod, HEADER_FIX) for h, (_, _, v) in zip(heads, judged, strict=True)]


# ---- load balancing --------------------------------------------------------------------------


def _upstream(a: expect.Answer) -> str | None:
    echo = expect.echo_of(a.body)
    host = echo.get("upstream_host") if echo else None
    return str(host) if host else None


def lb_part(ctx: Context, i: int, d: Destination, budget: int | None) -> Part | None:
    """N requests: all answered; the split by endpoint when the answers name it."""
    lb = d.policies.load_balancing
    if lb is None:
        return None
    n = LB_REQUESTS if budget is None else max(2, min(LB_REQUESTS, budget))
    weights = expect.endpoint_weights(d.host, lb)
    shares = ", ".join(f"{h} {w}%" for h, w in weights.items())
    head = Head(
        d.name,
        "load_balancing",
        f"{n} requests ({lb.algorithm or 'round_robin'})",
        f"all answered; split about {shares}",
        _key(i, "policies.load_balancing"),
    )
    req = request(d, ctx.address(d), "lb", repeat=n)

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        got = answers(out, "lb")
        v = expect.judge_split(got, [_upstream(a) for a in got], weights)
        fix = (
            "compare the Ingress's destination annotation and the endpoints' ExternalName "
            "Services with 07's plan"
        )
        return [head.judged(v, out.pod, fix)]

    return Part((head,), judge, (req,), f"{n} requests for the split")


# ---- timeout ---------------------------------------------------------------------------------


def routes_any_path(d: Destination) -> bool:
    """Whether the destination's rule matches /delay/<s> (a Prefix rule for /)."""
    return d.path == "/" and d.path_type != "Exact"


def timeout_part(ctx: Context, i: int, d: Destination) -> Part | None:
    """A plain request answers; /delay/<timeout + 2> gets 504 before the origin answers."""
    t = d.policies.timeout_seconds
    if t is None:
        return None
    key = _key(i, "policies.timeout_seconds")
    delay = t + DELAY_MARGIN
    pos = Head(d.name, "timeout_seconds", "a plain request", f"answered within {t} s", key)
    neg = Head(
        d.name,
        "timeout_seconds",
        f"GET /delay/{delay} (the origin answers after {delay} s)",
        f"504 upstream request timeout after about {t} s",
        key,
    )
    reason = ""
    if not ctx.sandbox:
        reason = "not exercised: it needs an origin that delays on request (the sandbox's /delay)"
    elif not routes_any_path(d):
        reason = f"not exercised: the route matches only {d.path}, not /delay/<s>"
    elif delay > ORIGIN_MAX_DELAY:
        reason = f"not exercised: the origin delays at most {ORIGIN_MAX_DELAY} s"
    reqs = (
        ()
        if reason
        else (request(d, ctx.address(d), "slow", path=f"/delay/{delay}", max_time=delay + 10),)
    )

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        m, _, _ = main_transfer(out)
        if m is None or m.status is None:
            rows = [pos.row("no HTTP answer", "fail", out.pod)]
        else:
            ok = m.status < 400 and m.seconds < t
            shown = f"HTTP {m.status} after {m.seconds:.2f} s"
            rows = [pos.judged(Verdict(ok, shown), out.pod)]
        if reason:
            return [*rows, neg.row(reason, "skipped")]
        slow = answers(out, "slow")
        v = expect.judge_timeout(slow[0] if slow else None, t, delay)
        return [
            *rows,
            neg.judged(v, out.pod, "compare the Ingress's mse timeout annotation with 07's plan"),
        ]

    return Part((pos, neg), judge, reqs, "a request slower than the timeout")
