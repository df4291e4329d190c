"""The seed's own manifests, applied with plain ``kubectl apply -f``, work against the sandbox.

This is the guide's procedure done by hand, as an operator would rehearse it: install the
add-on through the CS API, ``kubectl apply`` the MseIngressConfig, the IngressClass bound to it,
the ExternalName Service and the Ingress, read the CLB address from the Ingress status, then
``curl --resolve`` through it: 503 while the gateway's vSwitch has no SNAT entry, the origin's
answer once it has one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

SEED = Path(__file__).resolve().parents[1] / "unit" / "seed_manifests"
DEADLINE_SECONDS = 30.0

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.curl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox of its own: the session one may already have SNAT for the gateway."""
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    with Sandbox(tmp_path_factory.mktemp("seed-home"), Topology.loopback(19)) as box:
        yield box


def _cloud_config(box: Any) -> Any:
    from alibabacloud_tea_openapi.models import Config

    topo = box.topology
    return Config(
        access_key_id=topo.access_key_id,
        access_key_secret=topo.access_key_secret,
        endpoint=box.aliyun.endpoint,
        protocol="http",
        region_id=topo.region_id,
    )


def _kubectl(box: Any, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(box.kubeconfig_path)}
    done = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _curl(ip: str, port: int) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "http://www.aliyun.com/product/aliware/mse"
            if port == 80
            else f"http://www.aliyun.com:{port}/product/aliware/mse",
            "--resolve",
            f"www.aliyun.com:{port}:{ip}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def _install_controller(box: Any) -> None:
    from alibabacloud_cs20151215 import models as cs_models
    from alibabacloud_cs20151215.client import Client as CsClient

    cs = CsClient(_cloud_config(box))
    version = cs.describe_cluster_addons_version(box.cluster_id).body["mse-ingress-controller"]
    req = cs_models.InstallClusterAddonsRequest(
        body=[
            cs_models.InstallClusterAddonsRequestBody(
                name="mse-ingress-controller", version=version["next_version"] or version["version"]
            )
        ]
    )
    task_id = cs.install_cluster_addons(box.cluster_id, req).body.task_id
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        state = cs.describe_task_info(task_id).body.state
        if state == "success":
            return
        assert state == "running", f"add-on install task {task_id} ended {state}"
        time.sleep(0.1)  # the CS API has no watch; the task takes a fraction of a second here
    raise AssertionError(f"add-on install task {task_id} still running after {DEADLINE_SECONDS} s")


def _gateway_vswitch(box: Any) -> str:
    return next(v.vswitch_id for v in box.cloud.vswitches.values() if v.vswitch_name == "gateway")


def _seed_documents(box: Any) -> str:
    docs = []
    for name in ("mse-ingress-config", "ingress-class", "service", "ingress-http"):
        doc = yaml.safe_load((SEED / f"{name}.yaml").read_text())
        if doc["kind"] == "MseIngressConfig":
            # The guide's placeholder "vsw-xxxx" becomes the sandbox's gateway vSwitch.
            doc["spec"]["common"]["network"]["vSwitches"] = [_gateway_vswitch(box)]
        docs.append(doc)
    return yaml.safe_dump_all(docs)


def _add_snat(box: Any) -> str:
    from alibabacloud_vpc20160428 import models as vpc_models
    from alibabacloud_vpc20160428.client import Client as VpcClient

    vpc = VpcClient(_cloud_config(box))
    region = box.topology.region_id
    nat = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=region)
    ).body.nat_gateways.nat_gateway[0]
    eip = nat.ip_lists.ip_list[0].ip_address
    entry_id = vpc.create_snat_entry(
        vpc_models.CreateSnatEntryRequest(
            region_id=region,
            snat_table_id=nat.snat_table_ids.snat_table_id[0],
            source_vswitch_id=_gateway_vswitch(box),
            snat_ip=eip,
            snat_entry_name="egress-gateway",
        )
    ).body.snat_entry_id
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        entries = vpc.describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id=region,
                snat_table_id=nat.snat_table_ids.snat_table_id[0],
                snat_entry_id=entry_id,
            )
        ).body.snat_table_entries.snat_table_entry
        if entries and entries[0].status == "Available":
            return str(eip)
        time.sleep(0.1)  # SNAT entries have no watch either
    raise AssertionError(f"SNAT entry {entry_id} not Available after {DEADLINE_SECONDS} s")


def test_seed_manifests_with_kubectl_then_curl_through_the_gateway(fresh: Any) -> None:
    _install_controller(fresh)
    _kubectl(fresh, "apply", "-f", "-", stdin=_seed_documents(fresh))
    _kubectl(
        fresh,
        "wait",
        "mseingressconfig/egress-gateway",
        "--for=jsonpath={.status.phase}=Listening",
        f"--timeout={DEADLINE_SECONDS:.0f}s",
    )
    _kubectl(
        fresh,
        "wait",
        "ingress/mse-ingress",
        "-n",
        "default",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
        f"--timeout={DEADLINE_SECONDS:.0f}s",
    )
    status = json.loads(_kubectl(fresh, "get", "ingress", "mse-ingress", "-o", "json"))["status"]
    lb = status["loadBalancer"]["ingress"][0]
    ip, port = lb["ip"], (lb.get("ports") or [{"port": 80}])[0]["port"]
    assert ip.startswith("127.19.2."), "the CLB address lies in the gateway vSwitch"

    code, body = _curl(ip, port)
    assert code == 503, body
    assert "upstream connect error" in body

    eip = _add_snat(fresh)
    code, body = _curl(ip, port)
    assert code == 200, body
    echo = json.loads(body)
    assert echo["host"] == "www.aliyun.com"
    assert echo["path"] == "/product/aliware/mse"
    assert echo["source_ip"] == eip, "the origin sees the NAT gateway's EIP"
