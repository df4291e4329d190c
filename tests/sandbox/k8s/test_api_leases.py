"""``coordination.k8s.io/v1`` Leases, served as kube-apiserver serves them."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
from k8s_helpers import status_of
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.k8s import persist
from egress_sandbox.k8s.store import Store

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
RENEWED = "2026-12-01T10:00:00.000000Z"


def lease(name: str = "l", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "run-1", "leaseDurationSeconds": 60, **spec},
    }


def _coord(cluster: Cluster) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(cluster.api())


def _post(cluster: Cluster, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    # Raw HTTP: the typed client would serialize datetimes its own way.
    r = cluster.http().post(cluster.url(LEASES), json=body)
    return r.status_code, r.json()


# ---- create, read, replace, patch, delete ------------------------------------------------------


def test_create_and_read_a_lease_with_the_typed_client(cluster: Cluster) -> None:
    coord = _coord(cluster)
    renewed = dt.datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="l", labels={"app": "x"}),
        spec=client.V1LeaseSpec(
            holder_identity="run-1", lease_duration_seconds=30, renew_time=renewed
        ),
    )
    made = coord.create_namespaced_lease("default", body)
    assert (made.kind, made.api_version) == ("Lease", "coordination.k8s.io/v1")
    assert made.metadata.uid and made.metadata.resource_version
    assert made.metadata.generation is None  # the lease strategy tracks no generation
    got = coord.read_namespaced_lease("l", "default")
    assert got.spec.holder_identity == "run-1"
    assert got.spec.lease_duration_seconds == 30
    assert got.spec.renew_time == renewed


def test_times_are_stored_as_micro_time_marshals_them(cluster: Cluster) -> None:
    code, made = _post(
        cluster, lease(acquireTime=RENEWED, renewTime="2026-12-01T18:00:00.500000+08:00")
    )
    assert code == 201
    assert made["spec"]["acquireTime"] == RENEWED
    assert made["spec"]["renewTime"] == "2026-12-01T10:00:00.500000Z"


def test_replace_with_stale_resource_version_is_409_conflict(cluster: Cluster) -> None:
    coord = _coord(cluster)
    first = coord.create_namespaced_lease("default", lease())
    coord.patch_namespaced_lease("l", "default", {"spec": {"holderIdentity": "run-2"}})
    first.spec.holder_identity = "run-3"
    with pytest.raises(ApiException) as e:
        coord.replace_namespaced_lease("l", "default", first)
    st = status_of(e.value)
    assert (e.value.status, st["reason"], st["code"]) == (409, "Conflict", 409)
    assert st["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert st["details"] == {"name": "l", "group": "coordination.k8s.io", "kind": "leases"}
    assert coord.read_namespaced_lease("l", "default").spec.holder_identity == "run-2"


def test_replace_with_current_resource_version_succeeds(cluster: Cluster) -> None:
    coord = _coord(cluster)
    first = coord.create_namespaced_lease("default", lease())
    first.spec.holder_identity = "run-2"
    first.spec.lease_transitions = 1
    second = coord.replace_namespaced_lease("l", "default", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert (second.spec.holder_identity, second.spec.lease_transitions) == ("run-2", 1)


def test_replace_without_resource_version_is_refused(cluster: Cluster) -> None:
    # The lease strategy does not allow unconditional updates.
    coord = _coord(cluster)
    coord.create_namespaced_lease("default", lease())
    with pytest.raises(ApiException) as e:
        coord.replace_namespaced_lease("l", "default", lease(holderIdentity="run-2"))
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    assert st["message"] == (
        'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: '
        "Invalid value: 0: must be specified for an update"
    )
    assert st["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_patch_and_delete_with_preconditions(cluster: Cluster) -> None:
    coord = _coord(cluster)
    made = coord.create_namespaced_lease("default", lease())
    patched = coord.patch_namespaced_lease("l", "default", {"spec": {"renewTime": RENEWED}})
    assert patched.spec.renew_time == dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
    stale = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=made.metadata.resource_version)
    )
    with pytest.raises(ApiException) as e:
        coord.delete_namespaced_lease("l", "default", body=stale)
    assert (e.value.status, status_of(e.value)["reason"]) == (409, "Conflict")
    current = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(
            uid=made.metadata.uid, resource_version=patched.metadata.resource_version
        )
    )
    gone = coord.delete_namespaced_lease("l", "default", body=current)  # a dict: V1Status
    assert (gone["kind"], gone["status"]) == ("Status", "Success")
    assert gone["details"] == {
        "name": "l",
        "group": "coordination.k8s.io",
        "kind": "leases",
        "uid": made.metadata.uid,
    }
    with pytest.raises(ApiException) as e:
        coord.read_namespaced_lease("l", "default")
    assert status_of(e.value)["message"] == 'leases.coordination.k8s.io "l" not found'


def test_create_existing_lease_is_409_already_exists(cluster: Cluster) -> None:
    coord = _coord(cluster)
    coord.create_namespaced_lease("default", lease())
    with pytest.raises(ApiException) as e:
        coord.create_namespaced_lease("default", lease())
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (409, "AlreadyExists")
    assert st["message"] == 'leases.coordination.k8s.io "l" already exists'


# ---- validation and decoding --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"leaseDurationSeconds": 0}, "spec.leaseDurationSeconds", "must be greater than 0"),
        ({"leaseDurationSeconds": -5}, "spec.leaseDurationSeconds", "must be greater than 0"),
        (
            {"leaseTransitions": -1},
            "spec.leaseTransitions",
            "must be greater than or equal to 0",
        ),
    ],
)
def test_invalid_spec_is_422_naming_the_field(
    cluster: Cluster, spec: dict[str, Any], field: str, message: str
) -> None:
    code, st = _post(cluster, lease(**spec))
    assert (code, st["reason"], st["code"]) == (422, "Invalid", 422)
    value = next(iter(spec.values()))
    assert st["message"] == (
        f'Lease.coordination.k8s.io "l" is invalid: {field}: Invalid value: {value}: {message}'
    )
    assert st["details"] == {
        "name": "l",
        "group": "coordination.k8s.io",
        "kind": "Lease",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {value}: {message}",
                "field": field,
            }
        ],
    }


def test_lease_name_must_be_a_dns_subdomain(cluster: Cluster) -> None:
    code, st = _post(cluster, lease("Not_Valid"))
    assert (code, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.name"


def test_a_lease_without_spec_fields_is_valid(cluster: Cluster) -> None:
    code, made = _post(cluster, {"metadata": {"name": "empty"}, "spec": {}})
    assert code == 201 and made["spec"] == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"holderIdentity": 7},
            (
                "json: cannot unmarshal number into Go struct field LeaseSpec.spec.holderIdentity "
                "of type string"
            ),
        ),
        (
            {"leaseDurationSeconds": "60"},
            (
                "json: cannot unmarshal string into Go struct field "
                "LeaseSpec.spec.leaseDurationSeconds of type int32"
            ),
        ),
        (
            {"leaseTransitions": 1.5},
            (
                "json: cannot unmarshal number 1.5 into Go struct field "
                "LeaseSpec.spec.leaseTransitions of type int32"
            ),
        ),
        (
            {"renewTime": "2026-12-01T10:00:00Z"},
            (
                'parsing time "2026-12-01T10:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": '
                'cannot parse "Z" as ".000000"'
            ),
        ),
        (
            {"acquireTime": "yesterday"},
            (
                'parsing time "yesterday" as "2006-01-02T15:04:05.000000Z07:00": '
                'cannot parse "yesterday" as "2006"'
            ),
        ),
        (
            {"renewTime": "2026-13-01T10:00:00.000000Z"},
            'parsing time "2026-13-01T10:00:00.000000Z": month out of range',
        ),
    ],
)
def test_undecodable_spec_is_400_as_the_decoder_says(
    cluster: Cluster, spec: dict[str, Any], message: str
) -> None:
    code, st = _post(cluster, lease(**spec))
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == f'Lease in version "v1" cannot be handled as a Lease: {message}'


def test_coordinated_election_fields_are_dropped_while_the_gate_is_off(cluster: Cluster) -> None:
    code, made = _post(cluster, lease(strategy="OldestEmulationVersion", preferredHolder="x"))
    assert code == 201
    assert "strategy" not in made["spec"] and "preferredHolder" not in made["spec"]


# ---- list, watch, deletecollection --------------------------------------------------------------


def test_list_with_label_selector(cluster: Cluster) -> None:
    coord = _coord(cluster)
    coord.create_namespaced_lease("default", {**lease("a"), "metadata": {"name": "a"}})
    labelled = lease("b")
    labelled["metadata"]["labels"] = {"sel": "yes"}
    coord.create_namespaced_lease("default", labelled)
    listed = coord.list_namespaced_lease("default")
    assert [i.metadata.name for i in listed.items] == ["a", "b"]
    assert [
        i.metadata.name
        for i in coord.list_namespaced_lease("default", label_selector="sel=yes").items
    ] == ["b"]
    everywhere = coord.list_lease_for_all_namespaces()
    assert {i.metadata.name for i in everywhere.items} >= {"a", "b"}
    raw = cluster.http().get(cluster.url(LEASES)).json()
    assert (raw["kind"], raw["apiVersion"]) == ("LeaseList", "coordination.k8s.io/v1")


def test_watch_sends_added_modified_deleted(cluster: Cluster) -> None:
    coord = _coord(cluster)
    rv = coord.list_namespaced_lease("default").metadata.resource_version
    coord.create_namespaced_lease("default", lease())
    coord.patch_namespaced_lease("l", "default", {"spec": {"holderIdentity": "run-2"}})
    coord.delete_namespaced_lease("l", "default")
    resp = coord.list_namespaced_lease(
        "default", watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    assert [(e["type"], e["object"]["spec"]["holderIdentity"]) for e in events] == [
        ("ADDED", "run-1"),
        ("MODIFIED", "run-2"),
        ("DELETED", "run-2"),
    ]
    assert events[0]["object"]["kind"] == "Lease"


def test_watch_namespaced_lease_with_the_client_watch_helper(cluster: Cluster) -> None:
    coord = _coord(cluster)
    rv = coord.list_namespaced_lease("default").metadata.resource_version
    coord.create_namespaced_lease("default", lease())
    w = watch.Watch()
    seen = []
    for event in w.stream(
        coord.list_namespaced_lease,
        "default",
        resource_version=rv,
        field_selector="metadata.name=l",
        timeout_seconds=2,
    ):
        seen.append((event["type"], event["object"].spec.holder_identity))
        w.stop()
    assert seen == [("ADDED", "run-1")]


def test_delete_collection(cluster: Cluster) -> None:
    coord = _coord(cluster)
    for name in ("a", "b"):
        coord.create_namespaced_lease("default", {**lease(), "metadata": {"name": name}})
    coord.delete_collection_namespaced_lease("default")
    assert coord.list_namespaced_lease("default").items == []


# ---- discovery, OpenAPI, tables, persistence ----------------------------------------------------


def test_discovery_lists_the_coordination_group(cluster: Cluster) -> None:
    http = cluster.http()
    groups = {g["name"]: g for g in http.get(cluster.url("/apis")).json()["groups"]}
    assert groups["coordination.k8s.io"]["versions"] == [
        {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}
    ]
    resources = http.get(cluster.url("/apis/coordination.k8s.io/v1")).json()["resources"]
    assert resources == [
        {
            "name": "leases",
            "singularName": "lease",
            "namespaced": True,
            "kind": "Lease",
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
        }
    ]


def test_openapi_v3_documents_the_lease(cluster: Cluster) -> None:
    http = cluster.http()
    root = http.get(cluster.url("/openapi/v3")).json()["paths"]
    doc = http.get(cluster.url(root["apis/coordination.k8s.io/v1"]["serverRelativeURL"])).json()
    schemas = doc["components"]["schemas"]
    assert "leaseDurationSeconds" in schemas["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]
    item = doc["paths"][f"{LEASES.replace('default', '{namespace}')}/{{name}}"]
    assert set(item) == {"get", "put", "patch", "delete"}


def test_table_has_name_holder_and_age(cluster: Cluster) -> None:
    _post(cluster, lease())
    _post(cluster, {"metadata": {"name": "free"}, "spec": {}})
    r = cluster.http().get(
        cluster.url(LEASES),
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    table = r.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    cells = {row["cells"][0]: row["cells"][1:] for row in table["rows"]}
    assert cells["l"][0] == "run-1" and cells["free"][0] == ""
    assert cells["l"][1].endswith("s")


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
@pytest.mark.timeout(60)
def test_kubectl_get_leases(cluster: Cluster) -> None:
    _post(cluster, lease("lock"))
    lines = cluster.kubectl("get", "leases", "-n", "default").stdout.splitlines()
    assert lines[0].split() == ["NAME", "HOLDER", "AGE"]
    assert lines[1].split()[:2] == ["lock", "run-1"]
    got = json.loads(cluster.kubectl("get", "lease", "lock", "-o", "json").stdout)
    assert got["spec"]["holderIdentity"] == "run-1"
    assert (
        'lease.coordination.k8s.io "lock" deleted'
        in cluster.kubectl("delete", "lease", "lock").stdout
    )


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
@pytest.mark.timeout(60)
def test_kubectl_apply_creates_a_lease(cluster: Cluster) -> None:
    out = cluster.kubectl("apply", "-f", "-", input=json.dumps(lease("applied")))
    assert "lease.coordination.k8s.io/applied created" in out.stdout
    assert "leases" in cluster.kubectl("api-resources", "--api-group=coordination.k8s.io").stdout


def test_leases_survive_a_snapshot_and_restore(cluster: Cluster) -> None:
    made = _coord(cluster).create_namespaced_lease("default", lease())
    data = json.loads(json.dumps(persist.snapshot(cluster.store)))  # as state.json holds it
    fresh = Store(IdFactory(7))
    persist.restore(fresh, data)
    rt = fresh.types.get("coordination.k8s.io", "v1", "leases")
    assert rt is not None
    back = fresh.get(rt, "default", "l")
    assert back["metadata"]["uid"] == made.metadata.uid
    assert back["spec"]["holderIdentity"] == "run-1"
    assert int(fresh.resource_version) >= int(made.metadata.resource_version)
