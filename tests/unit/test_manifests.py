"""The builders reproduce the seed procedure's YAML, plus only the ownership labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from egress_lib import manifests
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
