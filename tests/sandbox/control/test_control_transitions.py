"""Stuck resources, run-time transition modes, manual advance, and MseIngressConfig failure."""

from __future__ import annotations

import time

import pytest
from alibabacloud_cs20151215 import models as cs_models
from control_helpers import cli, create_snat, cs, kube, snat_status, vswitch_id, wait_for
from kubernetes import client as k8s

from egress_sandbox.control.client import ControlClient, ControlError
from egress_sandbox.mse.crd import GROUP, PLURAL, VERSION
from egress_sandbox.mse.install import default_config_name
from egress_sandbox.sandbox import Sandbox


def config_status(box: Sandbox, name: str) -> dict[str, str]:
    obj = k8s.CustomObjectsApi(kube(box)).get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    return dict(obj.get("status") or {})


def test_stuck_snat_entry_stays_pending_until_clear(box: Sandbox, control: ControlClient) -> None:
    control.set_transition("snat_entry", "timed", 0.3)
    entry = create_snat(box, "nodes", name="stuck-one")
    assert cli(box, "fault", "stuck", "--kind", "snat_entry", "--id", entry) == 0
    time.sleep(0.8)  # well past the 0.3 s the transition takes
    assert snat_status(box, entry) == "Pending"
    assert control.faults()["stuck"] == [{"kind": "snat_entry", "id": entry, "parked_steps": 1}]
    assert cli(box, "fault", "clear") == 0
    wait_for(lambda: snat_status(box, entry) == "Available", 5, "the released SNAT entry")


def test_transition_set_manual_then_advance(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("transition", "set", "--kind", "snat_entry", "--mode", "manual")
    assert cli(box, *args) == 0
    assert "snat_entry: manual" in capsys.readouterr().out
    entry = create_snat(box, "gateway", name="manual-one")
    time.sleep(0.3)  # longer than the timed default of this topology (0.05 s)
    assert snat_status(box, entry) == "Pending"
    assert cli(box, "transition", "advance", "--id", entry) == 0
    assert snat_status(box, entry) == "Available"  # manual steps run on the caller's request
    with pytest.raises(ControlError) as info:
        control.advance(entry)  # nothing is waiting any more
    assert info.value.status == 404


def test_addon_install_manual_then_advance_by_task_id(box: Sandbox, control: ControlClient) -> None:
    control.set_transition("addon_install", "manual")
    request = cs_models.InstallClusterAddonsRequest(
        body=[
            cs_models.InstallClusterAddonsRequestBody(
                name="mse-ingress-controller", version="2.1.3"
            )
        ]
    )
    task_id = cs(box).install_cluster_addons(box.cluster_id, request).body.task_id
    time.sleep(0.2)
    assert cs(box).describe_task_info(task_id).body.state == "running"
    control.advance(task_id)
    wait_for(lambda: cs(box).describe_task_info(task_id).body.state == "success", 5, "task")


def test_mse_fail_sets_phase_failed(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs after the add-on install above: the default config exists (module order)."""
    name = default_config_name(box.cluster_id)
    wait_for(lambda: config_status(box, name).get("phase") == "Listening", 10, f"{name} Listening")
    assert cli(box, "fault", "mse-fail", "--name", name, "--message", "quota exceeded") == 0
    assert config_status(box, name) == {"phase": "Failed", "message": "quota exceeded"}
    with pytest.raises(ControlError) as info:
        control.mse_fail("no-such-config", "x")
    assert info.value.status == 404


def test_stuck_mse_gateway_holds_a_new_config_in_pending(
    box: Sandbox, control: ControlClient
) -> None:
    name = "egress-held"
    control.stuck("mse_gateway", name)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MseIngressConfig",
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "common": {
                "instance": {"spec": "2c4g", "replicas": 3},
                "network": {
                    "vSwitches": [vswitch_id(box, "gateway")],
                    "privateSLBSpec": "slb.s2.small",
                },
            },
        },
    }
    k8s.CustomObjectsApi(kube(box)).create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    wait_for(lambda: config_status(box, name).get("phase") == "Pending", 5, "Pending")
    time.sleep(0.4)  # several times the 0.05 s each phase takes here
    assert config_status(box, name).get("phase") == "Pending"
    control.clear_faults()
    wait_for(lambda: config_status(box, name).get("phase") == "Listening", 10, "Listening")


def test_transition_list_and_reset_restore_defaults(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    default = control.transitions()["mse_gateway"]
    control.set_transition("mse_gateway", "immediate")
    assert control.transitions()["mse_gateway"]["mode"] == "immediate"
    assert box.topology.transitions.mse_gateway.mode == "immediate"  # the live object
    capsys.readouterr()
    assert cli(box, "transition", "list") == 0
    assert "immediate" in capsys.readouterr().out
    assert cli(box, "fault", "reset") == 0
    assert control.transitions()["mse_gateway"] == default
