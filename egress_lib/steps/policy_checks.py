"""Which probes step 07 runs for the declared policies, and the rows no pod can give.

- IP lists: a pod and a hostNetwork pod each call every destination the lists cover; the
  expected answer (403 or not) follows from the pod's address and the precedence.
- Per destination, one main probe (TLS, offload, headers, load balancing, mirror, timeout:
  :mod:`egress_lib.steps.policy_parts`), then in phase 2 the throttle probe and, on the
  sandbox, the failover probe (one endpoint taken down).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from egress_lib.pod_probe import ProbeOutput
from egress_lib.policy_annotations import GATEWAY_ROW
from egress_lib.steps import policy_expect as expect
from egress_lib.steps.policy_mirror import mirror_part
from egress_lib.steps.policy_parts import (
    MAIN,
    Part,
    headers_part,
    lb_part,
    main_request,
    main_transfer,
    offload_part,
    origination_part,
    timeout_part,
)
from egress_lib.steps.policy_probes import Context, Head, Probe, answers, request
from egress_lib.steps.policy_results import CheckRow

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.parameters import Destination
    from egress_lib.policies import IpAccess

FAILOVER_REQUESTS = 10
IP_FIX = (
    "the gateway's IP lists differ from the parameters: compare the Ingress annotations and "
    "the MseIngressConfig's spec.global.ipAccessControl with 07's plan"
)
GATEWAY_KEY = "gateway.ip_access_control"
_LEVEL_POLICY = {
    "gateway": "ip_access_control",
    "route": "source_ips",
    "domain": "domain_source_ips",
}


def _has(ips: IpAccess | None) -> bool:
    return ips is not None and bool(ips.allow or ips.deny)


def ip_levels(ctx: Context, i: int, d: Destination) -> list[tuple[str, str]]:
    """(policy, key) of each IP list level that applies to ``d``, gateway first."""
    out = []
    if _has(ctx.params.gateway.ip_access_control):
        out.append(("ip_access_control", GATEWAY_KEY))
    if _has(d.policies.source_ips):
        out.append(("source_ips", f"destinations[{i}].policies.source_ips"))
    if _has(d.policies.domain_source_ips):
        out.append(("domain_source_ips", f"destinations[{i}].policies.domain_source_ips"))
    return out


def verdict_for(ctx: Context, d: Destination, source: str) -> expect.IpVerdict:
    """What the gateway should do with ``source`` calling ``d``."""
    pol = d.policies
    return expect.ip_verdict(
        source, ctx.params.gateway.ip_access_control, pol.source_ips, pol.domain_source_ips
    )


def ip_probe(ctx: Context, host_network: bool) -> Probe | None:
    """One pod calling every destination some IP list covers."""
    who = "hostNetwork pod" if host_network else "pod"
    covered = [(i, d) for i, d in enumerate(ctx.params.destinations) if ip_levels(ctx, i, d)]
    if not covered:
        return None
    heads = tuple(
        Head(
            d.name,
            ip_levels(ctx, i, d)[-1][0],
            f"source: a {who}",
            "403 or an answer, from the pod's address and the lists",
            ip_levels(ctx, i, d)[-1][1],
        )
        for i, d in covered
    )
    reqs = tuple(request(d, ctx.address(d), f"ip-{i}") for i, d in covered)

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        rows = []
        for head, (i, d) in zip(heads, covered, strict=True):
            if not out.pod_ip:
                rows.append(head.row("the pod reported no address", "fail", out.pod))
                continue
            verdict = verdict_for(ctx, d, out.pod_ip)
            levels = dict(ip_levels(ctx, i, d))
            policy = _LEVEL_POLICY.get(verdict.level) or next(iter(levels))
            key = levels.get(policy, head.parameter)
            got = answers(out, f"ip-{i}")
            a = got[0] if got else expect.Answer(None)
            v = expect.judge_ip(verdict, a.status, a.body)
            node = out.host_ip
            if not v.ok and node and node != out.pod_ip:
                # The gateway sees the pod's address only if the CNI keeps it (the sandbox,
                # Terway); a CNI that masquerades pod traffic to the VPC shows the node's.
                as_node = expect.judge_ip(verdict_for(ctx, d, node), a.status, a.body)
                if as_node.ok:
                    v = expect.Verdict(
                        False,
                        f"{v.observed}; it fits the node's address {node}: if the CNI "
                        "masquerades pod traffic to the VPC, that is what the gateway sees",
                    )
            allowed = "allowed" if verdict.allowed else "denied"
            want = (
                f"an answer, not 403: {verdict.reason}"
                if verdict.allowed
                else f"403 {expect.DENIED_BODY}: {verdict.reason}"
            )
            row = Head(d.name, policy, f"{allowed} source: a {who} ({out.pod_ip})", want, key)
            rows.append(row.judged(v, out.pod, IP_FIX))
        return rows

    return Probe(
        "ip-node" if host_network else "ip-pod",
        f"a {who} calls {len(covered)} destination(s) covered by IP lists",
        reqs,
        heads,
        judge,
        host_network=host_network,
    )


def ip_coverage(ctx: Context, rows: Sequence[CheckRow]) -> list[CheckRow]:
    """A skipped row for each declared list level no probe was refused by (or let through):
    the negative (or positive) it could not show from the cluster's pods."""
    out = []
    levels: dict[str, tuple[str, str]] = {}
    for i, d in enumerate(ctx.params.destinations):
        for policy, key in ip_levels(ctx, i, d):
            dest = GATEWAY_ROW if key == GATEWAY_KEY else d.name
            levels.setdefault(key, (dest, policy))
    ran = [r for r in rows if r.check.startswith(("allowed source", "denied source"))]
    if not ran:
        return []
    for key, (dest, policy) in levels.items():
        mine = [r for r in ran if r.parameter == key]
        for kind, want in (
            ("denied", "403 for a source the lists refuse"),
            ("allowed", "an answer for a source the lists let through"),
        ):
            if not any(r.check.startswith(kind) for r in mine):
                out.append(
                    CheckRow(
                        dest,
                        policy,
                        f"{kind} source",
                        want,
                        f"not exercised: no probe pod's address is {kind} by these lists",
                        "skipped",
                        key,
                    )
                )
    return out


def throttle_probe(ctx: Context, i: int, d: Destination) -> Probe | None:
    """Phase 2: one connection (one gateway replica), the burst and a few more requests."""
    rl = d.policies.rate_limit
    if rl is None:
        return None
    key = f"destinations[{i}].policies.rate_limit"
    n = expect.throttle_requests(rl)
    limit = f"{rl.rps} rps" if rl.rps is not None else f"{rl.rpm} rpm"
    mult = rl.burst_multiplier or expect.DEFAULT_BURST_MULTIPLIER
    b = expect.burst(rl)
    pos = Head(d.name, "rate_limit", "1 request under the limit", "answered (not 429)", key)
    neg = Head(
        d.name,
        "rate_limit",
        f"{n or 1} requests on one connection (one replica)",
        f"the burst ({limit} x {mult} = {b} per replica) and any refill meanwhile answered, "
        f"then 429 {expect.THROTTLED_BODY}",
        key,
    )
    req = request(d, ctx.address(d), "rate", repeat=n or 1)

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        got = answers(out, "rate")
        fix = "compare the Ingress's route-limit-* annotations with 07's plan"
        rows = [pos.judged(expect.judge_under_limit(got[0] if got else None), out.pod, fix)]
        if n is None:
            most = expect.MAX_THROTTLE_REQUESTS
            why = f"not exercised: the burst ({b}) is more than a check sends ({most})"
            return [*rows, neg.row(why, "skipped")]
        return [*rows, neg.judged(expect.judge_throttle(got, rl), out.pod, fix)]

    return Probe(
        f"{d.name}-rate",
        f"{n or 1} requests to {d.host} on one connection",
        (req,),
        (pos, neg),
        judge,
        phase=2,
    )


def _failover_policy(i: int, d: Destination) -> tuple[str, str]:
    if d.policies.retries is not None:
        return "retries", f"destinations[{i}].policies.retries"
    return "load_balancing", f"destinations[{i}].policies.load_balancing"


def failover(ctx: Context, i: int, d: Destination) -> Probe | CheckRow | None:
    """Phase 2 on the sandbox: one endpoint down, every request still answered."""
    lb = d.policies.load_balancing
    if lb is None and d.policies.retries is None:
        return None
    policy, key = _failover_policy(i, d)
    weights = expect.endpoint_weights(d.host, lb) if lb else {d.host: 100}
    live = [h for h, w in weights.items() if w > 0]
    tries = d.policies.retries.tries if d.policies.retries else 3
    check = "failover with an endpoint down"
    if len(live) < 2:
        return CheckRow(
            d.name,
            policy,
            check,
            "answered by another endpoint",
            "not exercised: one endpoint only, a retry has nowhere else to go",
            "skipped",
            key,
        )
    down = live[-1]
    want = (
        f"while {down} refuses connections: answers only from the others; a request picked "
        f"for {down} answered by another endpoint, or 503 after retrying ({tries} tries)"
    )
    if not ctx.sandbox:
        why = (
            "not exercised on a real cluster: it needs an endpoint down (the sandbox takes "
            "one down on purpose)"
        )
        return CheckRow(d.name, policy, check, want, why, "skipped", key)
    head = Head(d.name, policy, f"{check} ({FAILOVER_REQUESTS} requests)", want, key)
    req = request(d, ctx.address(d), "failover", repeat=FAILOVER_REQUESTS)

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        got = answers(out, "failover")
        hosts = [_upstream_host(a) for a in got]
        v = expect.judge_failover(got, hosts, down)
        fix = "compare the Ingress's proxy-next-upstream-* annotations with 07's plan"
        return [head.judged(v, out.pod, fix)]

    return Probe(
        f"{d.name}-failover",
        f"{FAILOVER_REQUESTS} requests to {d.host} while {down} is down",
        (req,),
        (head,),
        judge,
        phase=2,
        outage=down,
    )


def _upstream_host(a: expect.Answer) -> str | None:
    echo = expect.echo_of(a.body)
    host = echo.get("upstream_host") if echo else None
    return str(host) if host else None


def main_probe(ctx: Context, i: int, d: Destination, *, again: bool = True) -> Probe | None:
    """One pod for the destination's TLS, headers, load balancing, mirror and timeout.

    On a rate-limited route whose bucket something else drained, it runs once more (with a
    fresh marker, so the mirror counts only its own copies) after the bucket has refilled.
    """
    rl = d.policies.rate_limit
    # Stay well inside the throttle's bucket, so that these checks are not throttled.
    budget = max(1, expect.burst(rl) // 2 - 1) if rl is not None else None
    parts: list[Part] = [
        p
        for p in (
            origination_part(ctx, i, d),
            offload_part(ctx, i, d),
            headers_part(ctx, i, d),
            lb_part(ctx, i, d, budget),
            mirror_part(ctx, i, d, budget),
            timeout_part(ctx, i, d),
        )
        if p is not None
    ]
    if not parts:
        return None
    reqs = (main_request(ctx, d), *(r for p in parts for r in p.requests))
    heads = tuple(h for p in parts for h in p.heads)

    def judge(session: Session, out: ProbeOutput) -> list[CheckRow]:
        t, _, _ = main_transfer(out)
        if t is not None and t.status == 403 and out.pod_ip:
            verdict = verdict_for(ctx, d, out.pod_ip)
            if not verdict.allowed:
                why = f"not exercised: the IP lists refuse the probe ({verdict.reason})"
                return [h.row(why, "skipped", out.pod) for h in heads]
        return [r for p in parts for r in p.judge(session, out)]

    what = ", ".join(p.summary for p in parts if p.summary)
    on_throttle = None
    if rl is not None and again:

        def retry() -> Probe:
            fresh = dataclasses.replace(ctx, marker=f"{ctx.marker}r")
            probe = main_probe(fresh, i, d, again=False)
            assert probe is not None  # the same parts as this one
            return probe

        on_throttle = (retry, expect.refill_seconds(rl, sum(r.repeat for r in reqs)))
    return Probe(d.name, f"{d.host}: {what}", reqs, heads, judge, on_throttle=on_throttle)


def build(ctx: Context) -> tuple[list[Probe], list[CheckRow]]:
    """The probes to run for the declared policies, and rows decided without a pod."""
    probes: list[Probe] = []
    static: list[CheckRow] = []
    for host_network in (False, True):
        if (p := ip_probe(ctx, host_network)) is not None:
            probes.append(p)
    for i, d in enumerate(ctx.params.destinations):
        if not d.policies.declared():
            continue
        if (m := main_probe(ctx, i, d)) is not None:
            probes.append(m)
        if (t := throttle_probe(ctx, i, d)) is not None:
            probes.append(t)
        f = failover(ctx, i, d)
        if isinstance(f, Probe):
            probes.append(f)
        elif f is not None:
            static.append(f)
    return probes, static


__all__ = ["MAIN", "build", "ip_coverage", "ip_probe", "main_probe", "verdict_for"]
