"""Parameter validation: every problem names the key path, the value and what is expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from egress_lib.errors import ParameterError
from egress_lib.parameters import Parameters, load_parameters
from egress_lib.validators import looks_like_credential

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "parameters" / "sandbox.yaml"
EXAMPLE = ROOT / "parameters" / "example-ack.yaml"
CLUSTER_ID = "c0123456789abcdef0123456789abcdef"


def test_shipped_parameter_files_validate() -> None:
    p = load_parameters(SANDBOX)
    assert p.approve is False  # `make demo` approves explicitly
    assert p.adopt == []
    assert p.destinations[0].ingress == "mse-ingress"
    example = load_parameters(EXAMPLE)
    assert example.target == "aliyun" and example.approve is False and example.adopt == []


def test_shipped_files_spell_out_every_key() -> None:
    for path in (SANDBOX, EXAMPLE):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert list(data) == list(Parameters.model_fields), path.name


def minimal(**kw: Any) -> dict[str, Any]:
    """The fewest keys a valid file needs (target sandbox unless ``kw`` says otherwise)."""
    return {
        "cluster_name": "c1",
        "cluster_id": CLUSTER_ID,
        "gateway": {"vswitches": ["vsw-bp1exampleexample0001"]},
        "destinations": [{"name": "a", "host": "a.example.com", "port": 80}],
        **kw,
    }


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


def test_unknown_key_far_from_every_known_one_gets_no_guess() -> None:
    err = bad({"gateway.zone": "cn-hangzhou-h"})  # difflib's 0.5 offered 'name'
    assert "unknown key 'zone'; expected one of the keys config_name," in str(err)


def test_missing_key_says_what_it_holds() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(gateway={"vswitch": ["vsw-bp1exampleexample0001"]}))
    by_path = {p.path: str(p) for p in info.value.problems}
    assert by_path["gateway.vswitches"] == (
        "gateway.vswitches: required key is missing; expected a value for this required key: "
        "1 or 2 dedicated vSwitch IDs (primary first) in the cluster's VPC; the SNAT entry is "
        "added for these"
    )
    assert "did you mean 'vswitches'?" in by_path["gateway.vswitch"]


def test_a_list_too_long_shows_the_list() -> None:
    three = ["vsw-aaaaaaaa1", "vsw-aaaaaaaa2", "vsw-aaaaaaaa3"]
    assert str(bad({"gateway.vswitches": three}).problems[0]) == (
        f"gateway.vswitches: {three!r} has 3 items; expected at most 2 items"
    )


def test_the_only_schema_version() -> None:
    assert "schema_version: 2 is not allowed; expected 1" in str(bad({"schema_version": 2}))


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
    assert paths == {"cluster_id", "gateway", "destinations"}


def test_schema_defaults_fill_everything_else() -> None:
    p = load_parameters(minimal())
    assert p.approve is False
    assert p.region_id == "cn-hangzhou"  # the sandbox's region
    assert p.adopt == [] and p.namespace == "default" and p.gateway.replicas == 3
    assert p.snat.nat_gateway_id is None and p.verify.timeout_seconds == 60


def test_gateway_vswitches_are_required() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(gateway={"replicas": 2}))
    assert info.value.path == "gateway.vswitches"


def test_region_id_is_required_for_aliyun() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(target="aliyun"))
    assert [p.path for p in info.value.problems] == ["region_id"]
    assert "required" in str(info.value) and "aliyun" in info.value.expected
    assert load_parameters(minimal(target="aliyun", region_id="cn-beijing")).region_id == (
        "cn-beijing"
    )


def test_region_id_is_reported_with_the_other_problems() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(target="aliyun", namespace="Bad"))
    assert {p.path for p in info.value.problems} == {"region_id", "namespace"}


def test_every_field_has_help_text() -> None:
    from pydantic import BaseModel

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            inner = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type)]
            for t in [ann, *inner]:
                if isinstance(t, type) and issubclass(t, BaseModel):
                    walk(t)

    walk(Parameters)


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


@pytest.mark.parametrize("host", ["*.aliyun.com", "*aliyun.com", "www.*.com", "*"])
def test_wildcard_host_refused(host: str) -> None:
    # An ExternalName Service needs one name; it used to pass here and fail at step 04.
    err = bad({"destinations.0.host": host})
    assert err.path == "destinations[0].host" and err.value == host
    assert str(err).endswith(
        f"destinations[0].host: {host!r} is a wildcard; expected a concrete host name such as "
        "'api.example.com': an ExternalName Service needs one; a wildcard Ingress host is not "
        "supported (list each host as its own destination)"
    )


@pytest.mark.parametrize(
    ("host", "problem", "expected"),
    [
        (
            "Www.Aliyun.com",
            "is not a host name: it has upper-case letters",
            "'www.aliyun.com' (DNS names in lowercase)",
        ),
        (
            "www_aliyun.com",
            "is not a host name: it contains '_'",
            "an underscore is no part of a host name",
        ),
        (
            "www.aliyun.com:443",
            "is not a host name: it has a port",
            "('www.aliyun.com'); the port is its own key",
        ),
        (
            "www.aliyun.com.",
            "is not a host name: it ends with '.'",
            "'www.aliyun.com' (without the root dot)",
        ),
        ("aliyun", "is not a host name: it is a single label", "a fully qualified name"),
        (
            "a" * 64 + ".example.com",
            "is not a host name: a label is over 63 characters",
            "a lowercase DNS name",
        ),
        ("[::1]", "is an IP address", "not IPs"),
    ],
)
def test_each_bad_host_says_what_is_wrong(host: str, problem: str, expected: str) -> None:
    err = bad({"destinations.0.host": host})
    assert f"{host!r} {problem}; expected " in str(err) and expected in err.expected


def test_sni_wildcard_refused_as_a_server_name() -> None:
    err = bad({"destinations.0.sni": "*.aliyun.com"})
    assert err.path == "destinations[0].sni" and "one host name" in err.expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("eip-bp1abc2def3ghi4jkl", "its IpAddress, not its ID"),
        ("47.96.1.2,47.96.1.3", "one EIP"),
        ("10.0.0.7", "is in 10.0.0.0/8, a private or special range that no EIP is in"),
        ("127.16.2.1", "is in 127.0.0.0/8"),
        ("47.96.1.2/32", "is not an IPv4 address"),
    ],
)
def test_snat_ip_must_be_an_eip_address(value: str, fragment: str) -> None:
    err = bad({"snat.snat_ip": value})
    assert err.path == "snat.snat_ip" and fragment in str(err)


def test_a_public_snat_ip_passes() -> None:
    assert load_parameters(SANDBOX, {"snat.snat_ip": "47.96.1.2"}).snat.snat_ip == "47.96.1.2"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/a//b", "contains '//'"),
        ("/a/./b", "contains '/./'"),
        ("/a/../b", "contains '/../'"),
        ("/a%2Fb", "contains '%2F'"),
        ("/a/..", "contains '/..'"),
        ("/a/.", "contains '/.'"),
        ("/a?b=1", "contains '?'"),
        ("/a#top", "contains '#'"),
    ],
)
def test_paths_the_ingress_api_refuses(path: str, fragment: str) -> None:
    err = bad({"destinations.0.path": path})
    assert err.path == "destinations[0].path" and f"{path!r} {fragment}" in str(err)


def test_string_overrides_are_read_as_yaml() -> None:
    p = load_parameters(SANDBOX, {"approve": "false", "gateway.replicas": "2"})
    assert p.approve is False and p.gateway.replicas == 2


def test_bad_override_path() -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(SANDBOX, {"destinations.5.port": 80})
    assert info.value.path == "destinations.5.port"  # the dotted key as given
    assert "no item '5'" in str(info.value)


def test_dotted_override_creates_a_missing_mapping_where_the_schema_has_one() -> None:
    p = load_parameters(minimal(), {"snat.snat_ip": "47.96.1.2", "verify.timeout_seconds": "5"})
    assert p.snat.snat_ip == "47.96.1.2" and p.verify.timeout_seconds == 5
    assert p.snat.entry_name == "egress-gateway"  # the rest of snat: schema defaults


def test_dotted_override_into_an_existing_mapping() -> None:
    p = load_parameters(SANDBOX, {"gateway.replicas": "2", "destinations.0.port": "8080"})
    assert p.gateway.replicas == 2 and p.destinations[0].port == 8080
    assert p.gateway.vswitches == load_parameters(SANDBOX).gateway.vswitches


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("gatway.replicas", "did you mean 'gateway'"),
        ("gateway.replics", "did you mean 'replicas'"),
        ("destinations.0.hots", "did you mean 'host'"),
        ("cluster_name.x", "cluster_name is a single value"),
        ("gateway.vswitches.3", "gateway.vswitches has 1 item(s)"),
        ("destinations.x.port", "no item 'x'"),
    ],
)
def test_bad_dotted_override_names_the_dotted_key(key: str, fragment: str) -> None:
    err = bad({key: "1"})
    assert err.path == key
    assert fragment in str(err)


def test_dotted_override_never_creates_a_list() -> None:
    data = minimal()
    del data["destinations"]
    with pytest.raises(ParameterError) as info:
        load_parameters(data, {"destinations.0.port": 80})
    assert info.value.problems[0].path == "destinations.0.port"
    assert "is a list, so it cannot be created" in str(info.value)


def test_defaults_file_and_overrides_are_validated_together() -> None:
    # The override makes the file a real-cluster one: now region_id has no default.
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(), {"target": "aliyun", "gateway.replicas": "31"})
    assert {p.path for p in info.value.problems} == {"region_id", "gateway.replicas"}
    # ...and an override can supply what the file lacks.
    p = load_parameters(minimal(), {"target": "aliyun", "region_id": "cn-beijing"})
    assert p.target == "aliyun" and p.region_id == "cn-beijing"


def test_to_injectable_is_complete_json_and_round_trips() -> None:
    p = load_parameters(minimal(), {"approve": "true"})
    data = p.to_injectable()
    assert list(data) == list(Parameters.model_fields)
    assert json.loads(json.dumps(data)) == data
    assert data["region_id"] == "cn-hangzhou" and data["approve"] is True
    gateway = data["gateway"]
    assert isinstance(gateway, dict) and gateway["replicas"] == 3
    assert load_parameters(data) == p


# --- adopt --------------------------------------------------------------------------------


def test_adopt_lists_objects_the_runbook_may_take_over() -> None:
    refs = [
        "Service/aliyun-svc-external",
        "Ingress/mse-ingress",
        "IngressClass/mse",
        "MseIngressConfig/egress-gateway",
        "SnatEntry/snat-bp1abc2def3ghi4jkl",
    ]
    p = load_parameters(SANDBOX, {"adopt": refs})
    assert p.adopt == refs
    assert p.adopts("Ingress", "mse-ingress")
    assert p.adopts("SnatEntry", "snat-bp1abc2def3ghi4jkl")
    assert not p.adopts("Service", "mse-ingress")
    assert not load_parameters(SANDBOX).adopts("Ingress", "mse-ingress")


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("mse-ingress", "is not a 'Kind/name' reference"),
        ("Ingress/", "is not a 'Kind/name' reference"),
        ("Deployment/x", "'Deployment' is not a kind the runbook can adopt"),
        ("ingress/mse-ingress", "case-sensitive: 'Ingress'"),
        ("Service/Bad_Name", "'Bad_Name' is not a valid Service name"),
        ("SnatEntry/egress-gateway", "'egress-gateway' is not a valid SnatEntry name"),
    ],
)
def test_bad_adopt_entry_names_index_value_and_form(entry: str, fragment: str) -> None:
    err = bad({"adopt": ["IngressClass/mse", entry]})
    assert err.path == "adopt[1]" and err.value == entry
    assert fragment in str(err)
    assert "Kind/" in err.expected or "<name>" in err.expected


def test_adopt_entry_must_be_a_string() -> None:
    err = bad({"adopt": [3]})
    assert err.path == "adopt[0]" and "wrong type" in str(err)


def test_adopt_duplicates() -> None:
    err = bad({"adopt": ["Ingress/a", "Service/a", "Ingress/a"]})
    assert err.path == "adopt[2]" and "adopt[0]" in str(err)


# --- credentials --------------------------------------------------------------------------

SECRET = "LTAI5tSuperSecretValue0123456789"


def _assert_refused(err: ParameterError, path: str) -> None:
    problem = next(p for p in err.problems if p.path == path)
    assert problem.value == "<redacted>"
    assert path in problem.problem and "credential" in problem.problem
    for source in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "~/.aliyun/config.json", "RAM role", "RRSA"):
        assert source in problem.expected
    assert "kubeconfig" in problem.expected
    assert SECRET not in str(err) and SECRET not in repr(err.problems)
    assert SECRET not in repr(err.args) and SECRET not in repr(err.value)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"access_key_id": SECRET}, "access_key_id"),
        ({"AccessKeySecret": SECRET}, "AccessKeySecret"),
        ({"sts": SECRET}, "sts"),
        (
            {"gateway": {"vswitches": ["vsw-bp1exampleexample0001"], "Token": SECRET}},
            "gateway.Token",
        ),
        (
            {
                "destinations": [
                    {"name": "a", "host": "a.example.com", "port": 80, "passwd": SECRET}
                ]
            },
            "destinations[0].passwd",
        ),
    ],
)
def test_credentials_in_the_file_are_refused_and_never_shown(
    data: dict[str, Any], path: str
) -> None:
    base = minimal()
    for key, value in data.items():
        base[key] = value
    with pytest.raises(ParameterError) as info:
        load_parameters(base)
    _assert_refused(info.value, path)


def test_credentials_in_a_yaml_file_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        SANDBOX.read_text(encoding="utf-8") + f"bearer_token: {SECRET}\n", encoding="utf-8"
    )
    with pytest.raises(ParameterError) as info:
        load_parameters(f)
    _assert_refused(info.value, "bearer_token")
    assert len(info.value.problems) == 1  # the rest of the file is fine


@pytest.mark.parametrize("key", ["password", "snat.security_token", "gateway.credentials.x"])
def test_credentials_in_overrides_are_refused(key: str) -> None:
    err = bad({key: SECRET})
    _assert_refused(err, key)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("access_key", True),
        ("AccessKeyId", True),
        ("access-key-secret", True),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", True),
        ("client_secret", True),
        ("Password", True),
        ("passwd", True),
        ("credential_file", True),
        ("bearer", True),
        ("sts_role_arn", True),
        ("StsRole", True),
        ("hosts", False),
        ("destinations", False),
        ("ingress_status_seconds", False),
        ("kubeconfig", False),
        ("cluster_id", False),
    ],
)
def test_looks_like_credential(key: str, expected: bool) -> None:
    assert looks_like_credential(key) is expected


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


# --- from_namespace ----------------------------------------------------------------------


def notebook_ns(**extra: object) -> dict[str, object]:
    """A notebook's globals after its parameters cell ran: the sandbox values, approve True."""
    ns: dict[str, object] = {**load_parameters(SANDBOX).model_dump(mode="json"), "approve": True}
    ns["In"] = ["", "# Defaults target the sandbox...\ncluster_name: str = 'sandbox'\n"]
    ns["Out"] = {}
    ns["some_helper"] = object()
    ns.update(extra)
    return ns


def inject(ns: dict[str, object], values: dict[str, object]) -> dict[str, object]:
    """What papermill does: an injected cell (first line "# Parameters") that ran."""
    src = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    history = ns["In"]
    assert isinstance(history, list)
    return {**ns, **values, "In": [*history, src]}


def real_cluster() -> dict[str, object]:
    return {
        "cluster_name": "prod",
        "target": "aliyun",
        "region_id": "cn-beijing",
        "cluster_id": CLUSTER_ID,
        "gateway": {"vswitches": ["vsw-bp1exampleexample0001"]},
        "destinations": [{"name": "a", "host": "a.example.com", "port": 80}],
    }


def test_from_namespace_without_injected_cell_uses_the_notebook_values() -> None:
    p = Parameters.from_namespace(notebook_ns())
    assert p == load_parameters(SANDBOX, {"approve": True})


def test_from_namespace_uses_only_injected_names() -> None:
    p = Parameters.from_namespace(inject(notebook_ns(), real_cluster()))
    assert p.cluster_name == "prod" and p.cluster_id == CLUSTER_ID
    assert p.approve is False  # not injected: the schema's default, not the cell's True
    assert p.gateway.replicas == 3 and p.destinations[0].name == "a"


def test_from_namespace_required_key_not_injected_is_an_error() -> None:
    values = real_cluster()
    del values["cluster_id"]
    with pytest.raises(ParameterError) as info:
        Parameters.from_namespace(inject(notebook_ns(), values))  # the cell has a cluster_id
    assert [p.path for p in info.value.problems] == ["cluster_id"]
    assert "cluster_id" in str(info.value) and "injected" in str(info.value)


def test_from_namespace_aliyun_region_not_injected_is_an_error() -> None:
    values = real_cluster()
    del values["region_id"]
    with pytest.raises(ParameterError) as info:
        Parameters.from_namespace(inject(notebook_ns(), values))
    assert info.value.path == "region_id"


def test_from_namespace_injected_approve() -> None:
    p = Parameters.from_namespace(inject(notebook_ns(), {**real_cluster(), "approve": True}))
    assert p.approve is True


def test_from_namespace_injected_to_injectable_round_trips() -> None:
    want = load_parameters(real_cluster())
    assert Parameters.from_namespace(inject(notebook_ns(), want.to_injectable())) == want


def test_from_namespace_unknown_injected_key() -> None:
    ns = inject(notebook_ns(), {**real_cluster(), "gatway": {}})
    with pytest.raises(ParameterError) as info:
        Parameters.from_namespace(ns)
    assert info.value.path == "gatway" and "did you mean 'gateway'" in str(info.value)


def test_from_namespace_injected_credential_is_refused() -> None:
    ns = inject(notebook_ns(), {**real_cluster(), "access_key_secret": SECRET})
    with pytest.raises(ParameterError) as info:
        Parameters.from_namespace(ns)
    _assert_refused(info.value, "access_key_secret")


def test_from_namespace_injected_nested_credential_is_refused() -> None:
    values = real_cluster()
    values["gateway"] = {"vswitches": ["vsw-bp1exampleexample0001"], "token": SECRET}
    with pytest.raises(ParameterError) as info:
        Parameters.from_namespace(inject(notebook_ns(), values))
    _assert_refused(info.value, "gateway.token")


def test_a_parameters_cell_starting_with_parameters_is_not_the_injected_cell() -> None:
    # Only papermill's own first line "# Parameters" marks the injected cell.
    ns = notebook_ns(In=["", "# Parameters: the defaults target the sandbox\napprove = True\n"])
    assert Parameters.from_namespace(ns).approve is True


def test_defaults() -> None:
    p = load_parameters(SANDBOX)
    assert p.timeouts.gateway_seconds == 900
    assert p.controller.addon_name == "mse-ingress-controller" and p.controller.version is None


def _uncommented(text: str, start: str, indent: str) -> Any:
    """The YAML of a commented example block starting at the line ``start``."""
    lines = text.splitlines()
    i = lines.index(start)
    block = [lines[i]]
    for line in lines[i + 1 :]:
        if not line.startswith(f"{indent}#   "):
            break
        block.append(line)
    return yaml.safe_load("\n".join(x.replace(f"{indent}# ", "", 1) for x in block))


def test_the_examples_commented_policies_validate_when_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["destinations"][1].update(_uncommented(text, "    # policies:", "    "))
    data["gateway"].update(_uncommented(text, "  #   ip_access_control:", "  "))
    p = load_parameters(data)
    assert set(p.destinations[1].policies.declared()) == set(
        type(p.destinations[1].policies).model_fields
    )
    assert p.gateway.ip_access_control is not None
    assert p.has_policies()


def test_a_bad_mapping_key_is_named_without_pydantics_marker() -> None:
    err = bad({"destinations.0.policies": {"request_headers": {"add": {"x y": "1"}}}})
    assert err.path == "destinations[0].policies.request_headers.add.x y"
    assert "[key]" not in str(err)


def test_a_scalar_where_a_mapping_belongs_lists_the_keys() -> None:
    err = bad({"snat": "ngw-1"})
    assert err.path == "snat"
    assert "'ngw-1' is not a mapping (str); expected a mapping with the keys nat_gateway_id" in (
        str(err)
    )


def test_two_allowed_values_read_as_either_or() -> None:
    err = bad({"target": "cloud"})
    assert "'cloud' is not allowed; expected 'sandbox' or 'aliyun'" in str(err)


def test_a_hostile_override_value_stays_a_string() -> None:
    # -p values are read as YAML with the file's limits: no RecursionError, no expansion.
    deep = "[" * 3000 + "]" * 3000
    err = bad({"gateway.vswitches": deep})
    assert err.path == "gateway.vswitches" and "has the wrong type (str)" in str(err)
    assert "characters)…" in str(err) and len(str(err)) < 600


def test_sandbox_home_is_made_absolute_for_the_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    p = load_parameters(minimal(sandbox_home="homes/a"))
    assert p.sandbox_home == str(tmp_path / "homes" / "a")
    assert load_parameters(minimal()).sandbox_home is None


@pytest.mark.parametrize(
    ("kw", "key", "expected"),
    [
        (
            {"target": "aliyun", "region_id": "cn-hangzhou", "sandbox_home": "/h"},
            "sandbox_home",
            "null for target aliyun",
        ),
        ({"profile": "prod"}, "profile", "null for target sandbox"),
    ],
)
def test_a_key_of_the_other_target_is_refused(kw: dict[str, Any], key: str, expected: str) -> None:
    with pytest.raises(ParameterError) as info:
        load_parameters(minimal(**kw))
    text = str(info.value)
    assert f"{key}:" in text and repr(kw[key]) in text and expected in text
