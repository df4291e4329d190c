"""The MseIngressConfig CustomResourceDefinition, as the MSE Ingress Controller installs it.

Field names, enums and ranges follow the "Configure an MseIngressConfig" page
(https://www.alibabacloud.com/help/en/mse/user-guide/configure-mseingressconfig). Details the docs
do not print are marked
UNCONFIRMED: the full CRD name, the short name ``mic``, cluster scope, and ``status.message``.
"""

from __future__ import annotations

from typing import Any

from egress_sandbox.k8s.types import ResourceType

GROUP = "mse.alibabacloud.com"
VERSION = "v1alpha1"
KIND = "MseIngressConfig"
PLURAL = "mseingressconfigs"
CRD_NAME = f"{PLURAL}.{GROUP}"  # UNCONFIRMED: standard naming, never printed in a doc
SHORT_NAMES = ("mic",)  # UNCONFIRMED: no doc shows a short name
PHASES = ("Pending", "Running", "Listening", "Failed")
SLB_SPECS = (
    "slb.s1.small",
    "slb.s2.small",
    "slb.s2.medium",
    "slb.s3.small",
    "slb.s3.medium",
    "slb.s3.large",
)

MSE_INGRESS_CONFIG = ResourceType(
    GROUP,
    VERSION,
    PLURAL,
    KIND,
    False,  # cluster-scoped: UNCONFIRMED, inferred from every doc example omitting -n
    "mseingressconfig",
    SHORT_NAMES,
    subresources=("status",),
)


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


def _str(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _sample_rate() -> dict[str, Any]:
    # The doc's example quotes it ("100"); accept a string only, as the example does.
    return _obj({"sampleRate": _str()})


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of v1alpha1: all spec fields optional, as documented."""
    network = _obj(
        {
            "vSwitches": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": _str(pattern="^vsw-"),
                "description": "Primary vSwitch first, then the secondary one.",
            },
            "publicSLBSpec": _str(enum=list(SLB_SPECS)),
            "privateSLBSpec": _str(enum=list(SLB_SPECS)),
        }
    )
    common = _obj(
        {
            "pay": _obj({"payType": _str(enum=["POSTPAY"])}),
            "instance": _obj(
                {
                    "spec": _str(enum=["2c4g", "4c8g", "8c16g", "16c32g"]),
                    "replicas": {"type": "integer", "minimum": 0, "maximum": 30},
                }
            ),
            "network": network,
            "securityGroupType": _str(enum=["enterprise", "normal"]),
        }
    )
    global_ = _obj(
        {
            "tls": _obj({"enableHardwareAcceleration": {"type": "boolean"}}),
            "ipAccessControl": _obj(
                {
                    "whitelist": {"type": "array", "items": _str()},
                    "blacklist": {"type": "array", "items": _str()},
                }
            ),
        }
    )
    monitor = _obj(
        {
            "logging": _obj({"sls": _obj({"reuseProject": _str()})}),
            "tracing": _obj({"xTrace": _sample_rate(), "openTelemetry": _sample_rate()}),
        }
    )
    ingress = _obj(
        {
            "local": _obj({"ingressClass": _str(), "watchNamespace": _str()}),
        }
    )
    spec = _obj(
        {
            "name": _str(),
            "id": _str(pattern="^gw-"),
            "override": {"type": "boolean"},
            "common": common,
            "global": global_,
            "monitor": monitor,
            "ingress": ingress,
        }
    )
    status = _obj(
        {
            "phase": _str(enum=list(PHASES)),
            "message": _str(),  # UNCONFIRMED key: the doc only says "the Message of the Status"
        }
    )
    return _obj(
        {
            "apiVersion": _str(),
            "kind": _str(),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        }
    )


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition object the add-on install creates."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/managed-by": "ack-mse-ingress-controller"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "plural": PLURAL,
                "singular": "mseingressconfig",
                "kind": KIND,
                "listKind": f"{KIND}List",
                "shortNames": list(SHORT_NAMES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }
