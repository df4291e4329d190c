"""Verify's evidence on a sandbox (block 36): the EIP the destination saw, no bypass, the route.

One sandbox for the module, steps 00-05 applied once with parameters/sandbox.yaml; each test
runs verify from there. The bypass test plants an SNAT entry for the nodes' vSwitch with the
real VPC SDK (CreateSnatEntry), as an operator who wanted "internet for the nodes" would, and
deletes it again. The last test tears down and runs parameters/sandbox-policies.yaml.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import Session, connect, kube, load_parameters, ownership, steps
from egress_lib.errors import StepFailed
from egress_lib.plan import RUN_DIR_ENV
from egress_lib.steps.verify_rows import DIRECT, ECHO, VIA

REPO = Path(__file__).resolve().parents[2]
BLOCK = 36  # see the block list in tests/conftest.py
SANDBOX = REPO / "parameters" / "sandbox.yaml"
POLICIES = REPO / "parameters" / "sandbox-policies.yaml"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sandbox_home(tmp_path_factory.mktemp("verify-home"), BLOCK) as sandbox:
        session = connect(load_parameters(SANDBOX, {"approve": True}))
        try:
            for step in steps.RUNBOOK[:-1]:
                step.module.apply(session, step.module.plan(session))
        finally:
            session.close()
        yield sandbox


@pytest.fixture
def session(box: Any) -> Iterator[Session]:
    s = connect(load_parameters(SANDBOX, {"approve": True}))
    yield s
    s.close()


def the_eip(box: Any) -> str:
    (nat,) = box.cloud.nat_gateways.values()
    (eip,) = box.cloud.eips_of_nat(nat.nat_gateway_id)
    return str(eip.ip_address)


def by_path(result: Any, path: str) -> list[Any]:
    return [r for r in result.rows if r.path == path]


def leftover_pods(s: Session) -> list[str]:
    pods = kube.list_owned(s, "Pod", s.params.namespace)
    return [
        p["metadata"]["name"]
        for p in pods
        if (p["metadata"].get("labels") or {}).get(ownership.RUN_LABEL) == s.short_run_id
    ]


def test_verify_shows_the_eip_the_route_and_the_direct_path_blocked(
    box: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    result = steps.verify.run(session, steps.verify.plan(session))
    print(result)
    assert result.ok, str(result)
    eip = the_eip(box)
    (via,) = by_path(result, VIA)
    assert via.result == "pass" and via.status == 200
    assert via.source == eip and via.expected == eip
    assert via.route == "Ingress mse-ingress: www.aliyun.com/product/aliware/mse (Prefix)"
    (direct,) = by_path(result, DIRECT)
    assert direct.result == "pass" and direct.status is None
    assert direct.url == "http://www.aliyun.com/product/aliware/mse"  # no --connect-to
    assert direct.detail.startswith("blocked: no connection without the gateway")
    table = result.to_table()
    assert table.column("Path") == ["via gateway", "direct"]
    assert table.column("Source address")[0] == eip and "Fix" not in table.columns
    # verify.json carries the same rows as the table.
    saved = json.loads((tmp_path / "verify.json").read_text())
    assert [r["path"] for r in saved] == ["via gateway", "direct"]
    assert saved[0]["source_address"] == eip and saved[0]["expected_eip"] == eip
    assert saved[0]["http_status"] == 200 and saved[1]["result"] == "pass"
    assert leftover_pods(session) == []


def test_with_echo_url_the_echo_request_gives_the_address(box: Any) -> None:
    url = "http://www.aliyun.com/product/aliware/mse/ip"
    s = connect(load_parameters(SANDBOX, {"approve": True, "verify.echo_url": url}))
    try:
        plan = steps.verify.plan(s)
        assert f"then {url} (verify.echo_url)" in str(plan)
        result = steps.verify.verify(s)
    finally:
        s.close()
    print(result)
    assert result.ok, str(result)
    eip = the_eip(box)
    (echo,) = by_path(result, ECHO)
    assert echo.url == url and echo.source == eip and echo.result == "pass"
    assert echo.route.startswith("Ingress mse-ingress: www.aliyun.com/product/aliware/mse")
    (via,) = by_path(result, VIA)
    assert via.source == eip and "the echo_url answer shows the SNAT EIP" in via.detail


def test_an_snat_entry_for_the_nodes_vswitch_is_a_bypass_named_with_its_vswitch(
    box: Any, session: Session
) -> None:
    from alibabacloud_vpc20160428 import models as m

    nodes = next(v for v in box.cloud.vswitches.values() if v.vswitch_name == "nodes")
    (nat,) = box.cloud.nat_gateways.values()
    table = nat.snat_table_id
    eip = the_eip(box)
    created = session.vpc.create_snat_entry(
        m.CreateSnatEntryRequest(
            region_id=session.params.region_id,
            snat_table_id=table,
            source_vswitch_id=nodes.vswitch_id,
            snat_ip=eip,
            snat_entry_name="nodes-internet",
        )
    )
    entry_id = created.body.snat_entry_id
    try:
        steps.snat.wait_available(session, table, entry_id)
        result = steps.verify.verify(session)
        print(result)
        (via,) = by_path(result, VIA)
        assert via.result == "pass"  # the gateway still works
        (direct,) = by_path(result, DIRECT)
        assert direct.result == "fail" and direct.status == 200
        assert direct.source == eip
        assert f"HTTP 200 without the gateway, from {eip}" in direct.detail
        assert f"pods on {nodes.vswitch_id} have their own way out" in direct.detail
        assert f"SNAT entry {entry_id} (nodes-internet, SourceVSwitchId {nodes.vswitch_id}" in (
            direct.fix
        )
        table_text = str(result.to_table())
        assert "Fix" in table_text and nodes.vswitch_id in table_text
        with pytest.raises(StepFailed) as info:
            result.raise_for_failures()
        err = info.value
        assert "1 destination(s) reachable without the gateway" in str(err)
        assert f"Remove that SNAT entry (SNAT entry {entry_id}" in err.remedy
        assert "scope it to the gateway's vSwitch(es) vsw-bp1o4rx9sl4yptgxte33g" in err.remedy
        assert "Pods then egress only through the gateway" in err.remedy
    finally:
        session.vpc.delete_snat_entry(
            m.DeleteSnatEntryRequest(
                region_id=session.params.region_id, snat_table_id=table, snat_entry_id=entry_id
            )
        )
    assert leftover_pods(session) == []


def test_a_policy_that_refuses_the_pod_fails_naming_its_key(box: Any) -> None:
    deny = {"source_ips": {"deny": ["127.244.0.0/16"]}}
    dest = load_parameters(SANDBOX).destinations[0].model_dump()
    params = load_parameters(
        SANDBOX, {"approve": True, "destinations": [{**dest, "policies": deny}]}
    )
    s = connect(params)
    try:
        steps.ingress.apply(s, steps.ingress.plan(s))
        result = steps.verify.verify(s)
    finally:
        plain = connect(load_parameters(SANDBOX, {"approve": True}))
        try:
            steps.ingress.apply(plain, steps.ingress.plan(plain))
        finally:
            plain.close()
            s.close()
    print(result)
    (via,) = by_path(result, VIA)
    assert via.result == "fail" and via.status == 403
    assert "destinations[0].policies.source_ips.deny (127.244.0.0/16)" in via.fix
    with pytest.raises(StepFailed) as info:
        result.raise_for_failures()
    assert "destinations[0].policies.source_ips.deny is 127.244.0.0/16" in info.value.remedy


def test_the_policies_file_verifies_every_destination_tls_offload_over_https(box: Any) -> None:
    old = connect(load_parameters(SANDBOX, {"approve": True}))
    try:
        steps.teardown.apply(old, steps.teardown.plan(old))
    finally:
        old.close()
    s = connect(load_parameters(POLICIES, {"approve": True}))
    try:
        for step in steps.RUNBOOK[:-1]:
            step.module.apply(s, step.module.plan(s))
        result = steps.verify.verify(s)
    finally:
        s.close()
    print(result)
    assert result.ok, str(result)
    eip = the_eip(box)
    via = {r.destination: r for r in by_path(result, VIA)}
    assert via["payments"].url == "https://api.payments.example/"  # tls_offload: pods use 443
    assert {r.source for r in via.values()} == {eip}
    assert [r.result for r in by_path(result, DIRECT)] == ["pass"] * 3
    assert by_path(result, DIRECT)[0].url == "https://api.payments.example/"
