"""Parameter validation: every problem names the key path, the value and what is expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from egress_lib.errors import ParameterError
from egress_lib.parameters import Parameters, load_parameters

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "parameters" / "sandbox.yaml"


def test_shipped_parameter_files_validate() -> None:
    p = load_parameters(SANDBOX)
    assert p.approve is True
    assert p.destinations[0].ingress == "mse-ingress"
    example = load_parameters(ROOT / "parameters" / "example-ack.yaml")
    assert example.target == "aliyun" and example.approve is False


def bad(overrides: dict[str, Any]) -> ParameterError:
    with pytest.raises(ParameterError) as info:
        load_parameters(SANDBOX, overrides=overrides)
    return info.value


@pytest.mark.parametrize(
    ("key", "value", "expected_text"),
    [
        ("gateway.vswitches.0", "vsw_1", "'vsw-' followed by lowercase letters and digits"),
        ("cluster_id", "c123", "'c' followed by 32 lowercase hex digits"),
        ("snat.nat_gateway_id", "nat-123", "'ngw-'"),
        ("region_id", "Hangzhou", "cn-hangzhou"),
        ("snat.snat_ip", "47.96.1", "an EIP"),
        ("namespace", "Default", "at most 63 lowercase"),
        ("gateway.config_name", "Egress_GW", "lowercase DNS labels"),
        ("destinations.0.host", "http://www.aliyun.com", "without scheme"),
        ("destinations.0.host", "10.0.0.1", "DNS host name"),
        ("destinations.0.path", "product", "starting with '/'"),
        ("destinations.0.path_type", "Regex", "'Prefix', 'Exact' or 'ImplementationSpecific'"),
        ("destinations.0.port", 0, "greater than or equal to 1"),
        ("destinations.0.port", 70000, "less than or equal to 65535"),
        ("destinations.0.backend_protocol", "GRPC", "'HTTP' or 'HTTPS'"),
        ("gateway.spec", "3c6g", "'2c4g', '4c8g', '8c16g' or '16c32g'"),
        ("gateway.replicas", 31, "less than or equal to 30"),
        ("gateway.private_slb_spec", "slb.s4.small", "slb.s3.large"),
        ("target", "aws", "'sandbox' or 'aliyun'"),
        ("verify.timeout_seconds", 0, "greater than or equal to 1"),
        ("verify.timeout_seconds", 3601, "less than or equal to 3600"),
        ("schema_version", 2, "1"),
    ],
)
def test_bad_value_names_path_value_and_expectation(
    key: str, value: Any, expected_text: str
) -> None:
    err = bad({key: value})
    path = key.replace(".0", "[0]")
    assert err.path == path
    assert err.value == value
    assert expected_text in err.expected
    assert path in str(err) and repr(value) in str(err)


def test_vswitch_message_reads_well() -> None:
    err = bad({"gateway.vswitches.0": "vsw_1"})
    assert (
        "gateway.vswitches[0]: 'vsw_1' is not a vSwitch ID; expected 'vsw-' followed by "
        "lowercase letters and digits" in str(err)
    )


def test_unknown_key_suggests_nearest() -> None:
    err = bad({"gateway.replics": 3})
    assert err.path == "gateway.replics"
    assert "did you mean 'replicas'" in str(err)


def test_wrong_types_are_reported_not_coerced() -> None:
    err = bad({"destinations.0.port": [80], "approve": "maybe"})
    paths = {p.path for p in err.problems}
    assert paths == {"destinations[0].port", "approve"}
    assert "wrong type" in str(err)


def test_all_problems_in_one_error() -> None:
    err = bad({"cluster_id": "x", "gateway.spec": "1c1g", "namespace": "A"})
    assert len(err.problems) == 3
    assert "3 invalid parameters" in str(err)


def test_missing_required_key() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters({"cluster_name": "x", "region_id": "cn-hangzhou"})
    paths = {p.path for p in info.value.problems}
    assert {"cluster_id", "gateway", "destinations"} <= paths


@pytest.mark.parametrize(
    ("vswitches", "fragment"),
    [([], "at least 1"), (["vsw-aaaaaaaa1", "vsw-aaaaaaaa2", "vsw-aaaaaaaa3"], "at most 2")],
)
def test_vswitch_count(vswitches: list[str], fragment: str) -> None:
    err = bad({"gateway.vswitches": vswitches})
    assert err.path == "gateway.vswitches" and fragment in err.expected


def test_duplicate_vswitches() -> None:
    err = bad({"gateway.vswitches": ["vsw-aaaaaaaa1", "vsw-aaaaaaaa1"]})
    assert err.path == "gateway.vswitches[1]"


def _dest(**kw: Any) -> dict[str, Any]:
    return {"name": "a", "host": "a.example.com", "port": 80, **kw}


def test_duplicate_destination_names_and_routes() -> None:
    err = bad({"destinations": [_dest(), _dest(path="/x"), _dest(name="b")]})
    assert [p.path for p in err.problems] == ["destinations[1].name", "destinations[2].path"]


def test_shared_ingress_needs_same_protocol() -> None:
    err = bad(
        {
            "destinations": [
                _dest(ingress_name="i"),
                _dest(
                    name="b",
                    host="b.example.com",
                    port=443,
                    backend_protocol="HTTPS",
                    ingress_name="i",
                ),
            ]
        }
    )
    assert err.path == "destinations[1].backend_protocol"
    assert "'HTTP'" in err.expected


def test_https_on_odd_port_is_a_note() -> None:
    p = load_parameters(SANDBOX, {"destinations.0.backend_protocol": "HTTPS"})
    assert p.notes and "443" in p.notes[0]


def test_wildcard_host_allowed() -> None:
    assert load_parameters(SANDBOX, {"destinations.0.host": "*.aliyun.com"}).destinations[0].host


def test_string_overrides_are_read_as_yaml() -> None:
    p = load_parameters(SANDBOX, {"approve": "false", "gateway.replicas": "2"})
    assert p.approve is False and p.gateway.replicas == 2


def test_bad_override_path() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(SANDBOX, {"destinations.5.port": 80})
    assert info.value.path == "destinations.5"


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("cluster_name: x\ngateway: [\n  spec: 2c4g\n", encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        load_parameters(f)
    assert "line" in info.value.path and "column" in info.value.path
    assert str(f) in str(info.value)


def test_root_must_be_mapping(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="mapping"):
        load_parameters(f)


def test_from_namespace_picks_schema_keys() -> None:
    data = load_parameters(SANDBOX).model_dump()
    ns: dict[str, object] = {**data, "In": [], "Out": {}, "some_helper": object()}
    assert Parameters.from_namespace(ns) == load_parameters(SANDBOX)


def test_defaults() -> None:
    p = load_parameters(SANDBOX)
    assert p.timeouts.gateway_seconds == 900
    assert p.controller.addon_name == "mse-ingress-controller" and p.controller.version is None
