"""The emulated kube-apiserver driven by real kubectl subprocesses."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import pytest

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
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {phase: {type: string}}}
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: %d}\n"


def test_apply_get_describe_delete(cluster: Cluster) -> None:
    k = cluster.kubectl
    assert "service/web created" in k("apply", "-f", "-", input=SVC).stdout
    changed = SVC + "  - {name: https, port: 443}\n"
    assert "service/web configured" in k("apply", "-f", "-", input=changed).stdout
    svc = json.loads(k("get", "svc", "web", "-o", "json").stdout)
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 443]
    assert "kubectl.kubernetes.io/last-applied-configuration" in svc["metadata"]["annotations"]
    table = k("get", "svc").stdout
    assert table.split("\n")[0].split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    assert "kind: Service" in k("get", "svc", "web", "-o", "yaml").stdout
    assert k("get", "svc", "web", "-o", "jsonpath={.spec.ports[1].targetPort}").stdout == "443"
    cluster.store.record_event(
        cluster.store.get(cluster.store.types.get("", "v1", "services"), "default", "web"),
        "Synced",
        "synced by test",
    )
    assert "synced by test" in k("describe", "svc", "web").stdout
    assert "synced by test" in k("get", "events").stdout
    k("label", "svc", "web", "tier=front")
    k("annotate", "svc", "web", "note=x")
    assert "web" in k("get", "svc", "-l", "tier=front").stdout
    assert (
        "service/web serverside-applied"
        in k("apply", "--server-side", "--force-conflicts", "-f", "-", input=SVC).stdout
    )
    k("delete", "svc", "web", "--wait")
    assert k("get", "svc", "web", check=False).returncode == 1


def test_crd_wait_and_cr_apply(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=CRD)
    k("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    k("apply", "-f", "-", input=WIDGET % 1)
    assert "widget.example.com/w1 configured" in k("apply", "-f", "-", input=WIDGET % 2).stdout
    assert k("get", "wd", "w1", "-o", "jsonpath={.spec.size}").stdout == "2"
    k(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Ready"}}',
    )
    k("wait", "--for=jsonpath={.status.phase}=Ready", "widget/w1", "--timeout=10s")
    assert "Widget" in k("explain", "widgets").stdout
    assert "widgets" in k("api-resources").stdout


def test_namespace_cascade_and_watch(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
    k(
        "-n",
        "team",
        "apply",
        "-f",
        "-",
        input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    )
    with pytest.raises(subprocess.TimeoutExpired) as e:
        k("get", "cm", "-n", "team", "-w", timeout=3)
    out = e.value.stdout
    assert "c " in (out.decode() if isinstance(out, bytes) else out or "")
    k("delete", "ns", "team", "--wait", "--timeout=10s")
    assert "team" not in k("get", "ns").stdout


def test_auth_can_i(cluster: Cluster) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    ro = cluster.kubectl("auth", "can-i", "create", "pods", context="readonly", check=False)
    assert ro.stdout.strip() == "no" and ro.returncode == 1
    assert (
        cluster.kubectl("auth", "can-i", "list", "pods", context="readonly").stdout.strip() == "yes"
    )
    denied = cluster.kubectl("delete", "svc", "kubernetes", context="readonly", check=False)
    assert 'cannot delete resource "services"' in denied.stderr
