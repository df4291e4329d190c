"""422 Invalid with field causes, following kube-apiserver's validation rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from k8s_helpers import WIDGET_CRD, ingress, path, status_of, svc, widget
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def _svc_causes(cluster: Cluster, body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).create_namespaced_service("default", body)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    return [(c["reason"], c["field"]) for c in st["details"]["causes"]]


def _ing_causes(cluster: Cluster, body: dict[str, Any]) -> list[tuple[str, str]]:
    # Raw HTTP: the typed client refuses some of these bodies before sending them.
    r = cluster.http().post(
        cluster.url("/apis/networking.k8s.io/v1/namespaces/default/ingresses"), json=body
    )
    st = r.json()
    assert (r.status_code, st["reason"]) == (422, "Invalid")
    assert st["details"]["kind"] == "Ingress" and st["details"]["group"] == "networking.k8s.io"
    return [(c["reason"], c["field"]) for c in st["details"]["causes"]]


def test_service_external_name_must_be_a_dns_subdomain(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).create_namespaced_service(
            "default", svc("ext", type="ExternalName", externalName="bad_name")
        )
    st = status_of(e.value)
    assert st["details"]["causes"][0]["field"] == "spec.externalName"
    assert st["message"].startswith(
        'Service "ext" is invalid: spec.externalName: Invalid value: "bad_name": '
        "a lowercase RFC 1123 subdomain"
    )


def test_service_external_name_is_required_for_external_name_type(cluster: Cluster) -> None:
    assert ("FieldValueRequired", "spec.externalName") in _svc_causes(
        cluster, svc("ext", type="ExternalName")
    )


def test_service_external_name_with_cluster_ip_is_forbidden(cluster: Cluster) -> None:
    body = svc("ext", type="ExternalName", externalName="example.com", clusterIP="10.96.0.50")
    assert ("FieldValueForbidden", "spec.clusterIPs") in _svc_causes(cluster, body)


def test_service_valid_external_name_is_accepted_without_cluster_ip(cluster: Cluster) -> None:
    ok = client.CoreV1Api(cluster.api()).create_namespaced_service(
        "default", svc("ext", type="ExternalName", externalName="example.com")
    )
    assert ok.spec.cluster_ip is None


def test_service_port_names_must_be_unique(cluster: Cluster) -> None:
    body = svc("s", ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}])
    assert _svc_causes(cluster, body) == [("FieldValueDuplicate", "spec.ports[1].name")]


def test_service_port_names_must_be_dns_labels(cluster: Cluster) -> None:
    body = svc("s", ports=[{"name": "Bad_Name", "port": 80}])
    assert _svc_causes(cluster, body) == [("FieldValueInvalid", "spec.ports[0].name")]


def test_service_ports_need_names_when_several(cluster: Cluster) -> None:
    body = svc("s", ports=[{"port": 80}, {"name": "b", "port": 81}])
    assert _svc_causes(cluster, body) == [("FieldValueRequired", "spec.ports[0].name")]


@pytest.mark.parametrize("port", [0, 65536])
def test_service_port_must_be_between_1_and_65535(cluster: Cluster, port: int) -> None:
    assert _svc_causes(cluster, svc("s", ports=[{"port": port, "targetPort": 80}])) == [
        ("FieldValueInvalid", "spec.ports[0].port")
    ]


def test_ingress_path_type_is_required(cluster: Cluster) -> None:
    p = path()
    del p["pathType"]
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].pathType")
    ]


def test_ingress_path_type_must_be_one_of_three(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.NetworkingV1Api(cluster.api()).create_namespaced_ingress(
            "default", ingress(path(pathType="Bogus"))
        )
    cause = status_of(e.value)["details"]["causes"][0]
    assert cause["message"] == (
        'Unsupported value: "Bogus": supported values: "Exact", "ImplementationSpecific", "Prefix"'
    )


@pytest.mark.parametrize("path_type", ["Prefix", "Exact"])
def test_ingress_prefix_and_exact_paths_must_be_absolute(cluster: Cluster, path_type: str) -> None:
    assert _ing_causes(cluster, ingress(path(path="api", pathType=path_type))) == [
        ("FieldValueInvalid", "spec.rules[0].http.paths[0].path")
    ]


def test_ingress_host_must_not_be_an_ip(cluster: Cluster) -> None:
    assert _ing_causes(cluster, ingress(path(), host="1.2.3.4")) == [
        ("FieldValueInvalid", "spec.rules[0].host")
    ]


def test_ingress_host_allows_one_leading_wildcard_only(cluster: Cluster) -> None:
    ok = ingress(path(), host="*.example.com")
    ok["metadata"]["name"] = "ok"
    client.NetworkingV1Api(cluster.api()).create_namespaced_ingress("default", ok)
    assert _ing_causes(cluster, ingress(path(), host="a.*.example.com")) == [
        ("FieldValueInvalid", "spec.rules[0].host")
    ]


def test_ingress_backend_needs_a_service_name(cluster: Cluster) -> None:
    p = path(backend={"service": {"port": {"number": 80}}})
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].backend.service.name")
    ]


def test_ingress_backend_needs_a_port_number_or_name(cluster: Cluster) -> None:
    p = path(backend={"service": {"name": "web"}})
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].backend")
    ]


def test_ingress_backend_port_name_is_accepted(cluster: Cluster) -> None:
    p = path(backend={"service": {"name": "web", "port": {"name": "http"}}})
    client.NetworkingV1Api(cluster.api()).create_namespaced_ingress("default", ingress(p))


# ---- custom resources ---------------------------------------------------------------------------


def _co(cluster: Cluster) -> client.CustomObjectsApi:
    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
    return client.CustomObjectsApi(api)


def _cr_causes(cluster: Cluster, body: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ApiException) as e:
        _co(cluster).create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", body
        )
    assert e.value.status == 422
    causes: list[dict[str, str]] = status_of(e.value)["details"]["causes"]
    return causes


def test_custom_resource_maximum_is_enforced(cluster: Cluster) -> None:
    assert _cr_causes(cluster, widget(size=11))[0]["message"] == (
        "Invalid value: 11: spec.size in body should be less than or equal to 10"
    )


def test_custom_resource_minimum_is_enforced(cluster: Cluster) -> None:
    assert _cr_causes(cluster, widget(size=0))[0]["message"] == (
        "Invalid value: 0: spec.size in body should be greater than or equal to 1"
    )


def test_custom_resource_enum_is_enforced(cluster: Cluster) -> None:
    cause = _cr_causes(cluster, widget(color="green"))[0]
    assert (cause["reason"], cause["field"]) == ("FieldValueNotSupported", "spec.color")


def test_custom_resource_required_field_is_enforced(cluster: Cluster) -> None:
    body = widget()
    del body["spec"]["size"]
    cause = _cr_causes(cluster, body)[0]
    assert (cause["reason"], cause["field"]) == ("FieldValueRequired", "spec.size")


def test_custom_resource_unknown_fields_are_pruned(cluster: Cluster) -> None:
    out = _co(cluster).create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget(junk=1)
    )
    assert out["spec"] == {"size": 3}


def test_mse_ingress_config_is_validated_against_its_crd_schema(cluster: Cluster) -> None:
    from egress_sandbox.mse import crd

    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd.crd_manifest())
    body = {
        "apiVersion": f"{crd.GROUP}/{crd.VERSION}",
        "kind": crd.KIND,
        "metadata": {"name": "mse"},
        "spec": {"common": {"instance": {"replicas": 31, "spec": "1c1g"}}},
    }
    with pytest.raises(ApiException) as e:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            crd.GROUP, crd.VERSION, crd.PLURAL, body
        )
    causes = status_of(e.value)["details"]["causes"]
    assert [c["field"] for c in causes] == [
        "spec.common.instance.replicas",
        "spec.common.instance.spec",
    ] or sorted(c["field"] for c in causes) == [
        "spec.common.instance.replicas",
        "spec.common.instance.spec",
    ]
