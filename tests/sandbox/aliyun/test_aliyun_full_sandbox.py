"""The cloud APIs inside the full sandbox: add-on install through CS, a MseIngressConfig through
the kubernetes client, and the CLB it makes as the SLB API reports it.

The module starts its own Sandbox from a topology *file* (``mse_gateway`` timed, so the time a
gateway takes to reach Listening is part of the test) rather than using the session ``sandbox``
fixture: that one holds the runbook tests' state (they install the same add-on and assert it is
absent first), so installing it there would make both outcomes depend on test order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_slb20140515.client import Client as SlbClient
from alibabacloud_tea_openapi import models as open_api_models
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from egress_sandbox.aliyun.records import AVAILABLE_ADDONS
from egress_sandbox.mse.crd import GROUP, PLURAL, VERSION
from egress_sandbox.mse.gateway import TAG_CONFIG
from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

MSE = "mse-ingress-controller"
CONFIG = "egress-probe"
SPEC = "slb.s1.small"  # not the default spec, so the CLB's spec must come from privateSLBSpec
GATEWAY_SECONDS = 0.4  # each of Pending->Running and Running->Listening
TOPOLOGY = f"""
vpc_cidr: 127.21.0.0/16
vswitches:
  - {{name: nodes, cidr: 127.21.1.0/24}}
  - {{name: gateway, cidr: 127.21.2.0/24}}
transitions:
  snat_entry: {{mode: timed, seconds: 0.05}}
  nat_gateway: {{mode: timed, seconds: 0.05}}
  addon_install: {{mode: timed, seconds: 0.2}}
  mse_gateway: {{mode: timed, seconds: {GATEWAY_SECONDS}}}
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("aliyun-full")
    (home / "topology.yaml").write_text(TOPOLOGY)
    with Sandbox(home, Topology.load(home / "topology.yaml")) as sandbox:
        yield sandbox


def sdk_config(box: Sandbox) -> open_api_models.Config:
    return open_api_models.Config(
        access_key_id=box.topology.access_key_id,
        access_key_secret=box.topology.access_key_secret,
        endpoint=box.aliyun.endpoint,
        protocol="http",
        region_id=box.topology.region_id,
    )


def gateway_vswitch(box: Sandbox) -> str:
    return next(v.vswitch_id for v in box.cloud.vswitches.values() if v.vswitch_name == "gateway")


def wait_listening(api: k8s.CustomObjectsApi, name: str, deadline_s: float) -> list[str]:
    """Watch one config until phase Listening; the phases seen on the way, in order."""
    phases: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        stream = k8s_watch.Watch().stream(
            api.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        )
        for event in stream:
            phase = (event["object"].get("status") or {}).get("phase")
            if phase and (not phases or phases[-1] != phase):
                phases.append(phase)
            if phase == "Listening":
                return phases
            assert phase != "Failed", event["object"]["status"]
    raise AssertionError(f"{name} not Listening within {deadline_s} s; saw {phases}")


def test_1_cluster_detail_and_kubeconfig(box: Sandbox) -> None:
    cs = CsClient(sdk_config(box))
    detail = cs.describe_cluster_detail(box.cluster_id).body
    cluster = box.cloud.clusters[box.cluster_id]
    assert (detail.cluster_id, detail.vpc_id, detail.state) == (
        box.cluster_id,
        cluster.vpc_id,
        "running",
    )
    kubeconfig = cs.describe_cluster_user_kubeconfig(
        box.cluster_id, cs_models.DescribeClusterUserKubeconfigRequest(private_ip_address=True)
    ).body
    # The user kubeconfig is the sandbox's own: a client can reach the cluster with it.
    assert kubeconfig.config == box.kubeconfig_path.read_text() == box.kubeconfig_text()


def test_2_install_addon_through_cs_and_wait_for_the_task(box: Sandbox) -> None:
    cs = CsClient(sdk_config(box))
    body = [cs_models.InstallClusterAddonsRequestBody(name=MSE, version=AVAILABLE_ADDONS[MSE])]
    task_id = cs.install_cluster_addons(
        box.cluster_id, cs_models.InstallClusterAddonsRequest(body=body)
    ).body.task_id
    states = [cs.describe_task_info(task_id).body.state]
    assert states == ["running"]
    assert cs.describe_cluster_addon_instance(box.cluster_id, MSE).body.state == "initial"
    deadline = time.monotonic() + 5
    while states[-1] == "running":
        assert time.monotonic() < deadline, "install task still running"
        time.sleep(0.05)
        states.append(cs.describe_task_info(task_id).body.state)
    assert states[-1] == "success"
    assert cs.describe_cluster_addon_instance(box.cluster_id, MSE).body.state == "active"
    version = cs.describe_cluster_addons_version(box.cluster_id).body[MSE]
    assert (version["version"], version["exist"]) == (AVAILABLE_ADDONS[MSE], True)


def test_3_private_only_gateway_gets_one_intranet_clb(box: Sandbox) -> None:
    api_client = k8s_config.new_client_from_config(config_file=str(box.kubeconfig_path))
    api = k8s.CustomObjectsApi(api_client)
    vsw = gateway_vswitch(box)
    created = time.monotonic()
    api.create_cluster_custom_object(
        GROUP,
        VERSION,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MseIngressConfig",
            "metadata": {"name": CONFIG},
            "spec": {
                "name": CONFIG,
                "common": {"network": {"vSwitches": [vsw], "privateSLBSpec": SPEC}},
                "ingress": {"local": {"ingressClass": CONFIG}},
            },
        },
    )
    phases = wait_listening(api, CONFIG, deadline_s=10 * GATEWAY_SECONDS + 5)
    took = time.monotonic() - created
    assert phases[-2:] == ["Running", "Listening"]
    # Two timed steps of GATEWAY_SECONDS each (Pending->Running, Running->Listening).
    assert took >= 2 * GATEWAY_SECONDS - 0.05, took

    slb = SlbClient(sdk_config(box))
    tag = slb_models.DescribeLoadBalancersRequestTag(key=TAG_CONFIG, value=CONFIG)
    found = slb.describe_load_balancers(
        slb_models.DescribeLoadBalancersRequest(region_id=box.topology.region_id, tag=[tag])
    ).body
    assert found.total_count == 1  # privateSLBSpec only: no public CLB
    (lb,) = found.load_balancers.load_balancer
    assert (lb.address_type, lb.load_balancer_spec, lb.v_switch_id, lb.load_balancer_status) == (
        "intranet",
        SPEC,
        vsw,
        "active",
    )
    attr = slb.describe_load_balancer_attribute(
        slb_models.DescribeLoadBalancerAttributeRequest(load_balancer_id=lb.load_balancer_id)
    ).body
    assert (attr.address_type, attr.load_balancer_spec, attr.v_switch_id) == ("intranet", SPEC, vsw)
    assert attr.listener_ports.listener_port == [80]
    api_client.close()


def _tls_ingress(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "ingressClassName": CONFIG,
            "tls": [{"hosts": ["egress.example.com"], "secretName": "egress-tls"}],
            "rules": [
                {
                    "host": "egress.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def test_4_tls_ingress_adds_listener_443(box: Sandbox) -> None:
    api_client = k8s_config.new_client_from_config(config_file=str(box.kubeconfig_path))
    try:
        k8s.NetworkingV1Api(api_client).create_namespaced_ingress(
            "default", _tls_ingress("egress-tls")
        )
    finally:
        api_client.close()
    slb = SlbClient(sdk_config(box))
    with box.cloud_lock:
        lb_id = next(
            lb.load_balancer_id
            for lb in box.cloud.load_balancers.values()
            if lb.tags.get(TAG_CONFIG) == CONFIG
        )
    deadline = time.monotonic() + 1.5
    ports: list[int] = []
    while time.monotonic() < deadline and ports != [80, 443]:
        ports = slb.describe_load_balancer_attribute(
            slb_models.DescribeLoadBalancerAttributeRequest(load_balancer_id=lb_id)
        ).body.listener_ports.listener_port
        time.sleep(0.05)
    assert ports == [80, 443]


def test_5_uninstall_addon_and_its_state(box: Sandbox) -> None:
    cs = CsClient(sdk_config(box))
    task_id = cs.un_install_cluster_addons(
        box.cluster_id,
        cs_models.UnInstallClusterAddonsRequest(
            addons=[cs_models.UnInstallClusterAddonsRequestAddons(name=MSE)]
        ),
    ).body.task_id
    assert cs.describe_cluster_addon_instance(box.cluster_id, MSE).body.state == "deleting"
    deadline = time.monotonic() + 5
    while cs.describe_task_info(task_id).body.state == "running":
        assert time.monotonic() < deadline, "uninstall task still running"
        time.sleep(0.05)
    assert cs.describe_task_info(task_id).body.state == "success"
    assert cs.list_cluster_addon_instances(box.cluster_id).body.addons == []
    assert cs.describe_cluster_addons_version(box.cluster_id).body[MSE]["exist"] is False
