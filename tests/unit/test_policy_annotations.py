"""Each policy's translation: the exact annotation keys and values, spec.tls, the
MseIngressConfig's ipAccessControl, the endpoints' Services and the policy table's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from egress_lib import manifests
from egress_lib.parameters import Parameters, load_parameters
from egress_lib.policy_annotations import (
    GATEWAY_ROW,
    MANAGED_ANNOTATIONS,
    PolicyRow,
    ingress_annotations,
    policy_rows,
)
from egress_lib.steps.gateway import _clear_dropped_lists

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "parameters" / "sandbox-policies.yaml"
N = "nginx.ingress.kubernetes.io/"
M = "mse.ingress.kubernetes.io/"


def params(policies: dict[str, Any], **dest: Any) -> Parameters:
    """sandbox.yaml with one destination carrying ``policies``."""
    one = {"name": "api", "host": "api.example.com", "port": 80, "policies": policies, **dest}
    return load_parameters(ROOT / "parameters" / "sandbox.yaml", overrides={"destinations": [one]})


def annotations(policies: dict[str, Any], **dest: Any) -> dict[str, str]:
    (ing,) = manifests.ingresses(params(policies, **dest))
    found: dict[str, str] = ing["metadata"].get("annotations", {})
    return found


def test_route_ip_lists() -> None:
    ann = annotations(
        {"source_ips": {"allow": ["10.0.0.0/8", "192.0.2.7"], "deny": ["10.1.0.0/16"]}}
    )
    assert ann == {
        N + "whitelist-source-range": "10.0.0.0/8,192.0.2.7",
        M + "blacklist-source-range": "10.1.0.0/16",
    }


def test_domain_ip_lists() -> None:
    ann = annotations({"domain_source_ips": {"allow": ["10.0.0.0/8"], "deny": ["10.9.0.0/16"]}})
    assert ann == {
        M + "domain-whitelist-source-range": "10.0.0.0/8",
        M + "domain-blacklist-source-range": "10.9.0.0/16",
    }


def test_an_empty_list_writes_nothing() -> None:
    assert annotations({"source_ips": {"allow": [], "deny": ["10.1.0.0/16"]}}) == {
        M + "blacklist-source-range": "10.1.0.0/16"
    }


def test_rate_limit_rps_with_burst() -> None:
    assert annotations({"rate_limit": {"rps": 5, "burst_multiplier": 2}}) == {
        M + "route-limit-rps": "5",
        M + "route-limit-burst-multiplier": "2",
    }


def test_rate_limit_rpm_keeps_msEs_default_burst() -> None:
    assert annotations({"rate_limit": {"rpm": 600}}) == {M + "route-limit-rpm": "600"}


def test_load_balancing_weights_and_algorithm() -> None:
    policies = {
        "load_balancing": {
            "algorithm": "least_conn",
            "weight": 70,
            "endpoints": [{"name": "api-backup", "host": "backup.example.net", "weight": 30}],
        }
    }
    assert annotations(policies) == {
        N + "load-balance": "least_conn",
        M + "destination": "70% api.default.svc.cluster.local:80\n"
        "30% api-backup.default.svc.cluster.local:80",
    }


def test_load_balancing_without_endpoints_is_the_algorithm_only() -> None:
    assert annotations({"load_balancing": {"algorithm": "random"}}) == {
        N + "load-balance": "random"
    }


def test_the_destination_annotation_is_a_yaml_block() -> None:
    p = params(
        {
            "load_balancing": {
                "weight": 50,
                "endpoints": [{"name": "b", "host": "b.example.net", "weight": 50}],
            }
        }
    )
    text = manifests.to_yaml(manifests.ingresses(p))
    assert (
        "    mse.ingress.kubernetes.io/destination: |-\n"
        "      50% api.default.svc.cluster.local:80\n"
        "      50% b.default.svc.cluster.local:80\n"
    ) in text


def test_each_endpoint_gets_an_external_name_service_like_the_destinations() -> None:
    p = params(
        {
            "load_balancing": {
                "weight": 60,
                "endpoints": [
                    {"name": "b1", "host": "b1.example.net", "weight": 20},
                    {"name": "b2", "host": "b2.example.net", "weight": 20},
                ],
            }
        },
        port=8443,
    )
    own, b1, b2 = manifests.external_name_services(p)
    assert [s["metadata"]["name"] for s in (own, b1, b2)] == ["api", "b1", "b2"]
    assert b1["spec"]["externalName"] == "b1.example.net"
    assert b2["spec"]["externalName"] == "b2.example.net"
    for svc in (b1, b2):
        assert svc["spec"]["ports"] == own["spec"]["ports"]
        assert svc["metadata"]["labels"] == own["metadata"]["labels"]
        assert svc["metadata"]["namespace"] == "default"
        assert svc["spec"]["type"] == "ExternalName"
    assert annotations(
        {
            "load_balancing": {
                "weight": 60,
                "endpoints": [
                    {"name": "b1", "host": "b1.example.net", "weight": 20},
                    {"name": "b2", "host": "b2.example.net", "weight": 20},
                ],
            }
        },
        port=8443,
    )[M + "destination"] == (
        "60% api.default.svc.cluster.local:8443\n"
        "20% b1.default.svc.cluster.local:8443\n"
        "20% b2.default.svc.cluster.local:8443"
    )


def test_retries() -> None:
    ann = annotations(
        {"retries": {"tries": 2, "timeout_seconds": 8, "conditions": ["error", "http_503"]}}
    )
    assert ann == {
        N + "proxy-next-upstream-tries": "2",
        N + "proxy-next-upstream-timeout": "8",
        N + "proxy-next-upstream": "error,http_503",
    }


def test_retries_tries_only() -> None:
    assert annotations({"retries": {"tries": 1}}) == {N + "proxy-next-upstream-tries": "1"}


def test_timeout() -> None:
    assert annotations({"timeout_seconds": 5}) == {M + "timeout": "5"}


def test_mirror_fills_in_the_namespace() -> None:
    assert annotations({"mirror": {"service": "audit:8080", "percentage": 25}}) == {
        M + "mirror-target-service": "default/audit:8080",
        M + "mirror-percentage": "25",
    }
    assert annotations({"mirror": {"service": "egress-audit/audit"}}) == {
        M + "mirror-target-service": "egress-audit/audit"
    }


def test_request_header_control() -> None:
    ann = annotations(
        {
            "request_headers": {
                "add": {"x-b": "2", "x-a": "1"},
                "update": {"user-agent": "egress gateway/1"},
                "remove": ["x-forwarded-for", "x-request-id"],
            }
        }
    )
    assert ann == {
        M + "request-header-control-add": "x-b 2\nx-a 1",  # in the order given
        M + "request-header-control-update": "user-agent egress gateway/1",
        M + "request-header-control-remove": "x-forwarded-for,x-request-id",
    }


def test_response_header_control() -> None:
    ann = annotations({"response_headers": {"add": {"x-via": "mse"}, "remove": ["server"]}})
    assert ann == {
        M + "response-header-control-add": "x-via mse",
        M + "response-header-control-remove": "server",
    }


def test_upstream_mtls_names_the_secret_with_its_namespace() -> None:
    ann = annotations(
        {"upstream_tls": {"client_certificate": "egress-client-cert"}},
        port=443,
        backend_protocol="HTTPS",
        sni="api.example.com",
    )
    assert ann == {
        N + "backend-protocol": "HTTPS",
        N + "proxy-ssl-name": "api.example.com",
        N + "proxy-ssl-server-name": "on",
        N + "proxy-ssl-secret": "default/egress-client-cert",
    }


def test_tls_offload_writes_spec_tls_and_the_version_range() -> None:
    p = params(
        {
            "tls_offload": {
                "certificate": "api-tls",
                "min_version": "TLSv1.2",
                "max_version": "TLSv1.3",
            }
        }
    )
    (ing,) = manifests.ingresses(p)
    assert ing["spec"]["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]
    assert list(ing["spec"]) == ["ingressClassName", "tls", "rules"]
    assert ing["metadata"]["annotations"] == {
        M + "tls-min-protocol-version": "TLSv1.2",
        M + "tls-max-protocol-version": "TLSv1.3",
    }


def test_tls_offload_without_versions_is_spec_tls_only() -> None:
    p = params({"tls_offload": {"certificate": "api-tls"}})
    (ing,) = manifests.ingresses(p)
    assert "annotations" not in ing["metadata"]
    assert ing["spec"]["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]


def test_gateway_wide_lists_go_to_the_mse_ingress_config() -> None:
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={"gateway.ip_access_control": {"allow": ["10.0.0.0/8"], "deny": ["10.0.9.0/24"]}},
    )
    spec = manifests.mse_ingress_config(p)["spec"]
    assert spec["global"] == {
        "ipAccessControl": {"whitelist": ["10.0.0.0/8"], "blacklist": ["10.0.9.0/24"]}
    }
    assert list(spec) == ["name", "common", "global"]


def test_gateway_wide_deny_only() -> None:
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={"gateway.ip_access_control": {"deny": ["192.0.2.0/24"]}},
    )
    spec = manifests.mse_ingress_config(p)["spec"]
    assert spec["global"] == {"ipAccessControl": {"blacklist": ["192.0.2.0/24"]}}


def test_a_list_dropped_from_the_parameters_is_cleared_on_the_live_config() -> None:
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={"gateway.ip_access_control": {"deny": ["192.0.2.0/24"]}},
    )
    live = {"spec": {"global": {"ipAccessControl": {"whitelist": ["10.0.0.0/8"]}}}}
    config = manifests.mse_ingress_config(p)
    _clear_dropped_lists(config, live)
    assert config["spec"]["global"]["ipAccessControl"] == {
        "blacklist": ["192.0.2.0/24"],
        "whitelist": [],
    }
    seed = load_parameters(ROOT / "parameters" / "sandbox.yaml")
    config = manifests.mse_ingress_config(seed)
    _clear_dropped_lists(config, live)
    assert config["spec"]["global"] == {"ipAccessControl": {"whitelist": []}}
    config = manifests.mse_ingress_config(seed)
    _clear_dropped_lists(config, None)
    _clear_dropped_lists(config, {"spec": {"global": {"ipAccessControl": {"whitelist": []}}}})
    assert config == manifests.mse_ingress_config(seed)  # nothing live: the seed's manifest


def test_annotations_come_in_a_stable_order() -> None:
    p = load_parameters(POLICIES)
    for ing in manifests.ingresses(p):
        keys = list(ing["metadata"].get("annotations", {}))
        assert keys == [k for k in MANAGED_ANNOTATIONS if k in keys]
    assert manifests.to_yaml(manifests.ingresses(p)) == manifests.to_yaml(
        manifests.ingresses(load_parameters(POLICIES))
    )


def test_destinations_sharing_an_ingress_write_one_set_of_annotations() -> None:
    shared = {"port": 80, "ingress_name": "shared", "policies": {"timeout_seconds": 7}}
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={
            "destinations": [
                {"name": "a", "host": "a.example.com", **shared},
                {"name": "b", "host": "b.example.com", **shared},
            ]
        },
    )
    (ing,) = manifests.ingresses(p)
    assert ing["metadata"]["annotations"] == {M + "timeout": "7"}
    assert ingress_annotations(p.destinations, p) == {M + "timeout": "7"}


def test_the_policy_table_rows_of_the_policies_file() -> None:
    rows = policy_rows(load_parameters(POLICIES))
    assert rows[0] == PolicyRow(
        GATEWAY_ROW,
        "ip_access_control",
        "gateway.ip_access_control.deny",
        "MseIngressConfig spec.global.ipAccessControl.blacklist",
        "192.0.2.0/24,198.51.100.0/24",
        "gateway",
    )
    by_param = {(r.parameter, r.target): r for r in rows}
    rps = by_param[("destinations[0].policies.rate_limit.rps", M + "route-limit-rps")]
    assert (rps.destination, rps.policy, rps.value, rps.scope) == (
        "payments",
        "rate_limit",
        "5",
        "route",
    )
    deny = by_param[
        ("destinations[2].policies.domain_source_ips.deny", M + "domain-blacklist-source-range")
    ]
    assert (deny.value, deny.scope) == ("127.0.0.0/10", "domain")
    tls = by_param[("destinations[0].policies.tls_offload.certificate", "Ingress spec.tls")]
    assert tls.value == "hosts [api.payments.example], secretName payments-gateway-tls"
    backup = by_param[
        (
            "destinations[1].policies.load_balancing.endpoints[0]",
            "ExternalName Service default/maps-backup",
        )
    ]
    assert backup.value == "api.maps-backup.example"
    declared = {r.policy for r in rows}
    assert set(load_parameters(POLICIES).destinations[0].policies.declared()) <= declared
    # Every annotation the manifests carry is a row of the table, with the same value.
    p = load_parameters(POLICIES)
    table = {(r.destination, r.target): r.value for r in rows if r.is_annotation}
    for ing in manifests.ingresses(p):
        name = ing["metadata"]["name"]
        for key, value in ing["metadata"]["annotations"].items():
            assert table[(name, key)] == value


def test_no_policies_no_rows_but_the_destination_keys() -> None:
    assert policy_rows(load_parameters(ROOT / "parameters" / "sandbox.yaml")) == []


def test_policies_file_manifests_parse_back_as_yaml() -> None:
    p = load_parameters(POLICIES)
    docs = list(yaml.safe_load_all(manifests.to_yaml(manifests.ingresses(p))))
    assert docs == manifests.ingresses(p)
