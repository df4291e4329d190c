"""CS (ROA) through the real SDK: cluster detail, add-on install lifecycle and hooks, errors."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyun_helpers import World, fast_transitions

from egress_sandbox.aliyun.records import AVAILABLE_ADDONS
from egress_sandbox.topology import Topology

MSE = "mse-ingress-controller"


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def install(world: World, name: str = MSE, version: str | None = None, config: str = "{}") -> str:
    body = [
        cs_models.InstallClusterAddonsRequestBody(
            name=name, version=version or AVAILABLE_ADDONS.get(name, "1.0.0"), config=config
        )
    ]
    resp = world.cs().install_cluster_addons(
        world.cluster_id, cs_models.InstallClusterAddonsRequest(body=body)
    )
    assert resp.body.cluster_id == world.cluster_id and resp.body.request_id
    return str(resp.body.task_id)


def task_state(world: World, task_id: str) -> str:
    return str(world.cs().describe_task_info(task_id).body.state)


def test_cluster_detail(world: World) -> None:
    body = world.cs().describe_cluster_detail(world.cluster_id).body
    cluster = world.cloud.clusters[world.cluster_id]
    assert (body.cluster_id, body.vpc_id, body.state) == (
        world.cluster_id,
        cluster.vpc_id,
        "running",
    )
    assert body.vswitch_ids == cluster.vswitch_ids


def test_unknown_cluster_is_a_lower_case_cs_error(world: World) -> None:
    with pytest.raises(ClientException) as info:
        world.cs().describe_cluster_detail("c0000000000000000000000000000000f")
    e = info.value
    assert (e.code, e.status_code) == ("ErrorClusterNotFound", 404)
    assert set(e.data) == {"code", "message", "requestId", "statusCode"}
    assert e.request_id == e.data["requestId"]


def test_install_runs_hooks_and_finishes_the_task(world: World) -> None:
    client = world.cs()
    with pytest.raises(ClientException) as info:
        client.get_cluster_addon_instance(world.cluster_id, MSE)
    assert (info.value.code, info.value.status_code) == ("AddonNotFound", 404)
    versions = client.describe_cluster_addons_version(world.cluster_id).body
    assert versions[MSE]["version"] == "" and versions[MSE]["next_version"] == AVAILABLE_ADDONS[MSE]

    task_id = install(world, config='{"IngressClass": "mse"}')
    assert task_id.startswith("T-")
    assert world.hooks.calls[0] == (
        "installing",
        world.cluster_id,
        MSE,
        AVAILABLE_ADDONS[MSE],
        '{"IngressClass": "mse"}',
    )
    wait_for(lambda: task_state(world, task_id) == "success")
    assert [c[0] for c in world.hooks.calls] == ["installing", "installed"]
    instance = client.get_cluster_addon_instance(world.cluster_id, MSE).body
    assert (instance.name, instance.version, instance.state) == (
        MSE,
        AVAILABLE_ADDONS[MSE],
        "active",
    )
    listed = client.list_cluster_addon_instances(world.cluster_id).body.addons
    assert [(a.name, a.state) for a in listed] == [(MSE, "active")]
    assert client.describe_cluster_addon_instance(world.cluster_id, MSE).body.state == "active"
    assert client.describe_cluster_addons_version(world.cluster_id).body[MSE]["exist"] is True

    with pytest.raises(ClientException) as info:
        install(world)
    assert (info.value.code, info.value.status_code) == ("AddonAlreadyInstalled", 400)

    uninstall = client.un_install_cluster_addons(
        world.cluster_id,
        cs_models.UnInstallClusterAddonsRequest(
            addons=[cs_models.UnInstallClusterAddonsRequestAddons(name=MSE)]
        ),
    ).body
    wait_for(lambda: task_state(world, uninstall.task_id) == "success")
    assert world.hooks.calls[-1] == ("uninstalled", world.cluster_id, MSE)
    assert client.list_cluster_addon_instances(world.cluster_id).body.addons == []


def test_install_errors(world: World) -> None:
    for name, version, code in [
        ("no-such-addon", "1.0.0", "AddonNotSupported"),
        (MSE, "0.0.1", "AddonVersionNotSupported"),
    ]:
        with pytest.raises(ClientException) as info:
            install(world, name, version)
        assert (info.value.code, info.value.status_code) == (code, 400)
    with pytest.raises(ClientException) as info:
        install(world, config="not json")
    assert info.value.code == "InvalidParameter"
    assert world.hooks.calls == []
    with pytest.raises(ClientException) as info:
        world.cs().describe_task_info("T-000000000000000000000000")
    assert (info.value.code, info.value.status_code) == ("ErrorTaskNotFound", 404)


def test_failing_hook_fails_the_task(world: World) -> None:
    world.hooks.fail_install = True
    task_id = install(world)
    wait_for(lambda: task_state(world, task_id) == "fail")
    body = world.cs().describe_task_info(task_id).body
    assert body.error.code == "AddonInstallFailed"
    assert world.cs().get_cluster_addon_instance(world.cluster_id, MSE).body.state == "unhealthy"


def test_kubeconfig_and_list_addons(world: World) -> None:
    client = world.cs()
    body = client.describe_cluster_user_kubeconfig(
        world.cluster_id,
        cs_models.DescribeClusterUserKubeconfigRequest(
            private_ip_address=True, temporary_duration_minutes=60
        ),
    ).body
    assert body.config == f"apiVersion: v1\nkind: Config\n# {world.cluster_id}\n"
    assert body.expiration.endswith("Z")
    with pytest.raises(ClientException) as info:
        client.describe_cluster_user_kubeconfig(
            world.cluster_id,
            cs_models.DescribeClusterUserKubeconfigRequest(temporary_duration_minutes=5),
        )
    assert info.value.code == "InvalidParameter"
    addons = client.list_addons(
        cs_models.ListAddonsRequest(cluster_id=world.cluster_id)
    ).body.addons
    assert {(a.name, a.version) for a in addons} == set(AVAILABLE_ADDONS.items())


class TestManual:
    @pytest.fixture
    def topology(self) -> Topology:
        return Topology(transitions=fast_transitions("manual"))

    def test_task_waits_for_advance(self, world: World) -> None:
        task_id = install(world)
        time.sleep(0.1)
        assert task_state(world, task_id) == "running"
        assert world.cs().get_cluster_addon_instance(world.cluster_id, MSE).body.state == "initial"
        assert [c[0] for c in world.hooks.calls] == ["installing"]
        assert world.server.cs.advance_task(task_id) is True
        assert task_state(world, task_id) == "success"
        assert [c[0] for c in world.hooks.calls] == ["installing", "installed"]
