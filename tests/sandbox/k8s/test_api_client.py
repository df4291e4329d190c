"""The emulated kube-apiserver driven through the real ``kubernetes`` Python client."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def _svc(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}], **spec},
    }


def _status(exc: ApiException) -> dict[str, object]:
    return json.loads(exc.body)  # type: ignore[no-any-return]


def test_crud_conflict_and_generation(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    svc = core.create_namespaced_service("default", _svc("web"))
    assert svc.spec.cluster_ip.startswith("10.96.")
    assert svc.spec.ports[0].target_port == 80 and svc.spec.session_affinity == "None"
    assert svc.metadata.generation == 1 and svc.metadata.uid
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("default", _svc("web"))
    assert e.value.status == 409 and _status(e.value)["reason"] == "AlreadyExists"
    svc.metadata.labels = {"a": "b"}
    svc2 = core.replace_namespaced_service("web", "default", svc)
    assert svc2.metadata.generation == 1  # metadata-only change
    svc.metadata.labels = {"a": "c"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_service("web", "default", svc)  # stale resourceVersion
    assert e.value.status == 409 and _status(e.value)["reason"] == "Conflict"
    svc2.spec.ports[0].port = 81
    svc2.spec.ports[0].target_port = 81
    assert core.replace_namespaced_service("web", "default", svc2).metadata.generation == 2
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("nope", "default")
    st = _status(e.value)
    assert st["reason"] == "NotFound" and st["details"] == {"name": "nope", "kind": "services"}
    assert st["message"] == 'services "nope" not found'


def test_validation_messages(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(
            "default", _svc("ext", type="ExternalName", externalName="bad_name")
        )
    st = _status(e.value)
    assert e.value.status == 422 and st["reason"] == "Invalid"
    assert st["details"]["causes"][0]["field"] == "spec.externalName"
    assert st["message"].startswith(
        'Service "ext" is invalid: spec.externalName: Invalid value: "bad_name": a lowercase RFC 1123 subdomain'
    )
    ok = core.create_namespaced_service(
        "default", _svc("ext2", type="ExternalName", externalName="example.com")
    )
    assert ok.spec.cluster_ip is None
    net = client.NetworkingV1Api(cluster.api())
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i"},
        "spec": {
            "rules": [
                {
                    "host": "1.2.3.4",
                    "http": {
                        "paths": [
                            {
                                "path": "x",
                                "pathType": "Bogus",
                                "backend": {"service": {"name": "web"}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    with pytest.raises(ApiException) as e:
        net.create_namespaced_ingress("default", ing)
    fields = [c["field"] for c in _status(e.value)["details"]["causes"]]
    assert fields == [
        "spec.rules[0].host",
        "spec.rules[0].http.paths[0].pathType",
        "spec.rules[0].http.paths[0].path",
        "spec.rules[0].http.paths[0].backend",
    ]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("missing", {"metadata": {"name": "c"}})
    assert e.value.status == 404 and _status(e.value)["message"] == 'namespaces "missing" not found'


def test_patches_and_dry_run(cluster: Cluster) -> None:
    api = cluster.api()
    core = client.CoreV1Api(api)
    core.create_namespaced_service(
        "default", _svc("p", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}])
    )
    # Strategic merge: ports merge by port.
    api.set_default_header("Content-Type", "application/strategic-merge-patch+json")
    out = core.patch_namespaced_service(
        "p", "default", {"spec": {"ports": [{"port": 81, "name": "bb"}]}}
    )
    assert [p.name for p in out.spec.ports] == ["a", "bb"]
    out = core.patch_namespaced_service(
        "p", "default", {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}
    )
    assert [p.port for p in out.spec.ports] == [81]
    api.default_headers.pop("Content-Type")
    out = core.patch_namespaced_service(
        "p", "default", [{"op": "add", "path": "/metadata/labels", "value": {"j": "1"}}]
    )
    assert out.metadata.labels == {"j": "1"}
    before = core.read_namespaced_service("p", "default").metadata.resource_version
    out = core.patch_namespaced_service(
        "p", "default", {"metadata": {"labels": {"j": None, "k": "2"}}}, dry_run="All"
    )
    assert out.metadata.labels == {"k": "2"}
    assert core.read_namespaced_service("p", "default").metadata.resource_version == before
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_service(
            "p", "default", [{"op": "remove", "path": "/metadata/nothere"}]
        )
    assert e.value.status == 422


def test_server_side_apply_conflict_and_force(cluster: Cluster) -> None:
    url = f"{cluster.server.url}/api/v1/namespaces/default/configmaps/cm"
    s = requests.Session()
    s.verify = str(cluster.ca_path)
    s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    s.headers.update(
        {
            "Authorization": f"Bearer {cluster.admin_token}",
            "Content-Type": "application/apply-patch+yaml",
        }
    )
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: one}\n"
    assert s.patch(url, params={"fieldManager": "alice"}, data=body).status_code == 201
    r = s.patch(url, params={"fieldManager": "bob"}, data=body.replace("one", "two"))
    assert r.status_code == 409
    st = r.json()
    assert st["reason"] == "Conflict"
    assert st["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert st["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.k"}
    ]
    r = s.patch(
        url, params={"fieldManager": "bob", "force": "true"}, data=body.replace("one", "two")
    )
    assert r.status_code == 200 and r.json()["data"] == {"k": "two"}
    managers = {m["manager"] for m in r.json()["metadata"]["managedFields"]}
    assert managers == {"bob"}


def test_finalizers_and_owner_gc(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    owner = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "owner", "finalizers": ["x/y"]}}
    )
    core.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", "default")
    held = core.read_namespaced_config_map("owner", "default")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("owner", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("owner", "default")


def test_selectors_and_paging(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    for i in range(5):
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": f"c{i}", "labels": {"tier": "a" if i < 3 else "b"}}}
        )
    assert len(core.list_namespaced_config_map("default", label_selector="tier in (a)").items) == 3
    assert len(core.list_namespaced_config_map("default", label_selector="tier!=a,tier").items) == 2
    assert [
        c.metadata.name
        for c in core.list_namespaced_config_map("default", field_selector="metadata.name=c4").items
    ] == ["c4"]
    page = core.list_namespaced_config_map("default", limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map("default", limit=10, _continue=page.metadata._continue)
    assert len(rest.items) == 3


def test_watch_bookmark_and_gone(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}})
    w = watch.Watch()
    seen = [
        e["type"]
        for e in w.stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=rv,
            timeout_seconds=1,
            allow_watch_bookmarks=True,
        )
    ]
    assert seen[0] == "ADDED" and "BOOKMARK" in seen
    resp = core.list_namespaced_config_map(
        "default",
        watch=True,
        resource_version=rv,
        timeout_seconds=1,
        allow_watch_bookmarks=True,
        _preload_content=False,
    )
    types = [json.loads(line)["type"] for line in resp.read().decode().splitlines()]
    assert types[0] == "ADDED" and "BOOKMARK" in types
    for i in range(2100):
        cluster.store.record_event({"metadata": {"name": "x", "namespace": "default"}}, "R", str(i))
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version="2", timeout_seconds=1
        ):
            pass
    assert e.value.status == 410


def test_auth_and_limits(cluster: Cluster) -> None:
    s = requests.Session()
    s.verify = str(cluster.ca_path)
    s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    r = s.get(f"{cluster.server.url}/api/v1/namespaces")
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
    ro = client.CoreV1Api(cluster.api("readonly"))
    assert ro.list_namespace().items
    with pytest.raises(ApiException) as e:
        ro.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    assert e.value.status == 403
    assert _status(e.value)[
        "message"
    ] == (  # create requests carry no name, so RBAC's sentence has none
        'configmaps is forbidden: User "sandbox-readonly" cannot create '
        'resource "configmaps" in API group "" in the namespace "default"'
    )
    s.headers["Authorization"] = f"Bearer {cluster.admin_token}"
    url = f"{cluster.server.url}/api/v1/namespaces/default/configmaps"
    r = s.post(url, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    r = s.post(url, data=b"x" * (3 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert (
        r.status_code == 413 and r.json()["message"] == "Request entity too large: limit is 3145728"
    )
    assert s.get(f"{cluster.server.url}/version").json()["gitVersion"].startswith("v1.32.")
    assert r.headers["Audit-Id"]
    assert any(
        rec.status == 413 and rec.error_code == "RequestEntityTooLarge"
        for rec in cluster.audit.records()
    )


def test_crd_registers_type(cluster: Cluster) -> None:
    api = cluster.api()
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["size"],
                                        "properties": {"size": {"type": "integer", "maximum": 10}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    crd = ext.read_custom_resource_definition("widgets.example.com")
    assert {c.type for c in crd.status.conditions} == {"NamesAccepted", "Established"}
    co = client.CustomObjectsApi(api)
    w = co.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 3, "junk": 1},
        },
    )
    assert w["spec"] == {"size": 3}
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w2"},
                "spec": {"size": 11},
            },
        )
    assert _status(e.value)["details"]["causes"][0]["message"] == (
        "Invalid value: 11: spec.size in body should be less than or equal to 10"
    )
    ext.delete_custom_resource_definition("widgets.example.com")
    assert cluster.store.types.get("example.com", "v1", "widgets") is None
