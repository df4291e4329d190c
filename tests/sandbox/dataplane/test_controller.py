from __future__ import annotations

import pytest

from egress_sandbox.k8s.errors import NotFound
from egress_sandbox.mse.crd import CRD_NAME, MSE_INGRESS_CONFIG
from egress_sandbox.mse.gateway import gateway_of_config

from .conftest import World, wait_for
from .helpers import GATEWAY, egress_config, listening_gateway, mse_class


def test_install_creates_controller_default_gateway_and_class(world: World) -> None:
    world.install()
    crds = world.rt("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    crd = world.store.get(crds, None, CRD_NAME)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["scope"] == "Cluster" and version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    dep = world.store.get(
        world.rt("apps", "v1", "deployments"),
        "mse-ingress-controller",
        "ack-mse-ingress-controller",
    )
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        "acs/mse-ingress-controller:v2.1.3"
    )
    assert dep["status"]["readyReplicas"] == 1
    assert {"type": "Available", "status": "True"}.items() <= dep["status"]["conditions"][0].items()
    default = f"mse-ingress-premium-{world.cluster_id}"
    cfg = world.config(default)
    assert cfg is not None and cfg["spec"]["name"] == default
    assert cfg["spec"]["common"]["network"]["vSwitches"] == [world.vswitch("nodes")]
    ic = world.store.get(world.ingress_classes, None, "mse")
    assert ic["spec"]["controller"] == "mse.alibabacloud.com/ingress"
    assert ic["spec"]["parameters"]["name"] == default
    world.wait_phase(default, "Listening")
    with world.cloud_lock:
        gw = gateway_of_config(world.cloud, default)
        assert gw is not None and gw.public_slb_id  # the default one has a public CLB


def test_existing_mse_class_suppresses_default_gateway(world: World) -> None:
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    assert world.config(f"mse-ingress-premium-{world.cluster_id}") is None
    assert world.store.get(world.ingress_classes, None, "mse")["spec"]["parameters"]["name"] == (
        GATEWAY
    )


def test_uninstall_keeps_crd(world: World) -> None:
    world.install()
    world.controller.addon_uninstalled(world.cluster_id, "mse-ingress-controller")
    deps = world.rt("apps", "v1", "deployments")
    assert world.store.try_get(deps, "mse-ingress-controller", "ack-mse-ingress-controller") is None
    crds = world.rt("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert world.store.try_get(crds, None, CRD_NAME) is not None


def test_phases_and_internal_clb(world: World) -> None:
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    world.store.create(MSE_INGRESS_CONFIG, egress_config(world))
    seen: list[str] = []

    def progressed() -> bool:
        phase = world.phase(GATEWAY)
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return phase == "Listening"

    wait_for(progressed, what="Listening")
    assert seen[0] == "Pending" and seen[-1] == "Listening"
    reasons = [e["reason"] for e in world.events() if e["involvedObject"]["name"] == GATEWAY]
    assert reasons[:3] == ["Creating", "Running", "Listening"]
    cfg = world.config(GATEWAY)
    assert cfg is not None and "mse.alibabacloud.com/gateway" in cfg["metadata"]["finalizers"]
    with world.cloud_lock:
        gw = gateway_of_config(world.cloud, GATEWAY)
        assert gw is not None and gw.gateway_id.startswith("gw-")
        assert (gw.spec, gw.replicas) == ("2c4g", 3)
        assert not gw.public_slb_id  # privateSLBSpec only: no public CLB
        lb = world.cloud.load_balancers[gw.private_slb_id]
    assert lb.address_type == "intranet" and lb.load_balancer_spec == "slb.s2.small"
    assert lb.vswitch_id == world.vswitch("gateway") and lb.address == "127.16.2.10"
    assert lb.tags == {
        "ack.aliyun.com": world.cluster_id,
        "ingress.k8s.alibaba/MseIngressConfig": GATEWAY,
    }
    assert lb.listeners == [{"port": 80, "protocol": "http"}]


def test_spec_change_after_listening_updates_gateway(world: World) -> None:
    listening_gateway(world)
    cfg = world.config(GATEWAY)
    assert cfg is not None
    cfg["spec"]["common"]["instance"]["replicas"] = 5
    world.store.update(MSE_INGRESS_CONFIG, cfg)

    def replicas() -> bool:
        with world.cloud_lock:
            gw = gateway_of_config(world.cloud, GATEWAY)
            return gw is not None and gw.replicas == 5

    wait_for(replicas, what="replicas 5")
    assert world.phase(GATEWAY) == "Listening"


def test_unknown_vswitch_and_gateway_id_fail(world: World) -> None:
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    bad = egress_config(world, "bad-vsw")
    bad["spec"]["common"]["network"]["vSwitches"] = ["vsw-doesnotexist"]
    world.store.create(MSE_INGRESS_CONFIG, bad)
    reuse = egress_config(world, "reuse")
    reuse["spec"]["id"] = "gw-0000"
    world.store.create(MSE_INGRESS_CONFIG, reuse)
    cfg = world.wait_phase("bad-vsw", "Failed")
    assert "vsw-doesnotexist" in cfg["status"]["message"]
    cfg = world.wait_phase("reuse", "Failed")
    assert cfg["status"]["message"] == "gateway gw-0000 not found"


def test_delete_releases_gateway_through_finalizer(world: World) -> None:
    lb = listening_gateway(world)
    world.store.delete(MSE_INGRESS_CONFIG, None, GATEWAY)
    cfg = world.config(GATEWAY)
    assert cfg is not None and cfg["metadata"].get("deletionTimestamp")
    wait_for(lambda: world.config(GATEWAY) is None, what="config removal")
    with world.cloud_lock:
        assert gateway_of_config(world.cloud, GATEWAY) is None
        assert lb.load_balancer_id not in world.cloud.load_balancers
    assert lb.load_balancer_id not in world.dataplane.open_ports()


def test_fail_injection(world: World) -> None:
    listening_gateway(world)
    world.controller.fail(GATEWAY, "gateway gw-x is abnormal")
    cfg = world.config(GATEWAY)
    assert cfg is not None and cfg["status"] == {
        "phase": "Failed",
        "message": "gateway gw-x is abnormal",
    }
    with pytest.raises(NotFound):
        world.controller.fail("nope", "x")


def test_other_addons_are_ignored(world: World) -> None:
    world.controller.addon_installed(world.cluster_id, "nginx-ingress-controller", "1", "")
    deps = world.rt("apps", "v1", "deployments")
    assert world.store.list(deps)[0] == []
    assert world.controller.kubeconfig(world.cluster_id).startswith("apiVersion")
