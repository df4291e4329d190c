"""The policy parsers and small mechanisms of the gateway data plane, without a sandbox."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from egress_sandbox.dataplane import headers, ipacl, publicnet, ratelimit, retry
from egress_sandbox.dataplane.clienthello import parse_sni
from egress_sandbox.dataplane.decide import pick
from egress_sandbox.dataplane.mirror import shadow_host
from egress_sandbox.dataplane.origin_rules import OriginHost, OriginRules
from egress_sandbox.dataplane.policy import (
    MirrorTarget,
    WeightedService,
    domain_owner_source,
    domain_owner_tls,
    gateway_source,
    parse_route,
)
from egress_sandbox.dataplane.routes import Upstream
from egress_sandbox.dataplane.upstream_tls import MissingSecret, tls_failure

Obj = dict[str, Any]
MSE, NGINX = "mse.ingress.kubernetes.io/", "nginx.ingress.kubernetes.io/"


def ing(anns: dict[str, str], name: str = "r", hosts: tuple[str, ...] = ("a.example",)) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": anns},
        "spec": {"rules": [{"host": h} for h in hosts]},
    }


# ---- IP lists ----------------------------------------------------------------------------------


def test_ip_levels_and_precedence() -> None:
    route = ipacl.rule("127.244.0.0/16", "127.244.0.8")
    domain = ipacl.rule(None, "127.244.0.0/16")
    gateway = ipacl.rule(None, ["192.0.2.0/24"])
    assert ipacl.admitted("127.244.0.7", gateway, route, domain)  # route level wins
    assert not ipacl.admitted("127.244.0.8", gateway, route, domain)  # deny beats allow
    assert not ipacl.admitted("127.244.0.7", gateway, None, domain)  # no route lists: domain's
    assert not ipacl.admitted("192.0.2.1", gateway, None, None)  # the gateway's come first
    assert not ipacl.admitted("127.0.0.1", None, route, None)  # not in the allow list
    assert ipacl.admitted("127.0.0.1", None, None, None)


def test_ip_lists_drop_malformed_entries_but_stay_allow_lists() -> None:
    only_bad = ipacl.rule("not-a-cidr,300.1.1.1", None)
    assert only_bad is not None and not only_bad.admits("127.244.0.7")
    mixed = ipacl.rule(" 127.244.0.0/16 , nope", None)
    assert mixed is not None and mixed.admits("127.244.1.1")
    assert ipacl.rule("", "") is None and ipacl.rule(None, None) is None


def test_route_and_domain_annotations_and_prefixes() -> None:
    # whitelist is NGINX-compatible (either prefix); blacklist and the domain lists are MSE's.
    p = parse_route(ing({MSE + "whitelist-source-range": "10.0.0.0/8"}))
    assert p.source is not None and p.source.admits("10.1.1.1")
    p = parse_route(ing({NGINX + "blacklist-source-range": "10.0.0.0/8"}))
    assert p.source is None
    p = parse_route(
        ing(
            {
                NGINX + "denylist-source-range": "10.0.0.1",
                MSE + "blacklist-source-range": "10.0.0.2",
            }
        )
    )
    assert p.source is not None and p.source.admits("10.0.0.2") and not p.source.admits("10.0.0.1")
    older = ing({MSE + "domain-blacklist-source-range": "10.0.0.0/8"}, "old")
    newer = ing({MSE + "domain-whitelist-source-range": "10.0.0.0/8"}, "new")
    plain = ing({}, "plain")
    found = domain_owner_source([plain, older, newer], "a.example")
    assert found is not None and not found.admits("10.1.1.1")  # the oldest one with lists
    assert domain_owner_source([older], "b.example") is None
    cfg = {"spec": {"global": {"ipAccessControl": {"whitelist": ["10.0.0.0/8"], "blacklist": []}}}}
    rule = gateway_source(cfg)
    assert rule is not None and rule.admits("10.2.3.4") and not rule.admits("11.0.0.1")
    assert gateway_source({"spec": {}}) is None


# ---- throttling ------------------------------------------------------------------------------


def test_rate_limit_translation_as_higress() -> None:
    assert ratelimit.from_annotations("5", None, None) == ratelimit.RateLimit(25, 5, 1.0)
    assert ratelimit.from_annotations("5", "120", "2") == ratelimit.RateLimit(240, 120, 60.0)
    for bad in (("0", None, None), ("-1", None, None), ("x", None, None), ("5", None, "0")):
        assert ratelimit.from_annotations(*bad) is None
    p = parse_route(ing({NGINX + "route-limit-rps": "5"}))  # MSE-exclusive: mse prefix only
    assert p.rate_limit is None


def test_token_bucket_per_replica_refills_per_interval() -> None:
    now = [100.0]
    limiter = ratelimit.RateLimiter(clock=lambda: now[0])
    limit = ratelimit.RateLimit(max_tokens=2, tokens_per_fill=1, fill_interval=1.0)
    assert [limiter.take(0, "r", limit) for _ in range(3)] == [True, True, False]
    assert limiter.take(1, "r", limit)  # another replica has its own bucket
    now[0] += 1.0
    assert limiter.take(0, "r", limit) and not limiter.take(0, "r", limit)
    now[0] += 10.0
    assert [limiter.take(0, "r", limit) for _ in range(3)] == [True, True, False]  # capped


# ---- retries, timeouts, destinations -----------------------------------------------------------


def test_retry_translation_as_higress() -> None:
    assert retry.from_annotations(None, None, None) == retry.ISTIO_DEFAULT
    p = retry.from_annotations("2", "5", "error,timeout,http_502")
    assert (p.num_retries, p.per_try_timeout) == (2, 5.0)
    assert p.retry_on == {"5xx", "retriable-status-codes"} and p.codes == {502}
    assert p.retries(retry.CONNECT, None) and p.retries(None, 500)  # error means 5xx
    only_codes = retry.from_annotations("3", None, "http_503")
    assert not only_codes.retries(retry.CONNECT, None) and only_codes.retries(None, 503)
    assert not only_codes.retries(None, 502)
    assert retry.from_annotations("3", None, "off").num_retries == 0
    assert retry.from_annotations("x", None, None).num_retries == 3  # malformed: the default
    assert retry.ISTIO_DEFAULT.retries(retry.CONNECT, None)
    assert not retry.ISTIO_DEFAULT.retries(retry.TIMEOUT, None)
    assert retry.backoff(1, 0.999) < retry.BACKOFF_MAX and retry.backoff(10, 0.999) <= 0.25


def test_timeout_and_destination_annotations() -> None:
    assert parse_route(ing({MSE + "timeout": "5"})).timeout == 5.0
    assert parse_route(ing({MSE + "timeout": "5s"})).timeout is None
    lines = "50% maps.default.svc.cluster.local:80\n50% maps-backup.default.svc.cluster.local:80"
    p = parse_route(ing({MSE + "destination": lines}))
    assert p.destinations == (
        WeightedService(50, "default", "maps", 80),
        WeightedService(50, "default", "maps-backup", 80),
    )
    for bad in (
        "50% a.default.svc.cluster.local:80\n40% b.default.svc.cluster.local:80",  # sum 90
        "x% a.default.svc.cluster.local:80",
        "100% a.default.svc.cluster.local:http",
        "100% a.default.svc.cluster.local:80\n\n",
    ):
        assert parse_route(ing({MSE + "destination": bad})).destinations is None, bad
    one = parse_route(ing({MSE + "destination": "b.ns.svc.cluster.local"})).destinations
    assert one == (WeightedService(100, "ns", "b", None),)


def test_weighted_pick() -> None:
    a, b = Upstream("external", "i", "a"), Upstream("external", "i", "b")
    clusters = ((30, a), (70, b))
    assert pick(clusters, 0.0) is a and pick(clusters, 0.29) is a
    assert pick(clusters, 0.3) is b and pick(clusters, 0.999) is b
    assert pick(((0, a), (100, b)), 0.0) is b


def test_mirror_annotations() -> None:
    p = parse_route(ing({MSE + "mirror-target-service": "egress-audit/audit:8080"}))
    assert p.mirror == MirrorTarget("egress-audit", "audit", 8080, 100.0)
    p = parse_route(ing({MSE + "mirror-target-service": "audit", MSE + "mirror-percentage": "30"}))
    assert p.mirror == MirrorTarget("default", "audit", None, 30.0)
    assert parse_route(ing({MSE + "mirror-target-service": "a/b/c"})).mirror is None
    assert shadow_host("api.maps.example") == "api.maps.example-shadow"
    assert shadow_host("api.maps.example:8080") == "api.maps.example-shadow:8080"


# ---- headers ---------------------------------------------------------------------------------


def test_header_control_parse_and_apply() -> None:
    ops = headers.parse(
        "X-Egress  sandbox policies\nbad-line\nx-extra a",
        "user-agent egress",
        "x-forwarded-for, x-request-id",
    )
    assert ops is not None
    assert ops.add == (("X-Egress", "sandbox policies"), ("x-extra", "a"))
    given = [
        ("host", "h"),
        ("user-agent", "curl"),
        ("x-extra", "client"),
        ("x-forwarded-for", "127.244.0.7"),
        ("x-request-id", "r"),
    ]
    out = headers.apply(given, ops)
    assert out == [
        ("host", "h"),
        ("user-agent", "egress"),
        ("x-extra", "client,a"),
        ("x-egress", "sandbox policies"),
    ]
    assert headers.parse(None, "", " , ") is None
    assert headers.apply(given, None) is given


# ---- TLS -------------------------------------------------------------------------------------


def _client_hello(server_hostname: str | None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_sni_is_read_from_the_client_hello() -> None:
    assert parse_sni(_client_hello("API.Payments.example")) == "api.payments.example"
    assert parse_sni(_client_hello(None)) is None
    assert parse_sni(b"GET / HTTP/1.1\r\n") is None
    assert parse_sni(_client_hello("a.example")[:20]) is None


def test_domain_tls_versions_best_host_then_oldest() -> None:
    old = ing({MSE + "tls-min-protocol-version": "TLSv1.2"}, "old", ("*.example",))
    new = ing({MSE + "tls-max-protocol-version": "TLSv1.2"}, "new", ("a.example",))
    bad = ing({MSE + "tls-min-protocol-version": "TLS1.3"}, "bad", ("b.example",))
    assert domain_owner_tls([old, new, bad], "a.example") == (None, "TLSv1.2")  # exact host
    assert domain_owner_tls([old, new, bad], "c.example") == ("TLSv1.2", None)  # wildcard
    assert domain_owner_tls([bad], "b.example") == (None, None)  # malformed: the defaults


def test_upstream_tls_failure_wording() -> None:
    err = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure")
    err.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"  # type: ignore[misc]
    assert tls_failure(err) == (
        "TLS error: 268436496:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE"
    )
    assert tls_failure(MissingSecret("default/x")) == "TLS error: Secret is not supplied by SDS"


# ---- the origin's hosts ----------------------------------------------------------------------


def test_origin_rules_and_public_addresses() -> None:
    rules = OriginRules([OriginHost(host="*.pay.example", require_sni=True)])
    assert rules.rule("a.pay.example").require_sni and not rules.rule("a.b.pay.example").require_sni
    assert rules.set_down("A.pay.example", True).down and rules.rule("a.pay.example").require_sni
    assert not rules.rule("b.pay.example").down
    with pytest.raises(ValueError, match="host: 'a b'"):
        rules.set_down("a b", True)
    assert rules.clear() == 1 and not rules.rule("a.pay.example").down
    address = publicnet.address_of("Api.Maps.example.")
    assert publicnet.name_at(address) == "api.maps.example"
    assert address.startswith("198.1")
