"""Verify's evidence without a cluster: curl's trailer, echo bodies, rules, policies and rows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from egress_lib.errors import StepFailed
from egress_lib.parameters import Destination, load_parameters
from egress_lib.pod_probe import ProbeOutput, Transfer, parse_transfers, transfer, write_out
from egress_lib.resources import SnatEntry
from egress_lib.steps import verify, verify_bypass
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.verify_evidence import (
    denying_policy,
    echo_target,
    matched_rule,
    source_address,
)
from egress_lib.steps.verify_rows import DIRECT, VIA, VerifyResult, VerifyRow

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "parameters" / "sandbox-policies.yaml"
EIP = "198.51.100.20"

# ---- curl's trailer ---------------------------------------------------------------------------


def trailer(
    tag: str, code: str = "200", exit_code: int = 0, error: str = "", connect: str = "0.01"
) -> str:
    return (
        f"\n@egress-probe tag={tag} code={code} time=0.25 connect={connect} "
        f"remote=127.16.2.10 exit={exit_code} error={error}\n"
    )


def test_write_out_names_the_transfer_and_refuses_spaces() -> None:
    w = write_out("payments")
    assert w.startswith("\\n@egress-probe tag=payments code=%{http_code} ")
    assert "%{exitcode}" in w and "%{errormsg}" in w and w.endswith("\\n")
    with pytest.raises(ValueError, match="without spaces"):
        write_out("two words")


def test_transfers_split_bodies_and_keep_curl_errors() -> None:
    body = json.dumps({"source_ip": EIP})
    log = (
        "curl: (7) Failed to connect to api.example port 80\n"
        + body
        + trailer("a")
        + trailer("b", "000", 7, "Failed to connect to api.example port 80", "0")
    )
    a, b = parse_transfers(log)
    assert (a.tag, a.status, a.curl_exit, a.seconds) == ("a", 200, 0, 0.25)
    assert source_address(a.body) == EIP  # the stderr line before the body is skipped
    assert (b.status, b.curl_exit, b.connect_seconds) == (None, 7, 0.0)
    assert b.error == "Failed to connect to api.example port 80" and b.body == ""
    assert transfer(log, "b") == b and transfer(log, "c") is None


def test_a_body_without_a_final_newline_still_parses() -> None:
    (t,) = parse_transfers("203.0.113.9@egress-probe tag=x code=200 time=0.1 connect=0.1 "
                           "remote= exit=0 error=")  # fmt: skip
    assert t.body == "203.0.113.9" and t.status == 200


# ---- the source address a body shows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "address"),
    [
        ('{"source_ip": "198.51.100.20", "headers": {}}', EIP),  # the sandbox origin
        ('{\n  "ip": "198.51.100.20"\n}\n', EIP),  # api.ipify.org?format=json
        ('{"origin": "10.0.3.4, 198.51.100.20"}', EIP),  # httpbin behind the gateway's XFF
        ("198.51.100.20\n", EIP),  # ifconfig.me/ip, checkip.amazonaws.com, icanhazip.com
        ("2001:db8::7\n", "2001:db8::7"),
        ("<html><body>198.51.100.20</body></html>", None),
        ('{"origin": "https://example.com"}', None),  # an API whose "origin" is no address
        ('{"ip": 7}', None),
        ("[1, 2]", None),
        ("{not json", None),
        ("", None),
    ],
)
def test_source_address(body: str, address: str | None) -> None:
    assert source_address(body) == address


# ---- the Ingress rule a request matches -------------------------------------------------------


def ingress(name: str, *rules: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": path, "pathType": kind, "backend": {}}]},
                }
                for host, path, kind in rules
            ]
        },
    }


def test_the_most_specific_rule_matches() -> None:
    ings = [
        ingress("a", ("api.example.com", "/", "Prefix"), ("*.example.com", "/v1", "Prefix")),
        ingress("b", ("api.example.com", "/v1", "Prefix"), ("api.example.com", "/v1/x", "Exact")),
    ]
    assert str(matched_rule(ings, "api.example.com", "/v1/y")) == (
        "Ingress b: api.example.com/v1 (Prefix)"
    )
    assert str(matched_rule(ings, "api.example.com", "/v1/x")).endswith("/v1/x (Exact)")
    assert str(matched_rule(ings, "api.example.com", "/v10")) == (
        "Ingress a: api.example.com/ (Prefix)"  # /v1 is no prefix of /v10 by element
    )
    assert str(matched_rule(ings, "www.example.com", "/v1?q=1")).startswith("Ingress a: *.")
    assert matched_rule(ings, "a.b.example.com", "/v1") is None  # a wildcard is one label
    assert matched_rule(ings, "other.org", "/") is None


# ---- echo_url, IP lists -----------------------------------------------------------------------


def test_echo_url_goes_through_the_destination_of_its_host() -> None:
    p = load_parameters(POLICIES, {"verify.echo_url": "https://api.maps.example/ip?x=1"})
    echo = echo_target(p)
    assert echo is not None and echo.destination.name == "maps"
    assert (echo.host, echo.path) == ("api.maps.example", "/ip?x=1")
    unknown = load_parameters(POLICIES)
    assert echo_target(unknown) is None


def test_the_ip_list_that_refuses_a_source_is_named_in_the_gateways_order() -> None:
    p = load_parameters(POLICIES)
    payments, maps, packages = p.destinations
    assert denying_policy(p, payments, "127.244.0.9") is None  # a pod: allowed
    assert denying_policy(p, payments, "127.36.1.10") == (
        "destinations[0].policies.source_ips.allow",
        "127.244.0.0/16",
    )
    assert denying_policy(p, packages, "127.36.1.10") == (
        "destinations[2].policies.domain_source_ips.deny",
        "127.0.0.0/10",
    )
    assert denying_policy(p, maps, "192.0.2.5") == (
        "gateway.ip_access_control.deny",
        "192.0.2.0/24, 198.51.100.0/24",
    )
    assert denying_policy(p, maps, None) is None


# ---- the direct path --------------------------------------------------------------------------


def entry(
    id: str, vswitch: str = "", cidr: str = "", ip: str = EIP, status: str = "Available"
) -> SnatEntry:
    return SnatEntry(id, "stb-1", id, vswitch, cidr, (ip,), status)


FACTS = verify_bypass.facts_from(
    [
        entry("snat-gw", vswitch="vsw-gw"),
        entry("snat-nodes", cidr="10.0.0.0/16", ip="203.0.113.50"),
        entry("snat-pending", vswitch="vsw-nodes", status="Pending"),
    ],
    {"vsw-gw": "10.1.2.0/24", "vsw-nodes": "10.0.1.0/24"},
    ["vsw-gw"],
    ["vsw-nodes"],
)
PROBE = ProbeOutput("egress-verify-r-direct", 0, "", "10.244.0.5", "10.0.1.7", "Succeeded")
DEST = Destination(name="api", host="api.example.com", port=443, backend_protocol="HTTPS")


def t(status: int | None, exit_code: int = 0, body: str = "", connect: float = 0.0) -> Transfer:
    return Transfer("api", status, 0.5, connect, "", exit_code, "" if status else "nope", body)


def test_facts_take_the_gateway_eip_and_the_entries_serving_the_nodes() -> None:
    assert FACTS.expected_eips == (EIP,)
    (way,) = FACTS.ways_out  # a CIDR covering the node vSwitch; Pending is no way out yet
    assert way.vswitch == "vsw-nodes" and way.entry.id == "snat-nodes"
    assert "SourceCIDR 10.0.0.0/16" in str(way) and "SnatTableId stb-1" in str(way)
    assert FACTS.node_vswitch_of("10.0.1.7") == "vsw-nodes"
    assert FACTS.node_vswitch_of("192.0.2.1") is None


def test_direct_urls_use_the_real_scheme_and_port() -> None:
    assert verify_bypass.direct_url(DEST, DEST.host) == "https://api.example.com/"
    odd = Destination(name="x", host="x.example", port=8080, path="/p")
    assert verify_bypass.direct_url(odd, odd.host) == "http://x.example:8080/p"
    args = verify_bypass.direct_args([("a", "http://a/"), ("b", "https://b/")], 60)
    assert args.count("--next") == 1 and "--connect-to" not in args
    assert args[args.index("--connect-timeout") + 1] == "10"


@pytest.mark.parametrize(
    ("transfer_", "result"),
    [
        (t(None, 97), "pass"),  # the sandbox's pod network: no route out
        (t(None, 7), "pass"),
        (t(None, 6), "pass"),
        (t(None, 28, connect=0.0), "pass"),  # a connect timeout: no SYN answered
        (t(None, 28, connect=0.2), "fail"),  # connected, then no answer
        (t(None, 35, connect=0.2), "fail"),  # a TLS handshake with the internet
        (t(200, body=json.dumps({"source_ip": "203.0.113.50"})), "fail"),
        (t(403), "fail"),  # any HTTP answer is a way out
    ],
)
def test_the_direct_path_passes_only_without_a_connection(transfer_: Transfer, result: str) -> None:
    row = verify_bypass.direct_row(DEST, "https://api.example.com/", transfer_, PROBE, FACTS)
    assert row.result == result and row.path == DIRECT and row.expected == EIP


def test_a_direct_answer_names_the_vswitch_the_entry_and_the_eip() -> None:
    body = json.dumps({"source_ip": "203.0.113.50"})
    row = verify_bypass.direct_row(
        DEST, "https://api.example.com/", t(200, body=body), PROBE, FACTS
    )
    assert row.source == "203.0.113.50"
    assert "HTTP 200 without the gateway, from 203.0.113.50" in row.detail
    assert "vsw-nodes" in row.detail
    assert "snat-nodes" in row.fix and "scope it to the gateway's vSwitch vsw-gw" in row.fix
    bare = verify_bypass.facts_from([], {}, ["vsw-gw"], ["vsw-nodes"])
    row = verify_bypass.direct_row(DEST, "https://api.example.com/", t(200), PROBE, bare)
    assert "no SNAT entry serves vsw-nodes" in row.fix and "EIP or public IP" in row.fix


# ---- through the gateway ----------------------------------------------------------------------


def session(**verify_keys: Any) -> Any:
    p = load_parameters(POLICIES, {f"verify.{k}": v for k, v in verify_keys.items()})
    return SimpleNamespace(params=p, short_run_id="ab12cd")


ADDR = ClbAddress("payments", "127.36.2.10", 80)


def seen(status: int | None, body: str = "", dest: int = 0, pod_ip: str = "127.244.0.9") -> Any:
    s = session()
    d = s.params.destinations[dest]
    req = verify.gateway_request(d, ADDR)
    tr = Transfer(d.name, status, 0.1, 0.01, "", 0 if status else 7, "", body)
    probe = ProbeOutput("pod", 0, "", pod_ip, "127.36.1.10", "Succeeded")
    return s, d, verify.Seen(req, tr, probe)


def test_tls_offload_is_requested_over_https_on_443() -> None:
    s = session()
    payments, maps, _ = s.params.destinations
    moved = ClbAddress("x", "127.36.2.10", 40123)
    assert verify.gateway_request(payments, moved).url == "https://api.payments.example/"
    assert verify.gateway_request(payments, moved).connect_to == (
        "api.payments.example:443:127.36.2.10:443"
    )
    assert verify.gateway_request(maps, moved).url == "http://api.maps.example:40123/"
    args = verify.request_args([verify.gateway_request(maps, moved)], 5)
    assert args[:3] == ["-s", "-w", write_out("maps")]


@pytest.mark.parametrize(
    ("status", "body", "echo", "result", "words"),
    [
        (200, json.dumps({"source_ip": EIP}), None, "pass", "the answer shows the SNAT EIP"),
        (200, "<html/>", None, "skipped", "egress address not checked"),
        (200, "<html/>", EIP, "pass", "the echo_url answer shows the SNAT EIP"),
        (200, json.dumps({"source_ip": "8.8.4.4"}), None, "fail", "not the gateway's SNAT"),
        (200, "10.0.3.4\n", None, "fail", "echoes the X-Forwarded-For header"),
        (503, "", None, "fail", "HTTP 503"),
        (None, "", None, "fail", "no HTTP answer"),
    ],
)
def test_via_rows(status: int | None, body: str, echo: str | None, result: str, words: str) -> None:
    s, d, sn = seen(status, body)
    row = verify.via_row(s, d, VIA, "Ingress payments: api.payments.example/ (Prefix)", ADDR, sn,
                         FACTS, echo)  # fmt: skip
    assert row.result == result and words in row.detail, row
    assert row.route.startswith("Ingress payments:") and row.expected == EIP


def test_a_403_from_an_ip_list_names_the_policy_key() -> None:
    s, d, sn = seen(403, "RBAC: access denied", pod_ip="127.36.1.10")  # a hostNetwork pod
    row = verify.via_row(s, d, VIA, "r", ADDR, sn, FACTS)
    assert row.result == "fail"
    assert "destinations[0].policies.source_ips.allow" in row.fix and "127.36.1.10" in row.fix
    assert "destinations[0].policies.source_ips.allow is 127.244.0.0/16" in row.remedy


# ---- the result: table, records, error --------------------------------------------------------


def rows() -> list[VerifyRow]:
    via = VerifyRow("api", VIA, "http://api/", 200, "pass", "HTTP 200 via 127.0.0.9; ...",
                    route="Ingress api: api/ (Prefix)", source=EIP, expected=EIP)  # fmt: skip
    direct = VerifyRow("api", DIRECT, "https://api/", None, "pass", "blocked: ...", expected=EIP)
    return [via, direct]


def test_the_table_and_records_carry_both_paths() -> None:
    result = VerifyResult(rows())
    table = result.to_table()
    assert table.columns[:3] == ("Result", "Destination", "Path") and "Fix" not in table.columns
    assert table.column("Path") == ["via gateway", "direct"]
    assert table.column("Source address") == [EIP, None]
    assert table.column("Expected EIP") == [EIP, EIP]
    (first, second) = result.records()
    assert first["result"] == "pass" and first["source_address"] == EIP
    assert first["route"] == "Ingress api: api/ (Prefix)" and first["http_status"] == 200
    assert second["path"] == "direct" and second["fix"] == ""
    skipped = VerifyResult([*rows(), VerifyRow("x", VIA, "u", 200, "skipped", "not checked")])
    assert skipped.ok and skipped.to_table().column("Result")[-1] == "⚠ skipped"


def test_a_bypass_fails_the_step_naming_the_way_out() -> None:
    body = json.dumps({"source_ip": "203.0.113.50"})
    bad = verify_bypass.direct_row(DEST, "https://api/", t(200, body=body), PROBE, FACTS)
    result = VerifyResult([rows()[0], bad], gateway_vswitches=["vsw-gw"],
                          node_vswitches=["vsw-nodes"])  # fmt: skip
    table = result.to_table()
    assert table.columns[-1] == "Fix" and "snat-nodes" in table.column("Fix")[1]
    assert table.column("Result") == ["✓", "✗ error"]
    with pytest.raises(StepFailed) as info:
        result.raise_for_failures()
    err = info.value
    assert "1 destination(s) reachable without the gateway" in str(err)
    assert "api (https://api/): HTTP 200 without the gateway, from 203.0.113.50" in str(err)
    assert "Remove that SNAT entry (SNAT entry snat-nodes" in err.remedy
    assert "scope it to the gateway's vSwitch(es) vsw-gw" in err.remedy
    assert "Pods then egress only through the gateway" in err.remedy


def test_a_plan_only_result_says_not_run() -> None:
    assert "not run" in str(VerifyResult(ran=False))
    VerifyResult(ran=False).raise_for_failures()  # nothing ran: nothing failed


def test_the_remedies_name_the_node_eip_and_the_wrong_source() -> None:
    from egress_lib import remedies

    text = remedies.verify_bypass([], ["vsw-nodes"], ["vsw-gw"])
    assert "No SNAT entry serves the nodes' vSwitches (vsw-nodes)" in text
    assert "EIP or public IP bound to the node instances" in text
    wrong = remedies.verify_wrong_eip(["203.0.113.1"], [EIP], ["vsw-gw"])
    assert "saw 203.0.113.1" in wrong and f"vsw-gw ({EIP})" in wrong


# ---- what the runner prints and stores --------------------------------------------------------


def test_the_run_record_shows_the_same_rows(tmp_path: Path) -> None:
    from egress_lib.run_reports import _verify_section, format_verify, read_verify

    body = json.dumps({"source_ip": "203.0.113.50"})
    bad = verify_bypass.direct_row(DEST, "https://api/", t(200, body=body), PROBE, FACTS)
    result = VerifyResult([rows()[0], bad])
    (tmp_path / "verify.json").write_text(json.dumps(result.records()))
    saved = read_verify(tmp_path)
    assert isinstance(saved, list) and saved == json.loads(json.dumps(result.records()))
    text = format_verify(saved)
    head = text.splitlines()[0].split()
    assert head[:4] == ["RESULT", "DESTINATION", "PATH", "ROUTE"] and head[-1] == "FIX"
    assert "via gateway" in text and "snat-nodes" in text and "203.0.113.50" in text
    md = "\n".join(_verify_section(tmp_path))
    assert "| result | destination | path | route | http_status | source_address |" in md
    assert "| pass | api | via gateway | Ingress api: api/ (Prefix) | 200 |" in md
    assert "url" not in md.split("\n")[3]  # the URL and times stay in verify.json
