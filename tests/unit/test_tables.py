"""The one table renderer, and the tables, checks and code blocks the notebooks show."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from egress_lib.plan import Change, Plan, StepResult
from egress_lib.show import yaml_block
from egress_lib.steps import preflight
from egress_lib.steps.preflight import Check
from egress_lib.steps.verify import VerifyResult, VerifyRow
from egress_lib.tables import Table, cell_text, highlight, mark

LONG = "a detail that is much longer than fifty characters, which pandas would cut with an ellipsis"


def cells(html: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", html, flags=re.DOTALL)


def test_html_is_left_aligned_without_an_index_and_cuts_nothing() -> None:
    html = Table(["Name", "Detail"], [["a", LONG], ["<b>", None]])._repr_html_()
    assert cells(html, "th") == ["Name", "Detail"]  # no index column
    for tag in re.findall(r"<t[hd]\b[^>]*>", html):
        assert "text-align:left" in tag
    assert LONG in html and "…" not in html
    assert "white-space:pre-wrap" in html  # long text wraps instead
    assert "&lt;b&gt;" in html and "<b>" not in html[html.index("<tbody>") :]
    assert "margin:0.2em 0 0.8em 0" in html  # not centred as JupyterLab's CSS would


def test_text_columns_line_up_and_multiline_cells_stay_in_their_column() -> None:
    text = str(Table(["A", "Detail"], [["x", "first\nsecond"], ["longer", "z"]]))
    assert text.splitlines() == [
        "A       Detail",
        "x       first",
        "        second",
        "longer  z",
    ]
    assert repr(Table(["A"], [["x"]])) == "A\nx"


def test_an_empty_table_says_why() -> None:
    empty = Table(["SnatEntryId", "Status"], empty="stb-1 has no SNAT entries")
    assert str(empty).splitlines() == ["SnatEntryId  Status", "(stb-1 has no SNAT entries)"]
    assert "<i>stb-1 has no SNAT entries</i>" in empty._repr_html_()
    assert 'colspan="2"' in empty._repr_html_()
    assert str(Table((), empty="nothing read back")) == "(nothing read back)"


def test_cell_values_read_as_text() -> None:
    assert [cell_text(v) for v in (None, True, False, 200.0, 0.25, float("nan"), 80)] == [
        "",
        "yes",
        "no",
        "200",
        "0.25",
        "",
        "80",
    ]


def test_frames_round_trip_without_their_index() -> None:
    table = Table(["Port", "Matches CLB", "Id"], [[80, True, None]])
    frame = table.to_frame()
    assert list(frame.columns) == ["Port", "Matches CLB", "Id"]
    assert frame.iloc[0].tolist() == [80, True, None]
    back = Table.from_frame(pd.DataFrame({"x": [1]}, index=[7]))
    assert back.columns == ("x",) and back.rows == ((1,),)
    assert table.select("Id", "Port").columns == ("Id", "Port")
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table(["a", "b", "c"], [[1, 2]])


def test_marks_show_the_severity_only_when_failing() -> None:
    assert [mark(True), mark(True, "warning")] == ["✓", "✓"]
    assert mark(False, "warning") == "⚠ warning"
    assert mark(False) == "✗ error"
    html = Table(["Result"], [[mark(False)]])._repr_html_()
    assert "color:#cf222e" in html and "✗ error" in html


CHECKS = [
    Check("cluster running", True, "c1 state is running", fix="wait"),
    Check("shared vSwitch", False, "vsw-1 also hosts nodes", "warning", fix="use a new vSwitch"),
    Check("RBAC services", False, "missing verbs create", fix="grant them"),
]


def test_checks_table_marks_each_check_and_gives_the_fix_of_failed_ones() -> None:
    table = preflight.checks_table(CHECKS)
    assert table.columns == ("Result", "Check", "Detail", "Fix")
    assert table.rows == (
        ("✓", "cluster running", "c1 state is running", ""),  # passed: no severity, no fix
        ("⚠ warning", "shared vSwitch", "vsw-1 also hosts nodes", "use a new vSwitch"),
        ("✗ error", "RBAC services", "missing verbs create", "grant them"),
    )
    assert "error" not in str(preflight.checks_table(CHECKS[:1]))
    assert preflight.checks_table(CHECKS[:1]).columns == ("Result", "Check", "Detail")


def test_a_failed_check_names_the_fix_in_the_plan_and_in_failed_checks() -> None:
    changes = [Change("check", "Check", c.name, preflight._plan_detail(c)) for c in CHECKS]
    assert [c.detail for c in changes] == [
        "✓ c1 state is running",
        "⚠ warning: vsw-1 also hosts nodes; fix: use a new vSwitch",
        "✗ error: missing verbs create; fix: grant them",
    ]
    assert preflight.failed_checks(Plan("00-preflight", changes)) == (
        "RBAC services: missing verbs create; fix: grant them"
    )
    assert preflight.summary(CHECKS) == "1 of 3 checks passed, 1 failed ✗, 1 warning(s) ⚠"


def test_cloud_check_fixes_name_what_to_do() -> None:
    from types import SimpleNamespace

    gateway = SimpleNamespace(vswitches=["vsw-gw"])
    snat = SimpleNamespace(nat_gateway_id=None, snat_ip="1.2.3.4")
    verify = SimpleNamespace(image="curlimages/curl:8.10.1")
    params = SimpleNamespace(
        cluster_id="c1", gateway=gateway, snat=snat, verify=verify, kube_context=None
    )
    api = SimpleNamespace(configuration=SimpleNamespace(host="https://192.0.2.1:6443"))
    session = SimpleNamespace(params=params, api_client=api)
    facts = preflight.Facts(
        cluster={"state": "running", "vpc_id": "vpc-1", "vswitch_ids": ["vsw-cp"]},
        kubernetes_version="v1.30.1",
        vpc={"VpcId": "vpc-1"},
        vswitches=[{"VSwitchId": "vsw-gw"}],
        nat_gateways=[{"NatGatewayId": "ngw-1", "NetworkType": "internet"}],
        eips={"ngw-1": [{"IpAddress": "47.0.0.1"}]},
        gateway_vswitches=("vsw-gw",),
        # The nodes' vSwitch comes from the node pools, not from the cluster's vswitch_ids.
        node_pools=[{"scaling_group": {"vswitch_ids": ["vsw-gw"]}}],
    )
    found = {c.name: c for c in preflight.cloud_checks(session, facts)}  # type: ignore[arg-type]
    assert found["snat.snat_ip is an EIP of the NAT gateway"].fix.startswith(
        "set snat.snat_ip to one of 47.0.0.1"
    )
    shared = found["gateway vSwitches are not the nodes' vSwitches"]
    assert shared.mark == "⚠ warning" and "gateway.vswitches" in shared.fix
    assert "ACR namespace" in found["verify.image can be pulled by the nodes"].fix
    assert all(c.fix for c in found.values() if not c.ok)


def test_step_results_do_not_repeat_their_tables() -> None:
    frame = pd.DataFrame([["snat-1", "Available"]], columns=["SnatEntryId", "Status"])
    r = StepResult("03", [Change("create", "SnatEntry", "vsw-1", "snat-1")], [], {"snat": frame})
    assert "Available" not in str(r)
    assert "Available" not in r._repr_html_()  # the notebook shows the table in its own cell
    assert r.table("snat").rows == (("snat-1", "Available"),)
    pending = StepResult("03", applied=False)
    assert str(pending.table("snat")) == "(nothing read back: the plan was not applied)"


def test_a_summary_stands_for_the_changes_the_notebook_showed_already() -> None:
    checks = [Change("check", "Check", f"c{i}", "✓ fine") for i in range(3)]
    r = StepResult("00-preflight", checks, [], {}, ["w: x"], summary="3 of 3 checks passed")
    assert str(r) == "00-preflight: 3 of 3 checks passed"
    assert "c1" not in r._repr_html_() and "w: x" not in r._repr_html_()
    assert r.to_dict()["warnings"] == ["w: x"]  # the run record keeps them
    assert len(r.to_dict()["changes_applied"]) == 3


def test_plan_bodies_are_highlighted_yaml_or_diff() -> None:
    diff = "--- Service/a (live)\n+++ Service/a (after apply)\n@@ -1 +1 @@\n-x: 1\n+x: 2\n"
    plan = Plan(
        "04",
        [
            Change("create", "Service", "b", body="kind: Service\nmetadata:\n  name: b\n"),
            Change("update", "Service", "a", body=diff),
        ],
    )
    html = plan._repr_html_()
    create, update = re.findall(r"<details>.*?</details>", html, flags=re.DOTALL)
    assert "<summary>create Service/b</summary>" in create
    assert 'style="color: #008000; font-weight: bold">kind</span>' in create  # a YAML key
    assert "<span style=" in update and "+x: 2" in update  # diff lines, coloured
    assert "class=" not in create.replace('class="highlight"', "")  # inline styles only
    assert html == plan._repr_html_()  # deterministic: nbval compares it


def test_yaml_blocks_are_highlighted_and_say_when_there_is_nothing() -> None:
    block = yaml_block({"metadata": {"name": "a"}, "kind": "Service", "apiVersion": "v1"})
    assert str(block).startswith("apiVersion: v1\nkind: Service\nmetadata:")  # kind first
    assert "<span style=" in block._repr_html_()
    empty = yaml_block([], empty="not in the cluster yet: IngressClass mse")
    assert str(empty) == "not in the cluster yet: IngressClass mse"
    assert empty._repr_html_() == "<p><i>not in the cluster yet: IngressClass mse</i></p>"
    assert highlight("a: 1\n").count("<pre") == 1


def test_verify_table_marks_rows_and_points_a_503_at_the_snat_step() -> None:
    ok = VerifyRow("a", "via gateway", "http://a/", 200, "pass", "HTTP 200 via 127.0.0.9")
    bad = VerifyRow("b", "via gateway", "http://b/", 503, "fail", "HTTP 503: ...")
    table = VerifyResult([ok, bad]).to_table()
    assert table.columns[0] == "Result" and table.columns[-1] == "Fix"
    assert table.column("Result") == ["✓", "✗ error"]
    assert "03-configure-snat" in table.column("Fix")[1] and table.column("Fix")[0] == ""
    assert VerifyResult([ok]).to_table().columns[-1] == "Detail"  # no Fix column when all pass
    assert "not run" in str(VerifyResult(ran=False))
