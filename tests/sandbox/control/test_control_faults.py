"""Faults through the CLI and the control endpoint, seen by the real SDK and kubernetes client."""

from __future__ import annotations

import json
import threading
import time

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_vpc20160428 import models as vpc_models
from control_helpers import REGION, cli, configmap, cs, kube, vpc, wait_for
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from egress_sandbox.control.client import ControlClient, ControlError
from egress_sandbox.sandbox import Sandbox


def describe_vpcs(box: Sandbox) -> object:
    return vpc(box).describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))


def test_cloud_fault_via_cli_fails_the_next_calls(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--action", "DescribeVpcs", "--code", "Forbidden.Injected", "--status", "403"]
    assert cli(box, "fault", "add", "--api", "vpc", *args, "--count", "2") == 0
    assert "next 2 vpc DescribeVpcs" in capsys.readouterr().out
    for _ in range(2):
        with pytest.raises(ClientException) as info:
            describe_vpcs(box)
        assert (info.value.code, info.value.status_code) == ("Forbidden.Injected", 403)
    describe_vpcs(box)  # used up


def test_throttling_with_retry_after(box: Sandbox, control: ControlClient) -> None:
    control.add_fault(
        api="vpc", action="DescribeVpcs", code="Throttling.User", status=400, retry_after_ms=1500
    )
    with pytest.raises(ThrottlingException) as info:
        describe_vpcs(box)
    assert (info.value.code, info.value.retry_after) == ("Throttling.User", 1500)


def test_cloud_fault_is_scoped_to_its_api(box: Sandbox, control: ControlClient) -> None:
    control.add_fault(api="slb", action="DescribeVpcs", code="X", status=500)
    describe_vpcs(box)  # a VPC call: the SLB-scoped fault does not match it
    control.add_fault(
        api="cs", action="DescribeClusterDetail", code="ErrorQueryCluster", status=400
    )
    with pytest.raises(ClientException) as info:
        cs(box).describe_cluster_detail(box.cluster_id)
    assert (info.value.code, info.value.status_code) == ("ErrorQueryCluster", 400)
    cs(box).describe_cluster_detail(box.cluster_id)


def test_latency_fault(box: Sandbox, control: ControlClient) -> None:
    control.add_fault(api="vpc", action="DescribeVpcs", latency_ms=300)
    start = time.monotonic()
    describe_vpcs(box)
    assert time.monotonic() - start >= 0.3


def test_fault_list_and_clear(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    control.add_fault(api="vpc", action="CreateSnatEntry", code="X", status=400, count=3)
    control.add_fault(api="k8s", action="create", resource="services", code="Y", status=500)
    capsys.readouterr()
    assert cli(box, "fault", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [f["action"] for f in listed["cloud"]] == ["CreateSnatEntry"]
    assert [(f["verb"], f["resource"]) for f in listed["k8s"]] == [("create", "services")]
    assert cli(box, "fault", "list") == 0
    table = capsys.readouterr().out
    assert "CreateSnatEntry" in table and "create services" in table
    assert cli(box, "fault", "clear") == 0
    assert control.faults() == {"cloud": [], "k8s": [], "stuck": []}


def test_bad_fault_is_a_400(box: Sandbox, control: ControlClient) -> None:
    with pytest.raises(ControlError) as info:
        control.add_fault(api="vpc", action="DescribeVpcs", code="X", status=200)
    assert info.value.status == 400
    with pytest.raises(ControlError) as info:
        control.add_fault(api="k8s", action="frobnicate", code="X", status=500)
    assert info.value.status == 400


def test_control_requires_the_admin_token(box: Sandbox) -> None:
    with pytest.raises(ControlError) as info:
        ControlClient(ControlClient.from_home(box.home).url, "wrong").faults()
    assert info.value.status == 401
    readonly = ControlClient(ControlClient.from_home(box.home).url, box.tokens.readonly)
    assert readonly.faults()["cloud"] == []
    with pytest.raises(ControlError) as info:
        readonly.clear_faults()
    assert info.value.status == 403


def test_k8s_fault_renders_a_status(box: Sandbox, control: ControlClient) -> None:
    core = k8s.CoreV1Api(kube(box))
    control.add_fault(
        api="k8s",
        action="create",
        resource="configmaps",
        code="TooManyRequests",
        status=429,
        message="slow down",
        retry_after_ms=2000,
    )
    core.list_namespaced_config_map("default")  # another verb: untouched
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("default", configmap("faulted"))
    body = json.loads(info.value.body)
    assert info.value.status == 429
    assert (body["kind"], body["reason"], body["code"], body["message"]) == (
        "Status",
        "TooManyRequests",
        429,
        "slow down",
    )
    assert body["details"]["retryAfterSeconds"] == 2
    assert info.value.headers["Retry-After"] == "2"
    core.create_namespaced_config_map("default", configmap("faulted"))  # used up


def test_drop_watches_ends_a_watch_stream(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    core = k8s.CoreV1Api(kube(box))
    core.create_namespaced_config_map("default", configmap("watched"))
    seen: list[str] = []
    ended = threading.Event()

    def run() -> None:
        # timeout_seconds stops the client from re-watching by itself when the stream ends.
        for ev in k8s_watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=60
        ):
            seen.append(ev["object"].metadata.name)
        ended.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: "watched" in seen, what="the watch's initial ADDED event")
    assert control.drop_watches("services") == 0  # another resource: untouched
    assert not ended.wait(0.3)
    capsys.readouterr()
    assert cli(box, "fault", "drop-watches", "--resource", "configmaps") == 0
    assert "dropped 1 watch stream(s)" in capsys.readouterr().out
    assert ended.wait(5), "the watch stream did not end"
    thread.join(5)
