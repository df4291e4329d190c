"""Validation of the policy parameters: every message names the key, the value and what is
expected; every problem is reported at once; valid but unusual settings earn a note."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from egress_lib.errors import ParameterError
from egress_lib.parameters import Parameters, load_parameters

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "parameters" / "sandbox.yaml"
POLICIES = ROOT / "parameters" / "sandbox-policies.yaml"
P = "destinations[0].policies"


def dest(policies: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "api", "host": "api.example.com", "port": 80, **keys}
    if policies is not None:
        out["policies"] = policies
    return out


def load(*dests: dict[str, Any], **overrides: Any) -> Parameters:
    return load_parameters(SANDBOX, overrides={"destinations": list(dests), **overrides})


def problems(*dests: dict[str, Any], **overrides: Any) -> dict[str, str]:
    with pytest.raises(ParameterError) as info:
        load(*dests, **overrides)
    return {p.path: str(p) for p in info.value.problems}


def only(found: dict[str, str], path: str) -> str:
    assert list(found) == [path], found
    return found[path]


# ---- the files ----------------------------------------------------------------------------


def test_the_policies_file_is_valid() -> None:
    p = load_parameters(POLICIES)
    assert p.has_policies()
    declared = {name for d in p.destinations for name in d.policies.declared()}
    assert declared == set(type(p.destinations[0].policies).model_fields)


@pytest.mark.parametrize("name", ["sandbox.yaml", "sandbox-policies.yaml"])
def test_check_says_valid_offline(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "egress_lib.cli", "check", f"parameters/{name}", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"parameters/{name}: valid (" in done.stdout


# ---- single fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "what", "expected"),
    [
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set", "an IPv4 address or CIDR '10.0.0.0/8'"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP or CIDR", "an IPv4 address or CIDR"),
        ("office", "'office' is not an IP or CIDR", "an IPv4 address or CIDR '10.0.0.0/8' or"),
        ("2001:db8::/32", "'2001:db8::/32' is IPv6", "an IPv4 address or CIDR (the VPC is IPv4)"),
    ],
)
@pytest.mark.parametrize("field", ["source_ips", "domain_source_ips"])
def test_bad_cidrs(field: str, value: str, what: str, expected: str) -> None:
    found = problems(dest({field: {"deny": ["10.0.0.0/8", value]}}))
    text = only(found, f"{P}.{field}.deny[1]")
    assert what in text and f"; expected {expected}" in text.replace("such as ", "")


def test_bad_gateway_wide_cidr() -> None:
    found = problems(dest(), **{"gateway.ip_access_control": {"allow": ["192.168.1.1/16"]}})
    text = only(found, "gateway.ip_access_control.allow[0]")
    assert "'192.168.1.1/16' has host bits set" in text


@pytest.mark.parametrize("value", [0, -5])
@pytest.mark.parametrize("key", ["rps", "rpm", "burst_multiplier"])
def test_rates_must_be_positive(key: str, value: int) -> None:
    limit = {"rps": 10} if key == "burst_multiplier" else {}
    found = problems(dest({"rate_limit": {**limit, key: value}}))
    text = found[f"{P}.rate_limit.{key}"]
    assert (
        f"{P}.rate_limit.{key}: {value} is out of range; expected greater than or equal to 1"
        == (text)
    )


def test_a_rate_that_is_not_a_number() -> None:
    text = only(problems(dest({"rate_limit": {"rps": "fast"}})), f"{P}.rate_limit.rps")
    assert "'fast' has the wrong type (str); expected a valid integer" in text


def test_an_unknown_backend_protocol_names_the_allowed_ones() -> None:
    text = only(problems(dest(backend_protocol="GRPC")), "destinations[0].backend_protocol")
    assert (
        text
        == "destinations[0].backend_protocol: 'GRPC' is not allowed; expected 'HTTP' or 'HTTPS'"
    )


@pytest.mark.parametrize(
    ("policy", "path", "fragment"),
    [
        (
            {"load_balancing": {"algorithm": "ewma"}},
            "load_balancing.algorithm",
            "'ewma' is not allowed; expected one of 'round_robin', 'least_conn' or 'random'",
        ),
        (
            {"retries": {"tries": 3, "conditions": ["error", "on"]}},
            "retries.conditions[1]",
            "'on' is not allowed; expected one of 'error', 'timeout'",
        ),
        (
            {"tls_offload": {"certificate": "c", "min_version": "TLSv1.4"}},
            "tls_offload.min_version",
            "'TLSv1.4' is not allowed; expected one of 'TLSv1.0', 'TLSv1.1', 'TLSv1.2' or 'TLSv1.3",
        ),
        (
            {"mirror": {"service": "Audit/x:8080"}},
            "mirror.service",
            "'Audit/x:8080' is not a Service reference; expected 'namespace/name:port'",
        ),
        (
            {"mirror": {"service": "egress-audit/audit:70000"}},
            "mirror.service",
            "'egress-audit/audit:70000' is not a Service reference",
        ),
        (
            {"mirror": "egress-audit/audit:8080"},
            "mirror",
            (
                "'egress-audit/audit:8080' is not a mapping (str); expected a mapping with the "
                "keys service, percentage"
            ),
        ),
        (
            {"mirror": {"service": "audit", "percentage": 101}},
            "mirror.percentage",
            "101 is out of range; expected less than or equal to 100",
        ),
        (
            {"request_headers": {"add": {"x a": "1"}}},
            "request_headers.add.x a",
            "'x a' is not an HTTP header name; expected letters, digits and '-' only",
        ),
        (
            {"request_headers": {"update": {"Host": "a.example.com"}}},
            "request_headers.update.Host",
            "'Host' is managed by the gateway; expected another header (use upstream_vhost",
        ),
        (
            {"response_headers": {"add": {"x-a": "two\nlines"}}},
            "response_headers.add.x-a",
            "is not a header value; expected one non-empty line of text",
        ),
        (
            {"rate_limit": {"rpx": 3}},
            "rate_limit.rpx",
            (
                "unknown key 'rpx' (did you mean 'rps'?); expected one of the keys "
                "burst_multiplier, rpm, rps"
            ),
        ),
        (
            {"upstream_tls": {"client_certificate": "Egress_Cert"}},
            "upstream_tls.client_certificate",
            "'Egress_Cert' is not a DNS-1123 subdomain",
        ),
        (
            {"load_balancing": {"endpoints": [{"name": "b", "host": "10.0.0.9", "weight": 0}]}},
            "load_balancing.endpoints[0].host",
            "'10.0.0.9' is an IP address",
        ),
        (
            {"timeout_seconds": 0},
            "timeout_seconds",
            "0 is out of range; expected greater than or equal to 1",
        ),
    ],
)
def test_single_field_messages(policy: dict[str, Any], path: str, fragment: str) -> None:
    found = problems(dest(policy))
    assert f"{P}.{path}" in found, found
    assert fragment in found[f"{P}.{path}"]


# ---- rules across keys --------------------------------------------------------------------


def test_rps_and_rpm_both() -> None:
    text = only(problems(dest({"rate_limit": {"rps": 5, "rpm": 300}})), f"{P}.rate_limit.rpm")
    assert text == (
        f"{P}.rate_limit.rpm: rpm 300 is set with rps 5; expected rps or rpm, not both (the "
        "gateway applies one limit per route)"
    )


def test_rps_and_rpm_neither() -> None:
    text = only(problems(dest({"rate_limit": {"burst_multiplier": 3}})), f"{P}.rate_limit")
    assert "no limit is given; expected rps (requests per second) or rpm" in text


def test_weights_must_make_100() -> None:
    lb = {
        "weight": 50,
        "endpoints": [
            {"name": "b1", "host": "b1.example.net", "weight": 30},
            {"name": "b2", "host": "b2.example.net", "weight": 30},
        ],
    }
    text = only(problems(dest({"load_balancing": lb})), f"{P}.load_balancing.weight")
    assert "the weights make 50 + 30 + 30 = 110; expected weights that make 100 percent" in text


def test_a_weight_below_100_without_endpoints() -> None:
    text = only(problems(dest({"load_balancing": {"weight": 80}})), f"{P}.load_balancing.weight")
    assert "the weights make 80 = 80" in text


def test_endpoint_names_clash_with_destinations_and_each_other() -> None:
    lb = {
        "weight": 40,
        "endpoints": [
            {"name": "other", "host": "b1.example.net", "weight": 20},
            {"name": "b", "host": "b2.example.net", "weight": 20},
            {"name": "b", "host": "b3.example.net", "weight": 20},
        ],
    }
    found = problems(dest({"load_balancing": lb}), dest(name="other", host="other.example.com"))
    e = f"{P}.load_balancing.endpoints"
    assert set(found) == {f"{e}[0].name", f"{e}[2].name"}
    assert "'other' is already used by destinations[1].name" in found[f"{e}[0].name"]
    assert f"'b' is already used by {e}[1].name" in found[f"{e}[2].name"]
    assert (
        "expected a Service name used by no destination and no other endpoint"
        in found[f"{e}[2].name"]
    )


def test_upstream_tls_needs_https() -> None:
    text = only(
        problems(dest({"upstream_tls": {"client_certificate": "cert"}})), f"{P}.upstream_tls"
    )
    assert "upstream_tls is set with backend_protocol HTTP; expected backend_protocol HTTPS" in (
        text
    )


def test_sni_needs_https() -> None:
    text = only(problems(dest(sni="api.example.com")), "destinations[0].sni")
    assert "'api.example.com' is set with backend_protocol HTTP" in text


def test_tls_max_below_min() -> None:
    offload = {"certificate": "c", "min_version": "TLSv1.2", "max_version": "TLSv1.1"}
    text = only(problems(dest({"tls_offload": offload})), f"{P}.tls_offload.max_version")
    assert text == (
        f"{P}.tls_offload.max_version: 'TLSv1.1' is below min_version 'TLSv1.2'; expected a "
        "version no lower than min_version 'TLSv1.2'"
    )


def test_retry_off_with_others() -> None:
    found = problems(dest({"retries": {"tries": 2, "conditions": ["off", "error", "error"]}}))
    assert set(found) == {f"{P}.retries.conditions", f"{P}.retries.conditions[2]"}
    assert (
        "'off' is given with other conditions; expected ['off'] alone"
        in found[f"{P}.retries.conditions"]
    )
    assert "'error' is listed twice" in found[f"{P}.retries.conditions[2]"]


def test_duplicate_header_names_case_insensitive() -> None:
    control = {
        "add": {"X-Team": "a", "x-team": "b"},
        "update": {"X-TEAM": "c"},
        "remove": ["x-forwarded-for", "X-Forwarded-For"],
    }
    found = problems(dest({"request_headers": control}))
    k = f"{P}.request_headers"
    assert set(found) == {f"{k}.add.x-team", f"{k}.update.X-TEAM", f"{k}.remove[1]"}
    assert f"'x-team' is already named as {k}.add.X-Team" in found[f"{k}.add.x-team"]
    assert f"'X-Forwarded-For' is already named as {k}.remove[0]" in found[f"{k}.remove[1]"]
    assert "expected each header name once across add, update and remove" in found[f"{k}.remove[1]"]


def test_response_and_request_controls_are_separate() -> None:
    load(
        dest({"request_headers": {"add": {"x-a": "1"}}, "response_headers": {"add": {"x-a": "1"}}})
    )


# ---- scopes -------------------------------------------------------------------------------


def test_one_ingress_one_set_of_route_policies() -> None:
    shared = {"ingress_name": "shared"}
    found = problems(
        dest({"timeout_seconds": 5, "rate_limit": {"rps": 5}}, **shared),
        dest({"timeout_seconds": 9}, name="b", host="b.example.com", **shared),
    )
    assert set(found) == {
        "destinations[1].policies.timeout_seconds",
        "destinations[1].policies.rate_limit",
    }
    text = found["destinations[1].policies.timeout_seconds"]
    assert "timeout_seconds differs within Ingress 'shared'" in text
    assert "expected 5 like destinations[0], which shares Ingress 'shared'" in text
    assert "give this destination its own ingress_name to differ" in text


def test_equal_route_policies_may_share_an_ingress() -> None:
    shared = {"ingress_name": "shared"}
    p = load(
        dest({"timeout_seconds": 5}, **shared),
        dest({"timeout_seconds": 5}, name="b", host="b.example.com", **shared),
    )
    assert len(p.ingress_groups()) == 1


def test_load_balancing_needs_its_own_ingress() -> None:
    lb = {"weight": 50, "endpoints": [{"name": "bk", "host": "bk.example.net", "weight": 50}]}
    found = problems(
        dest({"load_balancing": lb}, ingress_name="shared"),
        dest({"load_balancing": lb}, name="b", host="a.example.com", ingress_name="shared"),
    )
    text = found[f"{P}.load_balancing.endpoints"]
    assert "Ingress 'shared' holds 2 destinations; expected a destination with its own Ingress" in (
        text
    )


def test_one_host_one_set_of_domain_policies() -> None:
    found = problems(
        dest({"domain_source_ips": {"deny": ["10.0.0.0/8"]}}),
        dest(name="b", path="/b"),
    )
    text = only(found, "destinations[1].policies.domain_source_ips")
    assert "domain_source_ips differs for host 'api.example.com'" in text
    assert "like destinations[0], which has the same host 'api.example.com' (domain-level" in text


def test_one_host_one_tls_offload() -> None:
    found = problems(
        dest({"tls_offload": {"certificate": "a"}}),
        dest({"tls_offload": {"certificate": "b"}}, name="b", path="/b"),
    )
    assert list(found) == ["destinations[1].policies.tls_offload"]


def test_domain_policies_may_differ_per_ingress_on_one_host() -> None:
    # Route-level lists are per Ingress: two Ingresses of one host may differ there.
    load(
        dest({"source_ips": {"allow": ["10.0.0.0/8"]}}),
        dest({"source_ips": {"deny": ["10.0.0.0/8"]}}, name="b", path="/b"),
    )


def test_domain_lists_of_hosts_sharing_an_ingress() -> None:
    found = problems(
        dest({"domain_source_ips": {"deny": ["10.0.0.0/8"]}}, ingress_name="shared"),
        dest(name="b", host="b.example.com", ingress_name="shared"),
    )
    text = only(found, "destinations[1].policies.domain_source_ips")
    assert "its domain annotations reach every host in it" in text


def test_tls_versions_of_hosts_sharing_an_ingress() -> None:
    found = problems(
        dest({"tls_offload": {"certificate": "a", "min_version": "TLSv1.2"}}, ingress_name="s"),
        dest(
            {"tls_offload": {"certificate": "b"}}, name="b", host="b.example.com", ingress_name="s"
        ),
    )
    text = only(found, "destinations[1].policies.tls_offload")
    assert "min_version 'TLSv1.2' and max_version None like destinations[0]" in text


def test_every_problem_at_once() -> None:
    found = problems(
        dest(
            {
                "source_ips": {"allow": ["10.0.0.1/8"]},
                "rate_limit": {"rps": 1, "rpm": 1},
                "load_balancing": {"weight": 10},
            }
        )
    )
    assert set(found) == {
        f"{P}.source_ips.allow[0]",
    }  # a field error stops the cross-key checks, as for every other key
    found = problems(
        dest({"rate_limit": {"rps": 1, "rpm": 1}, "load_balancing": {"weight": 10}}),
        **{"verify.echo_url": "http://elsewhere.example.com/ip"},
    )
    assert set(found) == {
        f"{P}.rate_limit.rpm",
        f"{P}.load_balancing.weight",
        "verify.echo_url",
    }


# ---- verify.echo_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://api.example.com/ip", {}),
        ("https://api.example.com/", {}),
        ("http://api.example.com/echo", {"path": "/echo"}),
        ("http://api.example.com/echo/ip?format=json", {"path": "/echo"}),
        ("http://api.example.com/echo/", {"path": "/echo/"}),
        ("http://api.example.com/ip", {"path": "/ip", "path_type": "Exact"}),
    ],
)
def test_echo_url_on_a_destination(url: str, rule: dict[str, Any]) -> None:
    load(dest(**rule), **{"verify.echo_url": url})


def test_echo_url_on_another_host() -> None:
    found = problems(dest(), **{"verify.echo_url": "https://ifconfig.me/ip"})
    text = only(found, "verify.echo_url")
    assert text == (
        "verify.echo_url: host 'ifconfig.me' is no destination's; expected a URL on the host of "
        "a destination (api.example.com): verify calls it through the gateway"
    )


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://api.example.com/echoes", {"path": "/echo"}),
        ("http://api.example.com/ip/", {"path": "/ip", "path_type": "Exact"}),
    ],
)
def test_echo_url_outside_the_rule(url: str, rule: dict[str, Any]) -> None:
    found = problems(dest(**rule), **{"verify.echo_url": url})
    text = only(found, "verify.echo_url")
    assert "matches no rule of host" in text or "is no destination's" in text


def test_echo_url_path_message_names_the_rules() -> None:
    found = problems(dest(path="/echo"), **{"verify.echo_url": "http://api.example.com/ip"})
    assert only(found, "verify.echo_url") == (
        "verify.echo_url: path '/ip' matches no rule of host 'api.example.com'; expected a path "
        "that a rule of host 'api.example.com' matches (destinations[0] Prefix /echo)"
    )


def test_echo_url_must_be_a_url() -> None:
    found = problems(dest(), **{"verify.echo_url": "api.example.com/ip"})
    assert "is not an http(s) URL" in only(found, "verify.echo_url")


# ---- notes --------------------------------------------------------------------------------


def test_https_without_sni_is_a_note() -> None:
    p = load(dest(port=443, backend_protocol="HTTPS"))
    assert p.notes == [
        (
            "destinations[0].sni is null with backend_protocol HTTPS: the gateway sends no TLS "
            "server name, and many providers require SNI (set sni to the provider's host, e.g. "
            "'api.example.com')"
        )
    ]
    assert load(dest(port=443, backend_protocol="HTTPS", sni="api.example.com")).notes == []


def test_a_rate_limit_with_several_replicas_is_a_note() -> None:
    p = load(dest({"rate_limit": {"rpm": 60}}))  # sandbox.yaml: 3 replicas
    assert p.notes == [
        (
            "destinations[0].policies.rate_limit is per gateway replica: with gateway.replicas 3 "
            "the effective limit is 3 x 60 = 180 requests per minute"
        )
    ]
    assert load(dest({"rate_limit": {"rpm": 60}}), **{"gateway.replicas": 1}).notes == []
