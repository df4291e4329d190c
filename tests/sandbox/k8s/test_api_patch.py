"""PATCH in its four content types, server-side apply ownership, and dryRun=All."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from k8s_helpers import WIDGET_CRD, cm, status_of, svc, widget
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def _patch(cluster: Cluster, path: str, body: str, ctype: str, **params: str) -> Any:
    return cluster.http().patch(
        cluster.url(path), data=body, headers={"Content-Type": ctype}, params=params
    )


def _two_port_service(cluster: Cluster) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_service(
        "default", svc("p", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}])
    )


SVC_PATH = "/api/v1/namespaces/default/services/p"


def test_strategic_merge_patch_merges_service_ports_by_port(cluster: Cluster) -> None:
    _two_port_service(cluster)
    r = _patch(cluster, SVC_PATH, '{"spec":{"ports":[{"port":81,"name":"bb"}]}}', SMP)
    assert r.status_code == 200
    assert [(p["name"], p["port"]) for p in r.json()["spec"]["ports"]] == [("a", 80), ("bb", 81)]


def test_strategic_merge_patch_delete_directive_removes_a_list_element(cluster: Cluster) -> None:
    _two_port_service(cluster)
    r = _patch(cluster, SVC_PATH, '{"spec":{"ports":[{"port":80,"$patch":"delete"}]}}', SMP)
    assert [p["port"] for p in r.json()["spec"]["ports"]] == [81]


def test_strategic_merge_patch_merges_containers_and_env_by_name(cluster: Cluster) -> None:
    apps = client.AppsV1Api(cluster.api())
    labels = {"app": "d"}
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "a", "image": "nginx", "env": [{"name": "X", "value": "1"}]},
                            {"name": "b", "image": "busybox"},
                        ]
                    },
                },
            },
        },
    )
    container = {"name": "a", "env": [{"name": "Y", "value": "2"}]}
    body = json.dumps({"spec": {"template": {"spec": {"containers": [container]}}}})
    r = _patch(cluster, "/apis/apps/v1/namespaces/default/deployments/d", body, SMP)
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert containers[0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]


def test_strategic_merge_patch_on_a_custom_resource_is_415(cluster: Cluster) -> None:
    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget()
    )
    path = "/apis/example.com/v1/namespaces/default/widgets/w"
    r = _patch(cluster, path, '{"spec":{"size":4}}', SMP)
    assert (r.status_code, r.json()["reason"]) == (415, "UnsupportedMediaType")


def test_merge_patch_null_removes_a_key(cluster: Cluster) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_config_map(
        "default", {**cm("c"), "data": {"a": "1", "b": "2"}}
    )
    r = _patch(cluster, "/api/v1/namespaces/default/configmaps/c", '{"data":{"a":null}}', MERGE)
    assert r.json()["data"] == {"b": "2"}


def test_json_patch_applies_operations_in_order(cluster: Cluster) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_config_map("default", cm("c"))
    ops = (
        '[{"op":"add","path":"/data","value":{"a":"1"}},'
        '{"op":"test","path":"/data/a","value":"1"},'
        '{"op":"replace","path":"/data/a","value":"2"}]'
    )
    r = _patch(cluster, "/api/v1/namespaces/default/configmaps/c", ops, JSON_PATCH)
    assert r.json()["data"] == {"a": "2"}


def test_json_patch_on_a_missing_path_is_422(cluster: Cluster) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_config_map("default", cm("c"))
    r = _patch(
        cluster,
        "/api/v1/namespaces/default/configmaps/c",
        '[{"op":"remove","path":"/metadata/nothere"}]',
        JSON_PATCH,
    )
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid")


def test_patch_with_unknown_content_type_is_415(cluster: Cluster) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_config_map("default", cm("c"))
    r = _patch(cluster, "/api/v1/namespaces/default/configmaps/c", "{}", "text/plain")
    assert r.status_code == 415


CM_APPLY = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: %s}\n"
CM_PATH = "/api/v1/namespaces/default/configmaps/cm"


def test_server_side_apply_creates_and_records_the_field_manager(cluster: Cluster) -> None:
    r = _patch(cluster, CM_PATH, CM_APPLY % "one", APPLY, fieldManager="alice")
    assert r.status_code == 201
    entry = r.json()["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("alice", "Apply")
    assert entry["fieldsV1"] == {"f:data": {"f:k": {}}}


def test_server_side_apply_conflict_is_409_with_field_causes(cluster: Cluster) -> None:
    _patch(cluster, CM_PATH, CM_APPLY % "one", APPLY, fieldManager="alice")
    r = _patch(cluster, CM_PATH, CM_APPLY % "two", APPLY, fieldManager="bob")
    st = r.json()
    assert (r.status_code, st["reason"]) == (409, "Conflict")
    assert st["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert st["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.k"}
    ]


def test_server_side_apply_with_force_takes_ownership(cluster: Cluster) -> None:
    _patch(cluster, CM_PATH, CM_APPLY % "one", APPLY, fieldManager="alice")
    r = _patch(cluster, CM_PATH, CM_APPLY % "two", APPLY, fieldManager="bob", force="true")
    assert r.status_code == 200 and r.json()["data"] == {"k": "two"}
    assert {m["manager"] for m in r.json()["metadata"]["managedFields"]} == {"bob"}


def test_server_side_apply_without_field_manager_is_422(cluster: Cluster) -> None:
    r = _patch(cluster, CM_PATH, CM_APPLY % "one", APPLY)
    st = r.json()
    assert (r.status_code, st["details"]["causes"][0]["field"]) == (422, "fieldManager")


def test_force_on_a_non_apply_patch_is_422(cluster: Cluster) -> None:
    _patch(cluster, CM_PATH, CM_APPLY % "one", APPLY, fieldManager="alice")
    r = _patch(cluster, CM_PATH, '{"data":{"k":"x"}}', MERGE, force="true")
    assert r.status_code == 422


# ---- dryRun=All ---------------------------------------------------------------------------------


def test_dry_run_create_answers_in_full_and_stores_nothing(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    out = core.create_namespaced_service("default", svc("dry"), dry_run="All")
    assert out.metadata.uid and out.spec.cluster_ip.startswith("10.96.")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("dry", "default")
    assert e.value.status == 404


def test_dry_run_create_of_an_invalid_object_is_422(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).create_namespaced_service(
            "default", svc("dry", ports=[{"port": 0}]), dry_run="All"
        )
    assert e.value.status == 422
    assert status_of(e.value)["details"]["causes"][0]["field"] == "spec.ports[0].port"


def test_dry_run_update_returns_the_result_and_keeps_the_stored_object(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    created = core.create_namespaced_config_map("default", cm("c"))
    created.data = {"a": "1"}
    out = core.replace_namespaced_config_map("c", "default", created, dry_run="All")
    assert out.data == {"a": "1"}
    stored = core.read_namespaced_config_map("c", "default")
    assert stored.data is None
    assert stored.metadata.resource_version == created.metadata.resource_version


def test_dry_run_patch_returns_the_result_and_keeps_the_stored_object(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    core.create_namespaced_config_map("default", cm("c", labels={"j": "1"}))
    out = core.patch_namespaced_config_map(
        "c", "default", {"metadata": {"labels": {"j": None, "k": "2"}}}, dry_run="All"
    )
    assert out.metadata.labels == {"k": "2"}
    assert core.read_namespaced_config_map("c", "default").metadata.labels == {"j": "1"}


def test_dry_run_delete_answers_and_keeps_the_object(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    core.create_namespaced_service("default", svc("s"))
    out = core.delete_namespaced_service("s", "default", dry_run="All")
    assert out.metadata.name == "s"
    assert core.read_namespaced_service("s", "default").metadata.deletion_timestamp is None


def test_dry_run_with_an_unknown_value_is_400(cluster: Cluster) -> None:
    r = cluster.http().post(
        cluster.url("/api/v1/namespaces/default/configmaps"),
        json=cm("c"),
        params={"dryRun": "Some"},
    )
    assert r.status_code == 400
