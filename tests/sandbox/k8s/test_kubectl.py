"""The emulated kube-apiserver driven by real kubectl v1.32, one behaviour per test."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from k8s_helpers import WIDGET_CRD

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("kubectl_available"),
]

SVC = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: %d}\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"


def _crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))


def test_apply_creates_a_builtin_kind(cluster: Cluster) -> None:
    assert "service/web created" in cluster.kubectl("apply", "-f", "-", input=SVC).stdout


def test_apply_updates_a_builtin_kind_by_strategic_merge_with_last_applied(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SVC)
    changed = SVC + "  - {name: https, port: 443}\n"
    assert "service/web configured" in k("apply", "-f", "-", input=changed).stdout
    svc = json.loads(k("get", "svc", "web", "-o", "json").stdout)
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 443]
    last = svc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert len(json.loads(last)["spec"]["ports"]) == 2
    assert any(r.action == "patch" for r in cluster.audit.records())


def test_apply_updates_a_custom_resource_by_merge_patch(cluster: Cluster) -> None:
    k = cluster.kubectl
    _crd(cluster)
    k("apply", "-f", "-", input=WIDGET % 1)
    out = k("apply", "-f", "-", "-v=8", input=WIDGET % 2)
    assert "widget.example.com/w1 configured" in out.stdout
    assert "application/merge-patch+json" in out.stderr
    assert k("get", "widget", "w1", "-o", "jsonpath={.spec.size}").stdout == "2"


def test_apply_server_side(cluster: Cluster) -> None:
    out = cluster.kubectl("apply", "--server-side", "-f", "-", input=SVC).stdout
    assert "service/web serverside-applied" in out
    got = cluster.kubectl("get", "svc", "web", "-o", "json", "--show-managed-fields")
    svc = json.loads(got.stdout)
    assert {m["manager"] for m in svc["metadata"]["managedFields"]} == {"kubectl"}


def test_apply_server_side_conflict_fails_without_force(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "--server-side", "--field-manager=a", "-f", "-", input=CM)
    other = CM.replace("a: b", "a: z")
    res = k("apply", "--server-side", "--field-manager=b", "-f", "-", input=other, check=False)
    assert res.returncode == 1 and "conflict" in res.stderr.lower()
    k("apply", "--server-side", "--field-manager=b", "--force-conflicts", "-f", "-", input=other)


def test_get_default_table(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=SVC)
    header = cluster.kubectl("get", "svc").stdout.splitlines()[0].split()
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]


def test_get_output_yaml_json_and_jsonpath(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SVC)
    assert "kind: Service" in k("get", "svc", "web", "-o", "yaml").stdout
    assert json.loads(k("get", "svc", "web", "-o", "json").stdout)["kind"] == "Service"
    assert k("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].targetPort}").stdout == "80"


def test_get_custom_resource_table_has_one_age_column(cluster: Cluster) -> None:
    from egress_sandbox.mse import crd

    k = cluster.kubectl
    k("apply", "-f", "-", input=json.dumps(crd.crd_manifest()))
    body = {"apiVersion": f"{crd.GROUP}/{crd.VERSION}", "kind": crd.KIND, "metadata": {"name": "m"}}
    k("apply", "-f", "-", input=json.dumps(body))
    lines = k("get", crd.PLURAL).stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    assert lines[1].split()[-1].endswith("s")  # a relative age, not a timestamp


def test_get_watch_streams_changes(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=CM)
    # `get -w` never ends by itself: read its lines until the ConfigMap shows, then stop it.
    with cluster.kubectl_stream("get", "cm", "-w") as lines:
        assert any(line.startswith("c ") for line in lines)


def test_describe_shows_events(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SVC)
    rt = cluster.store.types.get("", "v1", "services")
    assert rt is not None
    cluster.store.record_event(cluster.store.get(rt, "default", "web"), "Synced", "synced by test")
    out = k("describe", "svc", "web").stdout
    assert "Events:" in out and "synced by test" in out


def test_get_events_columns_match_kubectl(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=SVC)
    rt = cluster.store.types.get("", "v1", "services")
    assert rt is not None
    cluster.store.record_event(cluster.store.get(rt, "default", "web"), "Synced", "ok")
    lines = cluster.kubectl("get", "events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split()[1:] == ["Normal", "Synced", "service/web", "ok"]


def test_delete_with_wait(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SVC)
    assert 'service "web" deleted' in k("delete", "svc", "web", "--wait").stdout
    assert k("get", "svc", "web", check=False).returncode == 1


def test_delete_namespace_cascades_and_waits(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("create", "namespace", "team")
    k("-n", "team", "apply", "-f", "-", input=CM)
    k("delete", "ns", "team", "--wait", "--timeout=10s")
    assert "team" not in k("get", "ns").stdout
    assert cluster.store.list(cluster.store.types.get("", "v1", "configmaps"), "team")[0] == []


def test_wait_for_condition(cluster: Cluster) -> None:
    _crd(cluster)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )


def test_wait_for_jsonpath(cluster: Cluster) -> None:
    k = cluster.kubectl
    _crd(cluster)
    k("apply", "-f", "-", input=WIDGET % 1)
    patch = '{"status":{"phase":"Ready"}}'
    k("patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", patch)
    k("wait", "--for=jsonpath={.status.phase}=Ready", "widget/w1", "--timeout=10s")


def test_label_and_annotate(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=SVC)
    k("label", "svc", "web", "tier=front")
    k("annotate", "svc", "web", "note=x")
    assert "web" in k("get", "svc", "-l", "tier=front").stdout
    assert k("get", "svc", "web", "-o", "jsonpath={.metadata.annotations.note}").stdout == "x"


def test_api_resources_lists_builtins_and_crds(cluster: Cluster) -> None:
    _crd(cluster)
    out = cluster.kubectl("api-resources").stdout
    assert "configmaps" in out and "widgets" in out and "ingresses" in out


def test_create_namespace_and_configmap_send_protobuf_and_succeed(cluster: Cluster) -> None:
    k = cluster.kubectl
    assert "namespace/x created" in k("create", "namespace", "x").stdout
    k("create", "configmap", "c1", "-n", "x", "--from-literal=a=b")
    assert k("get", "cm", "c1", "-n", "x", "-o", "jsonpath={.data.a}").stdout == "b"


def test_auth_can_i_for_both_users(cluster: Cluster) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    ro = cluster.kubectl("auth", "can-i", "create", "pods", context="readonly", check=False)
    assert ro.stdout.strip() == "no" and ro.returncode == 1
    ro_list = cluster.kubectl("auth", "can-i", "list", "pods", context="readonly")
    assert ro_list.stdout.strip() == "yes"


def test_read_only_user_is_refused_a_delete(cluster: Cluster) -> None:
    denied = cluster.kubectl("delete", "svc", "kubernetes", context="readonly", check=False)
    assert 'cannot delete resource "services"' in denied.stderr
