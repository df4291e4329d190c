"""The emulated controller without the MSE RAM roles, and with a public SLB by default."""

from __future__ import annotations

from egress_sandbox.aliyun.ram.models import MSE_ROLES
from egress_sandbox.mse.crd import MSE_INGRESS_CONFIG
from egress_sandbox.mse.gateway import AUTHORIZATION_HELP, gateway_of_config

from .conftest import World
from .helpers import GATEWAY, egress_config, mse_class


def test_without_the_roles_the_addon_installs_and_the_config_fails(world: World) -> None:
    with world.cloud_lock:
        world.cloud.ram_roles.clear()
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    world.store.create(MSE_INGRESS_CONFIG, egress_config(world))
    cfg = world.wait_phase(GATEWAY, "Failed")
    message = cfg["status"]["message"]
    assert all(role in message for role in MSE_ROLES) and AUTHORIZATION_HELP in message
    (event,) = world.events("Failed")
    assert event["type"] == "Warning" and event["message"] == message
    with world.cloud_lock:
        assert gateway_of_config(world.cloud, GATEWAY) is None  # nothing was bought


def test_public_slb_by_default_gives_every_gateway_an_internet_clb(world: World) -> None:
    world.controller.public_slb_by_default = True
    world.store.create(world.ingress_classes, mse_class())
    world.install()
    world.store.create(MSE_INGRESS_CONFIG, egress_config(world))
    world.wait_phase(GATEWAY, "Listening")
    with world.cloud_lock:
        gw = gateway_of_config(world.cloud, GATEWAY)
        assert gw is not None and gw.public_slb_id
        assert world.cloud.load_balancers[gw.public_slb_id].address_type == "internet"
