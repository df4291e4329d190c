"""Authentication, authorization, SelfSubjectAccessReview, request limits, pod logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from k8s_helpers import cm, status_of
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def test_request_without_bearer_token_is_401(cluster: Cluster) -> None:
    r = cluster.http(token=None).get(cluster.url("/api/v1/namespaces"))
    assert (r.status_code, r.json()["reason"]) == (401, "Unauthorized")


def test_request_with_unknown_token_is_401(cluster: Cluster) -> None:
    r = cluster.http(token="wrong").get(cluster.url("/api/v1/namespaces"))
    assert r.status_code == 401


def test_read_only_user_can_read(cluster: Cluster) -> None:
    assert client.CoreV1Api(cluster.api("readonly")).list_namespace().items


@pytest.mark.parametrize("verb", ["create", "update", "patch", "delete", "deletecollection"])
def test_read_only_user_gets_403_on_every_write(cluster: Cluster, verb: str) -> None:
    client.CoreV1Api(cluster.api()).create_namespaced_config_map("default", cm("c"))
    ro = client.CoreV1Api(cluster.api("readonly"))
    calls = {
        "create": lambda: ro.create_namespaced_config_map("default", cm("x")),
        "update": lambda: ro.replace_namespaced_config_map("c", "default", cm("c")),
        "patch": lambda: ro.patch_namespaced_config_map("c", "default", {"data": {"a": "b"}}),
        "delete": lambda: ro.delete_namespaced_config_map("c", "default"),
        "deletecollection": lambda: ro.delete_collection_namespaced_config_map("default"),
    }
    with pytest.raises(ApiException) as e:
        calls[verb]()
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (403, "Forbidden")
    assert f'User "sandbox-readonly" cannot {verb} resource "configmaps"' in st["message"]


def _review(cluster: Cluster, context: str, verb: str) -> bool:
    api = client.AuthorizationV1Api(cluster.api(context))
    body = {"spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": "x"}}}
    return bool(api.create_self_subject_access_review(body).status.allowed)


def test_self_subject_access_review_answers_for_admin(cluster: Cluster) -> None:
    assert _review(cluster, "admin", "create") is True


def test_self_subject_access_review_answers_for_read_only_user(cluster: Cluster) -> None:
    assert _review(cluster, "readonly", "create") is False
    assert _review(cluster, "readonly", "list") is True


def test_self_subject_access_review_is_audited_as_not_mutating(cluster: Cluster) -> None:
    _review(cluster, "readonly", "delete")
    rec = next(r for r in cluster.audit.records() if "selfsubjectaccessreviews" in r.path)
    assert rec.action == "create" and rec.mutating is False


def test_dry_run_writes_change_nothing_and_are_audited_as_not_mutating(cluster: Cluster) -> None:
    api = client.CoreV1Api(cluster.api())
    api.create_namespaced_config_map("default", cm("kept"))
    dry = {"dry_run": "All"}
    api.create_namespaced_config_map("default", cm("dry"), **dry)
    api.replace_namespaced_config_map("kept", "default", {**cm("kept"), "data": {"a": "b"}}, **dry)
    api.patch_namespaced_config_map("kept", "default", {"data": {"a": "b"}}, **dry)
    api.delete_namespaced_config_map("kept", "default", **dry)
    api.delete_namespaced_config_map("kept", "default", body={"dryRun": ["All"]})  # in the body
    api.delete_collection_namespaced_config_map("default", **dry)
    names = [o.metadata.name for o in api.list_namespaced_config_map("default").items]
    assert "dry" not in names
    assert "kept" in names and api.read_namespaced_config_map("kept", "default").data is None
    writes = [
        r
        for r in cluster.audit.records()
        if "/configmaps" in r.path and r.action not in ("get", "list")
    ]
    assert [(r.action, r.mutating, r.status) for r in writes] == [
        ("create", True, 201),
        ("create", False, 201),
        ("update", False, 200),
        ("patch", False, 200),
        ("delete", False, 200),
        ("delete", False, 200),
        ("deletecollection", False, 200),
    ]
    assert [r for r in cluster.audit.records(mutating=True) if "/configmaps" in r.path] == writes[
        :1
    ]


def test_body_over_3_mib_is_413(cluster: Cluster) -> None:
    r = cluster.http().post(
        cluster.url("/api/v1/namespaces/default/configmaps"),
        data=b"x" * (3 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["reason"]) == (413, "RequestEntityTooLarge")
    assert r.json()["message"] == "Request entity too large: limit is 3145728"


def test_malformed_json_is_400_status(cluster: Cluster) -> None:
    r = cluster.http().post(
        cluster.url("/api/v1/namespaces/default/configmaps"),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    assert r.json()["reason"] == "BadRequest"


def test_malformed_yaml_is_400_status(cluster: Cluster) -> None:
    r = cluster.http().post(
        cluster.url("/api/v1/namespaces/default/configmaps"),
        data=b"a: [unclosed",
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 400 and r.json()["kind"] == "Status"


def test_server_keeps_serving_after_bad_requests(cluster: Cluster) -> None:
    s = cluster.http()
    url = cluster.url("/api/v1/namespaces/default/configmaps")
    for body in (b"{", b"[]", b"x" * (3 * 1024 * 1024 + 1), b"\xff\xfe"):
        assert s.post(url, data=body, headers={"Content-Type": "application/json"}).status_code
    assert s.post(url, json=cm("after")).status_code == 201


# ---- pods/log -----------------------------------------------------------------------------------


def _pod(cluster: Cluster, text: str) -> client.CoreV1Api:
    core = client.CoreV1Api(cluster.api())
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    core.create_namespaced_pod("default", pod)
    cluster.logs[("default", "p", "c")] = text
    return core


def test_pod_log_tail_lines_returns_the_last_lines(cluster: Cluster) -> None:
    core = _pod(cluster, "1\n2\n3\n")
    assert core.read_namespaced_pod_log("p", "default", tail_lines=2) == "2\n3\n"


def test_pod_log_limit_bytes_truncates(cluster: Cluster) -> None:
    core = _pod(cluster, "hello\nworld\n")
    assert core.read_namespaced_pod_log("p", "default", limit_bytes=3) == "hel"


def test_pod_log_timestamps_prefix_each_line(cluster: Cluster) -> None:
    core = _pod(cluster, "a\nb\n")
    lines = core.read_namespaced_pod_log("p", "default", timestamps=True).splitlines()
    assert [ln.split(" ", 1)[1] for ln in lines] == ["a", "b"]
    assert all(ln.split(" ", 1)[0].endswith("Z") for ln in lines)


def test_pod_log_previous_without_a_restart_is_400(cluster: Cluster) -> None:
    core = _pod(cluster, "a\n")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("p", "default", previous=True)
    assert e.value.status == 400
    assert status_of(e.value)["message"] == 'previous terminated container "c" in pod "p" not found'


def test_pod_log_negative_tail_lines_is_422(cluster: Cluster) -> None:
    core = _pod(cluster, "a\n")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("p", "default", tail_lines=-1)
    assert e.value.status == 422


def test_pod_log_follow_streams_until_the_container_ends(cluster: Cluster) -> None:
    core = _pod(cluster, "first\n")
    resp = core.read_namespaced_pod_log("p", "default", follow=True, _preload_content=False)
    assert resp.read(6) == b"first\n"
    cluster.logs[("default", "p", "c")] = "first\nsecond\n"
    core.patch_namespaced_pod_status(
        "p",
        "default",
        {
            "status": {
                "containerStatuses": [
                    {
                        "name": "c",
                        "image": "nginx",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0}},
                    }
                ]
            }
        },
    )
    assert resp.read() == b"second\n"
