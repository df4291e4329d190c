"""Object semantics through the ``kubernetes`` client: versions, errors, finalizers, GC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from k8s_helpers import WIDGET_CRD, cm, owner_ref, status_of, svc, widget
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def _core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api())


def test_resource_version_is_global_and_monotonic(cluster: Cluster) -> None:
    core = _core(cluster)
    a = core.create_namespaced_config_map("default", cm("a"))
    b = core.create_namespaced_service("default", svc("b"))
    c = core.create_namespaced_config_map("kube-system", cm("c"))
    rvs = [int(o.metadata.resource_version) for o in (a, b, c)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    listed = int(core.list_config_map_for_all_namespaces().metadata.resource_version)
    assert listed >= rvs[-1]


def test_update_with_stale_resource_version_is_409_conflict(cluster: Cluster) -> None:
    core = _core(cluster)
    first = core.create_namespaced_config_map("default", cm("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    first.data = {"k": "mine"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("a", "default", first)
    st = status_of(e.value)
    assert (e.value.status, st["reason"], st["code"]) == (409, "Conflict", 409)
    assert st["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert st["details"] == {"name": "a", "kind": "configmaps"}


def test_create_existing_name_is_409_already_exists(cluster: Cluster) -> None:
    core = _core(cluster)
    core.create_namespaced_config_map("default", cm("a"))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", cm("a"))
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (409, "AlreadyExists")
    assert st["message"] == 'configmaps "a" already exists'
    assert st["details"] == {"name": "a", "kind": "configmaps"}


def test_get_missing_is_404_not_found_status(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        _core(cluster).read_namespaced_service("nope", "default")
    st = status_of(e.value)
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'services "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "services"},
        "code": 404,
    }


def test_not_found_of_a_grouped_kind_names_the_group(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(cluster.api()).read_namespaced_deployment("nope", "default")
    st = status_of(e.value)
    assert st["message"] == 'deployments.apps "nope" not found'
    assert st["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_create_in_missing_namespace_is_404(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        _core(cluster).create_namespaced_config_map("missing", cm("c"))
    assert e.value.status == 404
    assert status_of(e.value)["message"] == 'namespaces "missing" not found'


def test_generation_increases_only_on_spec_changes(cluster: Cluster) -> None:
    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
    co = client.CustomObjectsApi(api)
    args = ("example.com", "v1", "default", "widgets")
    w = co.create_namespaced_custom_object(*args, widget())
    assert w["metadata"]["generation"] == 1
    w = co.patch_namespaced_custom_object(*args, "w", {"metadata": {"labels": {"a": "b"}}})
    assert w["metadata"]["generation"] == 1
    w = co.patch_namespaced_custom_object_status(*args, "w", {"status": {"phase": "Ready"}})
    assert w["metadata"]["generation"] == 1
    w = co.patch_namespaced_custom_object(*args, "w", {"spec": {"size": 4}})
    assert w["metadata"]["generation"] == 2


def test_kinds_without_generation_tracking_have_none(cluster: Cluster) -> None:
    assert (
        _core(cluster).create_namespaced_config_map("default", cm("a")).metadata.generation is None
    )


def test_delete_with_finalizer_sets_deletion_timestamp_and_waits(cluster: Cluster) -> None:
    core = _core(cluster)
    core.create_namespaced_config_map("default", cm("a", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("a", "default")
    held = core.read_namespaced_config_map("a", "default")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("a", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("a", "default")
    assert e.value.status == 404


def test_background_deletion_collects_owned_objects(cluster: Cluster) -> None:
    core = _core(cluster)
    owner = core.create_namespaced_config_map("default", cm("owner"))
    core.create_namespaced_config_map("default", cm("child", ownerReferences=[owner_ref(owner)]))
    core.delete_namespaced_config_map("owner", "default")
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == []


def test_dependent_with_another_live_owner_survives_and_loses_the_reference(
    cluster: Cluster,
) -> None:
    core = _core(cluster)
    a = core.create_namespaced_config_map("default", cm("a"))
    b = core.create_namespaced_config_map("default", cm("b"))
    core.create_namespaced_config_map(
        "default", cm("child", ownerReferences=[owner_ref(a), owner_ref(b)])
    )
    core.delete_namespaced_config_map("a", "default")
    child = core.read_namespaced_config_map("child", "default")
    assert [r.name for r in child.metadata.owner_references] == ["b"]


def test_foreground_deletion_holds_owner_with_finalizer_until_dependents_are_gone(
    cluster: Cluster,
) -> None:
    core = _core(cluster)
    owner = core.create_namespaced_config_map("default", cm("owner"))
    core.create_namespaced_config_map(
        "default",
        cm("child", ownerReferences=[owner_ref(owner, block=True)], finalizers=["x.io/hold"]),
    )
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Foreground")
    held = core.read_namespaced_config_map("owner", "default")
    assert held.metadata.finalizers == ["foregroundDeletion"]
    assert held.metadata.deletion_timestamp is not None
    child = core.read_namespaced_config_map("child", "default")
    assert child.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("child", "default", {"metadata": {"finalizers": None}})
    assert core.list_namespaced_config_map("default").items == []


def test_orphan_deletion_removes_owner_references_from_dependents(cluster: Cluster) -> None:
    core = _core(cluster)
    owner = core.create_namespaced_config_map("default", cm("owner"))
    core.create_namespaced_config_map("default", cm("child", ownerReferences=[owner_ref(owner)]))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    child = core.read_namespaced_config_map("child", "default")
    assert child.metadata.owner_references is None
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("owner", "default")


def test_namespace_deletion_cascades_and_waits_for_finalized_content(cluster: Cluster) -> None:
    core = _core(cluster)
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", cm("plain"))
    core.create_namespaced_config_map("team", cm("held", finalizers=["x.io/hold"]))
    core.delete_namespace("team")
    ns = core.read_namespace("team")
    assert ns.status.phase == "Terminating"
    assert [c.metadata.name for c in core.list_namespaced_config_map("team").items] == ["held"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("team", cm("late"))
    assert e.value.status == 403
    core.patch_namespaced_config_map("held", "team", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespace("team")
    assert e.value.status == 404


def test_update_refuses_another_uid(cluster: Cluster) -> None:
    core = _core(cluster)
    obj = core.create_namespaced_config_map("default", cm("a"))
    obj.metadata.uid = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("a", "default", obj)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "00000000-0000-0000-0000-000000000000": field is immutable',
            "field": "metadata.uid",
        }
    ]


def test_object_being_deleted_takes_no_new_finalizers(cluster: Cluster) -> None:
    core = _core(cluster)
    core.create_namespaced_config_map("default", cm("a", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("a", "default")
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map(
            "a", "default", {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
        )
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.finalizers"
    assert st["details"]["causes"][0]["message"] == (
        "Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"example.com/more"}'
    )
    # Removing the remaining finalizer still lets it go.
    core.patch_namespaced_config_map("a", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("a", "default")
    assert e.value.status == 404
