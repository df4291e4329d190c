"""Plan and StepResult rendering."""

from __future__ import annotations

from egress_lib.plan import Change, Plan, StepResult


def sample() -> Plan:
    return Plan(
        "02-create-gateway",
        [
            Change("create", "MseIngressConfig", "egress-gateway", "server dry run passed"),
            Change("unchanged", "IngressClass", "mse", "matches the server"),
            Change("wait", "MseIngressConfig", "egress-gateway", "phase Listening"),
        ],
        ["IngressClass mse <re-bound>"],
    )


def test_has_changes() -> None:
    assert sample().has_changes
    assert not Plan(
        "x", [Change("unchanged", "Service", "a"), Change("wait", "Pod", "b")]
    ).has_changes


def test_frame_columns_and_rows() -> None:
    df = sample().to_frame()
    assert list(df.columns) == ["Action", "Kind", "Name", "Detail"]
    assert df.iloc[0].tolist() == [
        "create",
        "MseIngressConfig",
        "egress-gateway",
        "server dry run passed",
    ]
    assert sample().to_table().rows[0] == tuple(df.iloc[0].tolist())  # what notebooks show


def test_text_table() -> None:
    text = str(sample())
    lines = text.splitlines()
    assert lines[0] == "Plan for 02-create-gateway: 1 change(s)"
    assert lines[1].split() == ["Action", "Kind", "Name", "Detail"]
    assert "warning: IngressClass mse <re-bound>" in text


def test_html_escapes() -> None:
    html = sample()._repr_html_()
    assert "<table" in html and "&lt;re-bound&gt;" in html


def test_empty_plan_text() -> None:
    assert str(Plan("x")) == "Plan for x: nothing to change"


def test_step_result() -> None:
    r = StepResult("04", [Change("create", "Service", "a", "created")])
    assert r.changed and "04: changed" in str(r)
    assert not StepResult("04", [Change("unchanged", "Service", "a")]).changed
