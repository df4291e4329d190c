"""The builders reproduce the seed procedure's YAML, plus only the ownership labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from egress_lib import manifests
from egress_lib.errors import ParameterError
from egress_lib.parameters import Parameters, load_parameters

SEED = Path(__file__).parent / "seed_manifests"
ROOT = Path(__file__).resolve().parents[2]


OWNED = {"app.kubernetes.io/managed-by": "egress-runbook", "egress-runbook/cluster": "sandbox"}


def seed(name: str) -> dict[str, Any]:
    """The seed's manifest with the ownership labels the runbook adds (and nothing else)."""
    doc: dict[str, Any] = yaml.safe_load((SEED / name).read_text(encoding="utf-8"))
    assert "labels" not in doc["metadata"]
    doc["metadata"]["labels"] = dict(OWNED)
    return doc


def seed_params(**dest: Any) -> Parameters:
    return load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={"gateway.vswitches": ["vsw-xxxx0000"], **dest},
    )


def test_mse_ingress_config_matches_seed() -> None:
    expected = seed("mse-ingress-config.yaml")
    expected["spec"]["common"]["network"]["vSwitches"] = ["vsw-xxxx0000"]  # seed has a placeholder
    assert manifests.mse_ingress_config(seed_params()) == expected


def test_service_matches_seed() -> None:
    p = seed_params()
    assert manifests.external_name_service(p.destinations[0], p) == seed("service.yaml")


def test_http_ingress_matches_seed() -> None:
    assert manifests.ingresses(seed_params()) == [seed("ingress-http.yaml")]


def test_https_ingress_matches_seed_without_status() -> None:
    expected = seed("ingress-https.yaml")
    expected.pop("status")  # written by the gateway, not by the runbook
    p = seed_params(**{"destinations.0.backend_protocol": "HTTPS", "destinations.0.port": 443})
    assert manifests.ingresses(p) == [expected]


def test_ingress_class_binds_the_config() -> None:
    assert manifests.ingress_class(seed_params()) == seed("ingress-class.yaml")


def test_other_port_adds_port3() -> None:
    p = seed_params(**{"destinations.0.port": 8443})
    ports = manifests.external_name_service(p.destinations[0], p)["spec"]["ports"]
    assert [x["port"] for x in ports] == [80, 443, 8443]


def test_destinations_sharing_an_ingress_are_merged() -> None:
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={
            "destinations": [
                {"name": "a", "host": "a.example.com", "port": 80, "ingress_name": "shared"},
                {
                    "name": "b",
                    "host": "a.example.com",
                    "port": 80,
                    "path": "/b",
                    "ingress_name": "shared",
                },
                {"name": "c", "host": "c.example.com", "port": 80, "ingress_name": "shared"},
            ]
        },
    )
    (ing,) = manifests.ingresses(p)
    assert [r["host"] for r in ing["spec"]["rules"]] == ["a.example.com", "c.example.com"]
    assert len(ing["spec"]["rules"][0]["http"]["paths"]) == 2


def test_to_yaml_keeps_key_order_and_block_style() -> None:
    text = manifests.to_yaml(manifests.ingresses(seed_params())[0])
    assert text.startswith("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n")
    assert "{" not in text
    assert yaml.safe_load(text) == seed("ingress-http.yaml")
    assert manifests.to_yaml([{"a": 1}, {"b": 2}]) == "a: 1\n---\nb: 2\n"


# ---- sni and upstream_vhost -------------------------------------------------------------------

HTTPS = {"destinations.0.backend_protocol": "HTTPS", "destinations.0.port": 443}


def annotations_of(p: Parameters) -> dict[str, str]:
    (ing,) = manifests.ingresses(p)
    found: dict[str, str] = ing["metadata"].get("annotations", {})
    return found


def test_sni_sets_the_name_and_turns_it_on() -> None:
    p = seed_params(**HTTPS, **{"destinations.0.sni": "www.aliyun.com"})
    assert annotations_of(p) == {
        "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
        "nginx.ingress.kubernetes.io/proxy-ssl-name": "www.aliyun.com",
        "nginx.ingress.kubernetes.io/proxy-ssl-server-name": "on",
    }
    # Annotation values are strings: "on" must not become YAML's boolean.
    assert "proxy-ssl-server-name: 'on'" in manifests.to_yaml(manifests.ingresses(p))


def test_upstream_vhost_rewrites_the_host_header() -> None:
    p = seed_params(**{"destinations.0.upstream_vhost": "origin.aliyun.com"})
    assert annotations_of(p) == {"nginx.ingress.kubernetes.io/upstream-vhost": "origin.aliyun.com"}


def test_sni_and_upstream_vhost_together() -> None:
    p = seed_params(
        **HTTPS,
        **{"destinations.0.sni": "origin.aliyun.com", "destinations.0.upstream_vhost": "a.cn"},
    )
    ann = annotations_of(p)
    assert ann["nginx.ingress.kubernetes.io/proxy-ssl-name"] == "origin.aliyun.com"
    assert ann["nginx.ingress.kubernetes.io/upstream-vhost"] == "a.cn"


def test_no_sni_no_vhost_keeps_the_seed_ingress() -> None:
    assert "annotations" not in manifests.ingresses(seed_params())[0]["metadata"]


def problems_of(overrides: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ParameterError) as info:
        seed_params(**overrides)
    return {p.path: str(p) for p in info.value.problems}


def test_sni_needs_https() -> None:
    found = problems_of({"destinations.0.sni": "www.aliyun.com"})
    assert list(found) == ["destinations[0].sni"]
    assert "'www.aliyun.com' is set with backend_protocol HTTP" in found["destinations[0].sni"]
    assert "expected backend_protocol HTTPS" in found["destinations[0].sni"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("*.aliyun.com", "is a wildcard"),
        ("https://www.aliyun.com", "is not a host name"),
        ("10.0.0.1", "is an IP address"),
        ("Www.Aliyun.com", "is not a host name"),
    ],
)
@pytest.mark.parametrize("key", ["sni", "upstream_vhost"])
def test_bad_server_names(key: str, value: str, fragment: str) -> None:
    found = problems_of({**HTTPS, f"destinations.0.{key}": value})
    text = found[f"destinations[0].{key}"]
    assert repr(value) in text and fragment in text


def test_destinations_sharing_an_ingress_agree_on_sni_and_vhost() -> None:
    shared = {"port": 443, "backend_protocol": "HTTPS", "ingress_name": "shared"}
    with pytest.raises(ParameterError) as info:
        load_parameters(
            ROOT / "parameters" / "sandbox.yaml",
            overrides={
                "destinations": [
                    {"name": "a", "host": "a.example.com", "sni": "a.example.com", **shared},
                    {"name": "b", "host": "b.example.com", "upstream_vhost": "b.cn", **shared},
                ]
            },
        )
    found = {p.path: str(p) for p in info.value.problems}
    assert set(found) == {"destinations[1].sni", "destinations[1].upstream_vhost"}
    assert "None conflicts with 'a.example.com'" in found["destinations[1].sni"]
    assert "like destinations[0], which shares Ingress 'shared'" in found["destinations[1].sni"]


# ---- policies leave the seed's manifests alone ----------------------------------------------


def test_without_policies_the_yaml_is_the_seeds_byte_for_byte() -> None:
    # Dict equality ignores key order; the YAML text does not.
    p = seed_params()
    config = seed("mse-ingress-config.yaml")
    config["spec"]["common"]["network"]["vSwitches"] = ["vsw-xxxx0000"]
    assert manifests.to_yaml(manifests.mse_ingress_config(p)) == manifests.to_yaml(config)
    assert manifests.to_yaml(manifests.external_name_services(p)) == manifests.to_yaml(
        [seed("service.yaml")]
    )
    assert manifests.to_yaml(manifests.ingresses(p)) == manifests.to_yaml(
        [seed("ingress-http.yaml")]
    )
    assert "global" not in manifests.mse_ingress_config(p)["spec"]


def test_a_destination_without_policies_beside_one_with_them_keeps_the_seeds_objects() -> None:
    p = load_parameters(
        ROOT / "parameters" / "sandbox.yaml",
        overrides={
            "gateway.vswitches": ["vsw-xxxx0000"],
            "destinations": [
                {
                    "name": "aliyun-svc-external",
                    "ingress_name": "mse-ingress",
                    "host": "www.aliyun.com",
                    "port": 80,
                    "path": "/product/aliware/mse",
                },
                {
                    "name": "limited",
                    "host": "api.example.com",
                    "port": 80,
                    "policies": {"rate_limit": {"rps": 5}, "timeout_seconds": 3},
                },
            ],
        },
    )
    seed_ingress, limited = manifests.ingresses(p)
    assert manifests.to_yaml(seed_ingress) == manifests.to_yaml(seed("ingress-http.yaml"))
    assert limited["metadata"]["annotations"] == {
        "mse.ingress.kubernetes.io/route-limit-rps": "5",
        "mse.ingress.kubernetes.io/timeout": "3",
    }
    assert [s["metadata"]["name"] for s in manifests.external_name_services(p)] == [
        "aliyun-svc-external",
        "limited",
    ]
