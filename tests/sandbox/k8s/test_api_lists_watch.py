"""Lists (selectors, paging) and watches (events, bookmarks, 410, timeouts, selector exits)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
from k8s_helpers import cm
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def _five(cluster: Cluster) -> client.CoreV1Api:
    core = client.CoreV1Api(cluster.api())
    for i in range(5):
        core.create_namespaced_config_map(
            "default", cm(f"c{i}", labels={"tier": "a" if i < 3 else "b"})
        )
    return core


def _names(items: list[client.V1ConfigMap]) -> list[str]:
    return [o.metadata.name for o in items]


def test_list_label_selector_equality_and_set_based(cluster: Cluster) -> None:
    core = _five(cluster)
    assert _names(core.list_namespaced_config_map("default", label_selector="tier=a").items) == [
        "c0",
        "c1",
        "c2",
    ]
    sel = "tier notin (a),tier"
    assert _names(core.list_namespaced_config_map("default", label_selector=sel).items) == [
        "c3",
        "c4",
    ]


def test_list_bad_label_selector_is_400(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).list_namespaced_config_map(
            "default", label_selector="a in b"
        )
    assert e.value.status == 400


def test_list_field_selector_metadata_name_and_namespace(cluster: Cluster) -> None:
    core = _five(cluster)
    assert _names(
        core.list_config_map_for_all_namespaces(field_selector="metadata.name=c4").items
    ) == ["c4"]
    assert _names(
        core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=default").items
    ) == ["c0", "c1", "c2", "c3", "c4"]


def test_list_pods_by_status_phase(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    core.create_namespaced_pod("default", pod)
    assert _names(core.list_namespaced_pod("default", field_selector="status.phase=Pending").items)
    assert not core.list_namespaced_pod("default", field_selector="status.phase=Running").items


def test_list_unsupported_field_selector_is_400(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).list_namespaced_config_map(
            "default", field_selector="data.a=b"
        )
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"] == "field label not supported: data.a"


def test_list_limit_and_continue_page_through_everything(cluster: Cluster) -> None:
    core = _five(cluster)
    page = core.list_namespaced_config_map("default", limit=2)
    assert _names(page.items) == ["c0", "c1"] and page.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map("default", limit=10, _continue=page.metadata._continue)
    assert _names(rest.items) == ["c2", "c3", "c4"] and rest.metadata._continue is None


def test_list_with_invalid_continue_token_is_400(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).list_namespaced_config_map("default", _continue="zz")
    assert e.value.status == 400


# ---- watch --------------------------------------------------------------------------------------


def _watch_types(core: client.CoreV1Api, rv: str, **kw: object) -> list[tuple[str, str]]:
    resp = core.list_namespaced_config_map(
        "default", watch=True, resource_version=rv, _preload_content=False, **kw
    )
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def test_watch_from_resource_version_sends_added_modified_deleted(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", cm("w"))
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w", "default")
    assert _watch_types(core, rv, timeout_seconds=1) == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]


def test_watch_sends_bookmarks_when_allowed(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    types = [t for t, _ in _watch_types(core, rv, timeout_seconds=1, allow_watch_bookmarks=True)]
    assert "BOOKMARK" in types


def test_watch_honours_timeout_seconds(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    start = time.monotonic()
    assert _watch_types(core, rv, timeout_seconds=1) == []
    assert 0.9 <= time.monotonic() - start < 3


def test_watch_from_too_old_resource_version_is_410_gone(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    for i in range(2100):
        cluster.store.record_event({"metadata": {"name": "x", "namespace": "default"}}, "R", str(i))
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version="2", timeout_seconds=1
        ):
            pass
    assert e.value.status == 410


def test_watch_object_leaving_the_label_selector_is_deleted(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    core.create_namespaced_config_map("default", cm("w", labels={"sel": "yes"}))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("w", "default", {"metadata": {"labels": {"sel": "no"}}})
    core.patch_namespaced_config_map("w", "default", {"metadata": {"labels": {"sel": "yes"}}})
    assert _watch_types(core, rv, timeout_seconds=1, label_selector="sel=yes") == [
        ("DELETED", "w"),
        ("ADDED", "w"),
    ]


def test_watch_object_leaving_the_field_selector_is_deleted(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    core.create_namespaced_pod("default", pod)
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    resp = core.list_namespaced_pod(
        "default",
        watch=True,
        resource_version=rv,
        timeout_seconds=1,
        field_selector="status.phase=Pending",
        _preload_content=False,
    )
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    assert [e["type"] for e in events] == ["DELETED"]
    assert events[0]["object"]["status"]["phase"] == "Pending"  # the last matching state


def test_watch_with_a_resource_version_that_is_not_a_number_is_400(cluster: Cluster) -> None:
    resp = cluster.http().get(
        cluster.url("/api/v1/namespaces/default/configmaps"),
        params={"watch": "1", "resourceVersion": "abc", "timeoutSeconds": "1"},
        timeout=10,
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
