"""Step 07's expectation logic on canned answers: IP precedence, throttle counts, the split,
mirroring, headers, TLS, timeouts; and the probes built for parameters/sandbox-policies.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from egress_lib import load_parameters, steps
from egress_lib.errors import StepFailed
from egress_lib.plan import RUN_DIR_ENV
from egress_lib.pod_probe import ProbeOutput, write_out
from egress_lib.policies import HeaderControl, IpAccess, LoadBalancing, RateLimit
from egress_lib.steps import policy_expect as expect
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.policy_checks import build, ip_coverage
from egress_lib.steps.policy_expect import Answer
from egress_lib.steps.policy_probes import Context, curl_args
from egress_lib.steps.policy_results import CheckRow, PolicyResult

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "parameters" / "sandbox-policies.yaml"
POD, NODE = "127.244.0.9", "127.40.1.3"


def trailer(tag: str, code: int, seconds: float = 0.01, error: str = "") -> str:
    """The line curl prints for ``-w write_out(tag)``, as it would print it."""
    values = {
        "http_code": f"{code:03d}",
        "time_total": f"{seconds:.6f}",
        "time_connect": "0.000100",
        "remote_ip": "127.40.2.10",
        "exitcode": "0" if code else "35",
        "errormsg": error,
    }
    text = write_out(tag).replace("\\n", "\n")
    return re.sub(r"%\{(\w+)\}", lambda m: values[m.group(1)], text)


def output(log: str, pod_ip: str = POD, name: str = "egress-policy-abc123-x") -> ProbeOutput:
    return ProbeOutput(name, 0, log, pod_ip, "127.40.1.3", "Succeeded")


def echo(**fields: object) -> str:
    return json.dumps({"source_ip": "203.0.113.10", **fields})


@pytest.fixture(scope="module")
def params():  # type: ignore[no-untyped-def]
    return load_parameters(POLICIES)


def context(params, sandbox: bool = True) -> Context:  # type: ignore[no-untyped-def]
    addr = {d.ingress: ClbAddress(d.ingress, "127.40.2.10") for d in params.destinations}
    return Context(params, addr, sandbox, "abc123")


# ---- IP lists ---------------------------------------------------------------------------------


def test_the_gateway_deny_list_beats_a_route_allow_list() -> None:
    v = expect.ip_verdict(
        "192.0.2.7", IpAccess(deny=["192.0.2.0/24"]), IpAccess(allow=["192.0.2.0/24"]), None
    )
    assert not v.allowed and v.level == "gateway" and "192.0.2.0/24" in v.reason


def test_a_gateway_allow_list_refuses_what_it_does_not_name() -> None:
    v = expect.ip_verdict("10.0.0.1", IpAccess(allow=["192.168.0.0/16"]), None, None)
    assert not v.allowed and v.level == "gateway" and "not in the gateway allow list" in v.reason


def test_route_lists_win_and_the_domain_lists_are_then_not_consulted() -> None:
    route = IpAccess(allow=["127.244.0.0/16"])
    domain = IpAccess(deny=["127.0.0.0/8"])
    v = expect.ip_verdict(POD, None, route, domain)
    assert v.allowed and v.level == "route"
    # A route list that only denies other sources still decides: the domain deny is not used.
    v = expect.ip_verdict(POD, None, IpAccess(deny=["10.0.0.0/8"]), domain)
    assert v.allowed and v.level == "route"


def test_without_route_lists_the_domain_lists_decide() -> None:
    v = expect.ip_verdict(NODE, None, None, IpAccess(deny=["127.0.0.0/10"]))
    assert not v.allowed and v.level == "domain"
    assert expect.ip_verdict(POD, None, None, IpAccess(deny=["127.0.0.0/10"])).allowed


def test_within_a_level_deny_beats_allow() -> None:
    v = expect.ip_verdict(POD, None, IpAccess(allow=["127.0.0.0/8"], deny=[POD]), None)
    assert not v.allowed and v.level == "route" and "deny" in v.reason


def test_a_source_in_no_list_passes() -> None:
    v = expect.ip_verdict(POD, IpAccess(deny=["192.0.2.0/24"]), None, None)
    assert v.allowed and v.level == "" and "no list" in v.reason


def test_judge_ip_wants_403_exactly_when_denied() -> None:
    denied = expect.ip_verdict(NODE, None, IpAccess(allow=["127.244.0.0/16"]), None)
    allowed = expect.ip_verdict(POD, None, IpAccess(allow=["127.244.0.0/16"]), None)
    assert expect.judge_ip(denied, 403, "RBAC: access denied").ok
    assert not expect.judge_ip(denied, 200, "").ok
    assert expect.judge_ip(allowed, 429, "").ok  # throttled, but through the lists
    assert not expect.judge_ip(allowed, 403, "").ok
    assert not expect.judge_ip(allowed, None, "").ok


# ---- throttling -------------------------------------------------------------------------------


def test_burst_is_the_limit_times_the_multiplier_default_five() -> None:
    assert expect.burst(RateLimit(rps=5, burst_multiplier=2)) == 10
    assert expect.burst(RateLimit(rps=3)) == 15
    assert expect.burst(RateLimit(rpm=60)) == 300
    assert expect.per_second(RateLimit(rpm=60)) == 1.0
    # The burst, two fills (one may fall inside the run, or two in a slow one) and five more.
    assert expect.throttle_requests(RateLimit(rps=5, burst_multiplier=2)) == 25
    assert expect.throttle_requests(RateLimit(rpm=20, burst_multiplier=1)) == 45
    assert expect.throttle_requests(RateLimit(rpm=60)) is None  # 365 > 200: not shown
    assert expect.max_passes(RateLimit(rps=5, burst_multiplier=2), 0.8) == 15
    assert expect.max_passes(RateLimit(rps=5, burst_multiplier=2), 1.2) == 20


def _limited(n: int) -> list[Answer]:
    return [Answer(429, "local_rate_limited", 0.001)] * n


def test_the_burst_then_429_local_rate_limited_passes() -> None:
    rl = RateLimit(rps=5, burst_multiplier=2)
    answers = [Answer(200, "{}", 0.002)] * 10 + _limited(15)
    v = expect.judge_throttle(answers, rl)
    assert v.ok, v.observed
    assert v.observed.startswith("10 passed, then 15 x 429 local_rate_limited")
    # A fill during the run lets the limit's tokens more through.
    assert expect.judge_throttle([Answer(200, "{}", 0.03)] * 15 + _limited(10), rl).ok


def test_throttle_failures() -> None:
    rl = RateLimit(rps=5, burst_multiplier=2)
    ok200 = Answer(200, "{}", 0.002)
    assert not expect.judge_throttle([ok200] * 25, rl).ok  # never throttled
    assert not expect.judge_throttle([ok200] * 10 + [Answer(429, "slow down")] * 15, rl).ok
    assert not expect.judge_throttle(_limited(25), rl).ok  # throttled from the first
    assert not expect.judge_throttle([ok200] * 16 + _limited(9), rl).ok  # more than allowed
    assert not expect.judge_throttle([ok200] * 10 + [Answer(None)] * 15, rl).ok


def test_refill_during_a_slow_run_allows_more_passes() -> None:
    rl = RateLimit(rps=5, burst_multiplier=2)
    slow = [Answer(200, "{}", 0.2)] * 20 + _limited(5)  # 4 s: up to 10 + 5 x 5 may pass
    assert expect.judge_throttle(slow, rl).ok


def test_under_the_limit() -> None:
    assert expect.judge_under_limit(Answer(200)).ok
    assert not expect.judge_under_limit(Answer(429)).ok
    assert not expect.judge_under_limit(None).ok


# ---- load balancing ---------------------------------------------------------------------------

WEIGHTS = {"api.maps.example": 50, "api.maps-backup.example": 50}


def test_split_counts() -> None:
    answers = [Answer(200)] * 20
    hosts = ["api.maps.example"] * 9 + ["api.maps-backup.example"] * 11
    v = expect.judge_split(answers, hosts, WEIGHTS)
    assert v.ok and v.observed == "20/20 answered; api.maps.example 9, api.maps-backup.example 11"
    assert not expect.judge_split(answers, ["api.maps.example"] * 20, WEIGHTS).ok
    zero = {"api.maps.example": 100, "api.maps-backup.example": 0}
    assert not expect.judge_split(answers, hosts, zero).ok  # a weight-0 endpoint served
    assert expect.judge_split(answers, ["api.maps.example"] * 20, zero).ok
    assert not expect.judge_split([Answer(200)] * 19 + [Answer(503)], hosts, WEIGHTS).ok


def test_a_small_share_need_not_show_in_few_requests() -> None:
    weights = {"a.example": 90, "b.example": 10}  # 2 of 20 expected: may be 0
    assert expect.judge_split([Answer(200)] * 20, ["a.example"] * 20, weights).ok


def test_split_without_endpoint_names_only_counts_answers() -> None:
    v = expect.judge_split([Answer(200)] * 20, [None] * 20, WEIGHTS)
    assert v.ok and "do not name the endpoint" in v.observed


def test_endpoint_weights_put_the_destinations_own_host_first() -> None:
    lb = LoadBalancing(
        weight=70,
        endpoints=[{"name": "b", "host": "b.example", "weight": 30}],  # type: ignore[list-item]
    )
    assert expect.endpoint_weights("a.example", lb) == {"a.example": 70, "b.example": 30}


def test_failover_wants_answers_from_the_live_endpoints_and_retries_for_the_rest() -> None:
    down = "api.maps-backup.example"
    live = ["api.maps.example"] * 10
    assert expect.judge_failover([Answer(200)] * 10, live, down).ok  # true failover
    retried = Answer(503, "upstream connect error ... retried and the latest reset reason")
    v = expect.judge_failover([Answer(200)] * 4 + [retried] * 6, live[:4] + [None] * 6, down)
    assert v.ok and v.observed.endswith("6 x 503 after retrying"), v.observed
    # A 503 without retries, an answer from the down host, or nothing answered: fail.
    assert not expect.judge_failover(
        [Answer(200)] * 9 + [Answer(503, "no healthy upstream")], live, down
    ).ok
    assert not expect.judge_failover([Answer(200)] * 10, [down] * 10, down).ok
    assert not expect.judge_failover([retried] * 10, [None] * 10, down).ok


# ---- timeouts, mirroring, headers, TLS ----------------------------------------------------------


def test_timeout_wants_504_before_the_origins_delay() -> None:
    assert expect.judge_timeout(Answer(504, "upstream request timeout", 5.01), 5, 7).ok
    assert not expect.judge_timeout(Answer(200, "{}", 7.0), 5, 7).ok
    assert not expect.judge_timeout(Answer(504, "", 7.5), 5, 7).ok
    assert not expect.judge_timeout(None, 5, 7).ok


def test_mirror_copies_are_counted_by_marker_with_the_shadow_host() -> None:
    lines = [
        json.dumps({"path": "/?egress-probe=m1-0", "headers": {"host": "api.x.example-shadow"}}),
        json.dumps({"path": "/?egress-probe=m1-0", "headers": {"host": "api.x.example-shadow"}}),
        json.dumps({"path": "/?egress-probe=other", "headers": {"host": "api.x.example-shadow"}}),
        "not json",
    ]
    assert expect.mirror_copies(lines, "m1-0") == (2, True)
    plain = [json.dumps({"path": "/?egress-probe=m1-0", "headers": {"host": "api.x.example"}})]
    assert expect.mirror_copies(plain, "m1-0") == (1, False)
    assert expect.judge_mirror(4, 4, 100, True).ok
    assert not expect.judge_mirror(3, 4, 100, True).ok
    assert not expect.judge_mirror(4, 4, None, False).ok  # no -shadow
    assert expect.judge_mirror(0, 4, 0, True).ok
    assert not expect.judge_mirror(1, 4, 0, True).ok
    assert expect.judge_mirror(4, 10, 50, True).ok
    assert not expect.judge_mirror(0, 10, 50, True).ok


def test_header_control_add_update_remove() -> None:
    control = HeaderControl(
        add={"X-Team": "pay"}, update={"X-Env": "prod"}, remove=["X-Forwarded-For"]
    )
    seen = {"x-team": "mine, pay", "x-env": "prod"}
    judged = expect.judge_headers(seen, control, {"x-env": "egress-probe"})
    assert [(c, v.ok) for c, _, v in judged] == [
        ("add X-Team", True),
        ("update X-Env", True),
        ("remove X-Forwarded-For", True),
    ]
    bad = expect.judge_headers(
        {"x-env": "egress-probe", "x-forwarded-for": "127.244.0.9"}, control, {}
    )
    assert [v.ok for _, _, v in bad] == [False, False, False]
    assert bad[2][2].observed == "X-Forwarded-For: 127.244.0.9"


def test_split_head_reads_curl_dump_headers() -> None:
    text = (
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nServer: istio-envoy\r\n\r\n"
        '{"a": 1}'
    )
    status, headers, body = expect.split_head(text)
    assert status == 200 and headers == {"x-a": "1, 2", "server": "istio-envoy"}
    assert expect.echo_of(body) == {"a": 1}
    assert expect.echo_of("RBAC: access denied") is None


def test_origination_checks_the_echo_or_skips_without_one() -> None:
    good = {"tls": True, "sni": "api.p.example", "client_certificate": "egress-gateway"}
    assert expect.judge_origination(good, 200, "api.p.example", True).outcome == "pass"
    no_sni = {**good, "sni": None}
    assert expect.judge_origination(no_sni, 200, "api.p.example", True).outcome == "fail"
    no_cert = {**good, "client_certificate": None}
    assert expect.judge_origination(no_cert, 200, "api.p.example", True).outcome == "fail"
    assert expect.judge_origination(None, 503, "api.p.example", True).outcome == "fail"
    assert expect.judge_origination(None, 200, "api.p.example", True).outcome == "skipped"


def test_tls_versions_around_a_bound() -> None:
    assert expect.below("TLSv1.2") == "TLSv1.1" and expect.below("TLSv1.0") is None
    assert expect.above("TLSv1.2") == "TLSv1.3" and expect.above("TLSv1.3") is None
    assert expect.curl_tls("TLSv1.2") == "1.2"
    assert expect.judge_handshake(None, "SSL routines::unsupported protocol", should_work=False).ok
    assert not expect.judge_handshake(200, "", should_work=False).ok


# ---- the probes for parameters/sandbox-policies.yaml ---------------------------------------------


def test_the_probes_of_the_sandbox_policies_file(params) -> None:  # type: ignore[no-untyped-def]
    probes, static = build(context(params))
    assert [(p.key, p.phase, p.host_network, p.outage) for p in probes] == [
        ("ip-pod", 1, False, None),
        ("ip-node", 1, True, None),
        ("payments", 1, False, None),
        ("payments-rate", 2, False, None),
        ("maps", 1, False, None),
        ("maps-failover", 2, False, "api.maps-backup.example"),
        ("packages", 1, False, None),
    ]
    assert static == []
    rate = next(p for p in probes if p.key == "payments-rate")
    args = curl_args(rate.requests)
    # One curl, one connection: the burst (5 x 2), two fills and five more, over HTTPS.
    assert args.count("https://api.payments.example/") == 25
    assert "api.payments.example:443:127.40.2.10:443" in args
    maps = next(p for p in probes if p.key == "maps")
    args = curl_args(maps.requests)
    assert (
        args.count("http://api.maps.example/") == 21 and "http://api.maps.example/delay/7" in args
    )
    assert "x-forwarded-for: egress-probe" in args  # sent, so that its removal shows


def test_on_a_real_cluster_sandbox_only_checks_are_skipped_rows(params) -> None:  # type: ignore[no-untyped-def]
    probes, static = build(context(params, sandbox=False))
    assert "maps-failover" not in [p.key for p in probes]
    (row,) = static
    assert row.outcome == "skipped" and "real cluster" in row.observed
    maps = next(p for p in probes if p.key == "maps")
    assert "http://api.maps.example/delay/7" not in curl_args(maps.requests)


def test_the_ip_probes_judge_from_the_pods_address(params) -> None:  # type: ignore[no-untyped-def]
    probes, _ = build(context(params))
    pod, node = probes[0], probes[1]
    allowed = echo(tls=True) + trailer("ip-0", 200) + echo() + trailer("ip-1", 200)
    allowed += echo() + trailer("ip-2", 200)
    rows = pod.judge(None, output(allowed, POD))  # type: ignore[arg-type]
    assert [(r.destination, r.policy, r.outcome) for r in rows] == [
        ("payments", "source_ips", "pass"),
        ("maps", "ip_access_control", "pass"),
        ("packages", "domain_source_ips", "pass"),
    ]
    assert rows[0].check == f"allowed source: a pod ({POD})"
    # The node: outside payments' allow list, inside packages' deny list; maps lets it by.
    denied = "RBAC: access denied" + trailer("ip-0", 403) + echo() + trailer("ip-1", 200)
    denied += "RBAC: access denied" + trailer("ip-2", 403)
    rows = node.judge(None, output(denied, NODE))  # type: ignore[arg-type]
    assert [(r.check.split(":")[0], r.outcome) for r in rows] == [
        ("denied source", "pass"),
        ("allowed source", "pass"),
        ("denied source", "pass"),
    ]
    # The gateway answering what the lists forbid fails the row, naming the key.
    wrong = (
        echo()
        + trailer("ip-0", 200)
        + echo()
        + trailer("ip-1", 200)
        + echo()
        + trailer("ip-2", 200)
    )
    rows = node.judge(None, output(wrong, NODE))  # type: ignore[arg-type]
    assert rows[0].outcome == "fail" and rows[0].parameter == "destinations[0].policies.source_ips"


def test_ip_coverage_names_what_no_probe_could_show(params) -> None:  # type: ignore[no-untyped-def]
    def row(dest: str, policy: str, check: str, key: str) -> CheckRow:
        return CheckRow(dest, policy, check, "", "", "pass", key)

    rows = [
        row(
            "payments", "source_ips", "allowed source: a pod", "destinations[0].policies.source_ips"
        ),
        row(
            "payments", "source_ips", "denied source: a node", "destinations[0].policies.source_ips"
        ),
        row("maps", "ip_access_control", "allowed source: a pod", "gateway.ip_access_control"),
        row(
            "packages",
            "domain_source_ips",
            "allowed source: a pod",
            "destinations[2].policies.domain_source_ips",
        ),
        row(
            "packages",
            "domain_source_ips",
            "denied source: a node",
            "destinations[2].policies.domain_source_ips",
        ),
    ]
    (extra,) = ip_coverage(context(params), rows)
    assert (extra.destination, extra.policy, extra.check, extra.outcome) == (
        "(gateway)",
        "ip_access_control",
        "denied source",
        "skipped",
    )


def test_the_throttle_probe_rows(params) -> None:  # type: ignore[no-untyped-def]
    probes, _ = build(context(params))
    rate = next(p for p in probes if p.key == "payments-rate")
    log = "".join(echo() + trailer("rate", 200, 0.003) for _ in range(10))
    log += "".join("local_rate_limited" + trailer("rate", 429, 0.001) for _ in range(15))
    pos, neg = rate.judge(None, output(log))  # type: ignore[arg-type]
    assert pos.outcome == "pass" and neg.outcome == "pass", neg.observed
    log = "".join(echo() + trailer("rate", 200, 0.003) for _ in range(25))
    _, neg = rate.judge(None, output(log))  # type: ignore[arg-type]
    assert neg.outcome == "fail" and neg.parameter == "destinations[0].policies.rate_limit"


# ---- results ----------------------------------------------------------------------------------


def test_results_table_records_file_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        CheckRow(
            "payments",
            "sni",
            "TLS",
            "tls true",
            "HTTP 503",
            "fail",
            "destinations[0].sni",
            "p",
            "check sni",
        ),
        CheckRow("maps", "retries", "failover", "answered", "not exercised", "skipped", "k"),
        CheckRow("maps", "timeout_seconds", "slow", "504", "HTTP 504", "pass", "t"),
    ]
    result = PolicyResult(rows)
    assert not result.ok and result.counts() == {"pass": 1, "fail": 1, "skipped": 1}
    table = result.to_table()
    assert table.columns[0] == "Result" and table.columns[-1] == "Fix"
    assert [str(r[0]) for r in table.rows] == ["✗ error", "○ skipped", "✓"]
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    path = result.save()
    assert path and json.loads(Path(path).read_text())[0]["parameter"] == "destinations[0].sni"
    with pytest.raises(StepFailed) as err:
        result.raise_for_failures()
    assert "destinations[0].sni" in err.value.remedy and "Check sni." in err.value.remedy
    assert "1 policy check(s) failed" in str(err.value)


def test_no_policy_says_so() -> None:
    assert "no policy declared" in str(PolicyResult(ran=False, declared=False))
    assert "not run" in str(PolicyResult(ran=False))


def test_step_07_runs_only_when_a_policy_is_declared(params) -> None:  # type: ignore[no-untyped-def]
    plain = load_parameters(REPO / "parameters" / "sandbox.yaml")
    assert steps.applicable(plain, steps.FULL) == steps.RUNBOOK
    assert steps.applicable(params, steps.FULL)[-1] is steps.POLICIES
    assert steps.find("07") is steps.POLICIES and steps.find("egress_policies") is steps.POLICIES


def test_curl_messages_interleaved_with_the_body_do_not_hide_the_echo() -> None:
    # stderr (curl's messages) and stdout share the pod's log, in no fixed order.
    body = '{"tls": true, "sni": "a.example"}\ncurl: (35) OpenSSL: tlsv1 alert protocol version'
    assert expect.echo_of(body) == {"tls": True, "sni": "a.example"}
    text = "curl: (35) error\nHTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n{}"
    assert expect.split_head(text)[:2] == (200, {"x-a": "1"})


def test_the_cli_selects_07_after_06_and_by_name() -> None:
    import argparse

    from egress_lib.cli import _steps

    def chosen(**kw: object) -> list[str]:
        args = argparse.Namespace(**{"command": "run", "from_step": None, "steps": None, **kw})
        return [s.name for s in _steps(args)]

    assert chosen()[-2:] == ["06-verify", "07-egress-policies"]
    assert chosen(from_step="06") == ["06-verify", "07-egress-policies"]
    assert chosen(steps="07") == ["07-egress-policies"]
