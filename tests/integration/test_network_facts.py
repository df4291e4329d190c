"""Preflight's network facts against a sandbox: node vSwitches from node pools, and routes.

Each test starts its own sandbox on block 34 (one at a time), with the topology it needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_env import sandbox_home

from egress_lib import PreconditionFailed, connect, load_parameters, steps
from egress_sandbox.topology import RouteTableSpec, Topology, VSwitchSpec

REPO = Path(__file__).resolve().parents[2]
BLOCK = 34


def _checks(tmp_path: Path, topo: Topology, **changes: object) -> dict[str, steps.preflight.Check]:
    with sandbox_home(tmp_path / "home", BLOCK, topo) as box:
        params = load_parameters(REPO / "parameters" / "sandbox.yaml")
        if "gateway_vswitch" in changes:
            name = changes["gateway_vswitch"]
            vsw = next(v for v in box.cloud.vswitches.values() if v.vswitch_name == name)
            params = params.model_copy(
                update={
                    "gateway": params.gateway.model_copy(update={"vswitches": [vsw.vswitch_id]})
                }
            )
        session = connect(params)
        try:
            found = {c.name: c for c in steps.preflight.checks(session)}
            if any(c.blocking for c in found.values()):
                with pytest.raises(PreconditionFailed):
                    steps.preflight.apply(session)
            return found
        finally:
            session.close()


def _route_check(found: dict[str, steps.preflight.Check]) -> steps.preflight.Check:
    (check,) = [c for n, c in found.items() if n.startswith("route 0.0.0.0/0 of ")]
    return check


def test_default_world_routes_the_gateway_to_the_nat_gateway(tmp_path: Path) -> None:
    found = _checks(tmp_path, Topology.loopback(BLOCK))
    check = _route_check(found)
    assert check.ok and "(System)" in check.detail, check
    assert found["gateway vSwitches are not the nodes' vSwitches"].ok


def test_a_custom_table_without_the_route_is_named_with_its_fix(tmp_path: Path) -> None:
    topo = Topology.loopback(BLOCK).model_copy(
        update={"route_tables": [RouteTableSpec(name="gateway-rt", vswitches=["gateway"])]}
    )
    check = _route_check(_checks(tmp_path, topo))
    assert check.blocking
    table_id = check.detail.split()[2]
    assert table_id.startswith("vtb-") and "(Custom)" in check.detail
    assert "has no 0.0.0.0/0 route" in check.detail
    assert f"CreateRouteEntry --RouteTableId {table_id}" in check.fix


def test_node_vswitches_come_from_the_node_pools_not_the_control_plane(tmp_path: Path) -> None:
    base = Topology.loopback(BLOCK)
    topo = base.model_copy(
        update={
            "vswitches": [
                *base.vswitches,
                VSwitchSpec(name="control-plane", cidr=f"127.{BLOCK}.3.0/24"),
            ],
            "cluster_vswitch": "control-plane",
        }
    )
    # The gateway put in the node pool's vSwitch: pods there would egress past the gateway.
    found = _checks(tmp_path, topo, gateway_vswitch="nodes")
    shared = found["gateway vSwitches are not the nodes' vSwitches"]
    assert not shared.ok and shared.level == "warning"
    assert "also hosts nodes" in shared.detail


def test_a_host_name_status_is_verified_through_connect_to(tmp_path: Path) -> None:
    topo = Topology.loopback(BLOCK).model_copy(update={"ingress_status_hostname": True})
    with sandbox_home(tmp_path / "home", BLOCK, topo):
        params = load_parameters(REPO / "parameters" / "sandbox.yaml")
        session = connect(params.model_copy(update={"approve": True}))
        try:
            for step in steps.RUNBOOK[:-1]:
                step.module.apply(session, step.module.plan(session))
            (addr,) = steps.ingress.wait_for_clb_address(session)
            assert addr.ip is None and addr.hostname
            assert addr.hostname.endswith(".cn-hangzhou.nlb.aliyuncsslb.com")
            result = steps.verify.verify(session, [addr])
            assert result.ok, result
            row, direct = result.rows  # via the gateway, then direct (blocked)
            assert direct.path == "direct" and direct.result == "pass"
            assert f":{addr.hostname}:" in " ".join(
                steps.verify.curl_args(params.destinations[0], addr, 5)
            )
            assert row.status == 200
        finally:
            session.close()


def test_a_kube_context_for_another_cluster_fails_preflight(tmp_path: Path) -> None:
    import yaml

    with sandbox_home(tmp_path / "home", BLOCK, Topology.loopback(BLOCK)) as box:
        params = load_parameters(REPO / "parameters" / "sandbox.yaml")
        same = connect(params)
        try:
            (ok,) = [c for c in steps.preflight.checks(same) if c.name.startswith("kube context")]
            assert ok.ok, ok
        finally:
            same.close()
        # Another API server (same certificate, another endpoint) stands for another cluster.
        other = yaml.safe_load(box.kubeconfig_path.read_text())
        server = other["clusters"][0]["cluster"]["server"]
        other["clusters"][0]["cluster"]["server"] = server.replace("127.0.0.1", "localhost")
        path = tmp_path / "other-kubeconfig"
        path.write_text(yaml.safe_dump(other))
        session = connect(params.model_copy(update={"kubeconfig": str(path)}))
        try:
            found = steps.preflight.checks(session)
            (bad,) = [c for c in found if c.name.startswith("kube context")]
            assert bad.blocking and "localhost" in bad.detail and server in bad.detail
            with pytest.raises(PreconditionFailed, match="kube context"):
                steps.preflight.apply(session)
        finally:
            session.close()


def test_a_docker_hub_image_without_node_snat_warns_and_cannot_be_pulled(tmp_path: Path) -> None:
    with sandbox_home(tmp_path / "home", BLOCK, Topology.loopback(BLOCK)):
        params = load_parameters(REPO / "parameters" / "sandbox.yaml")
        hub = params.model_copy(
            update={
                "approve": True,
                "verify": params.verify.model_copy(update={"image": "curlimages/curl:8.10.1"}),
            }
        )
        session = connect(hub)
        try:
            found = {c.name: c for c in steps.preflight.checks(session)}
            image = found["verify.image can be pulled by the nodes"]
            assert not image.ok and image.level == "warning"
            assert "docker.io needs internet" in image.detail
            for step in steps.RUNBOOK[:-1]:
                step.module.apply(session, step.module.plan(session))
            with pytest.raises(PreconditionFailed, match="ErrImagePull") as err:
                steps.verify.verify(session)
            assert "registry-1.docker.io" in str(err.value)
        finally:
            session.close()
        vpc = connect(params)
        try:
            found = {c.name: c for c in steps.preflight.checks(vpc)}
            assert found["verify.image can be pulled by the nodes"].ok
            assert steps.verify.verify(vpc).ok
        finally:
            vpc.close()
