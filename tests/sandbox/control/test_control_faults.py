"""Faults through the CLI and the control endpoint, seen by the real SDK and kubernetes client."""

from __future__ import annotations

import json
import threading
import time

import pytest
import urllib3
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_vpc20160428 import models as vpc_models
from control_helpers import (
    REGION,
    cli,
    configmap,
    create_snat,
    cs,
    kube,
    snat_status,
    vpc,
    vswitch_id,
    wait_for,
)
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


# ---- connection resets -------------------------------------------------------------------------


def _snat_entries(box: Sandbox, vswitch: str) -> list[str]:
    vsw = vswitch_id(box, vswitch)
    with box.cloud_lock:
        return [
            e.snat_entry_id for e in box.cloud.snat_entries.values() if e.source_vswitch_id == vsw
        ]


def delete_snat(box: Sandbox, entry_id: str) -> None:
    wait_for(lambda: snat_status(box, entry_id) == "Available", what=f"{entry_id} Available")
    with box.cloud_lock:
        table = box.cloud.snat_entries[entry_id].snat_table_id
    request = vpc_models.DeleteSnatEntryRequest(
        region_id=REGION, snat_table_id=table, snat_entry_id=entry_id
    )
    vpc(box).delete_snat_entry(request)
    wait_for(lambda: snat_status(box, entry_id) is None, what=f"{entry_id} deleted")


def _audited(box: Sandbox, action: str) -> list[tuple[int, str]]:
    return [(r.status, r.error_code) for r in box.audit.records() if r.action == action]


def test_cloud_reset_after_the_action_loses_only_the_answer(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(box, "fault", "add", "--api", "vpc", "--action", "CreateSnatEntry", "--reset", "after")
        == 0
    )
    assert "connection reset after the action" in capsys.readouterr().out
    before = len(_audited(box, "CreateSnatEntry"))
    with pytest.raises(Exception) as info:  # the SDK's own transport error, whatever its class
        create_snat(box, "gateway", name="reset-after")
    assert not isinstance(info.value, ClientException)  # no answer, so no error code either
    # The entry exists although the caller never learned its ID: a blind retry duplicates it.
    assert len(_snat_entries(box, "gateway")) == 1
    assert _audited(box, "CreateSnatEntry")[before:] == [(200, "")]
    (entry_id,) = _snat_entries(box, "gateway")
    delete_snat(box, entry_id)


def test_cloud_reset_before_the_action_changes_nothing(
    box: Sandbox, control: ControlClient
) -> None:
    control.add_fault(api="vpc", action="CreateSnatEntry", reset="before")
    before = len(_audited(box, "CreateSnatEntry"))
    with pytest.raises(Exception) as info:
        create_snat(box, "gateway", name="reset-before")
    assert not isinstance(info.value, ClientException)
    assert _snat_entries(box, "gateway") == []
    assert _audited(box, "CreateSnatEntry")[before:] == [(503, "ConnectionReset")]
    assert control.faults()["cloud"] == []  # used up: the next call goes through
    delete_snat(box, create_snat(box, "gateway", name="after-the-reset"))


def test_k8s_reset_after_a_create_stores_the_object(box: Sandbox, control: ControlClient) -> None:
    core = k8s.CoreV1Api(kube(box))
    control.add_fault(api="k8s", action="create", resource="configmaps", reset="after")
    with pytest.raises(urllib3.exceptions.ProtocolError):  # POST: urllib3 never retries it
        core.create_namespaced_config_map("default", configmap("reset-after"))
    # Stored, though the client got no answer: a retried create now meets AlreadyExists.
    assert core.read_namespaced_config_map("reset-after", "default").data == {"k": "v"}
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("default", configmap("reset-after"))
    assert info.value.status == 409
    core.delete_namespaced_config_map("reset-after", "default")


def test_k8s_reset_before_a_create_stores_nothing(box: Sandbox, control: ControlClient) -> None:
    core = k8s.CoreV1Api(kube(box))
    control.add_fault(api="k8s", action="create", resource="configmaps", reset="before", count=2)
    for _ in range(2):
        with pytest.raises(urllib3.exceptions.ProtocolError):
            core.create_namespaced_config_map("default", configmap("reset-before"))
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("reset-before", "default")
    assert info.value.status == 404
    resets = [r for r in box.audit.records() if r.action == "create" and "configmaps" in r.path]
    assert [(r.status, r.error_code) for r in resets[-2:]] == [(503, "ConnectionReset")] * 2
    core.create_namespaced_config_map("default", configmap("reset-before"))  # used up
    core.delete_namespaced_config_map("reset-before", "default")


def test_k8s_reset_of_a_read_is_retried_by_the_client(box: Sandbox, control: ControlClient) -> None:
    # urllib3 retries idempotent requests whose connection dropped: one reset goes unnoticed.
    core = k8s.CoreV1Api(kube(box))
    control.add_fault(api="k8s", action="list", resource="configmaps", reset="before")
    core.list_namespaced_config_map("default")
    assert control.faults()["k8s"] == []


def test_a_reset_takes_no_error_code(box: Sandbox, control: ControlClient) -> None:
    for api, action in (("vpc", "CreateSnatEntry"), ("k8s", "create")):
        with pytest.raises(ControlError) as info:
            control.add_fault(api=api, action=action, code="X", status=500, reset="after")
        assert info.value.status == 400 and "no answer" in str(info.value)
    with pytest.raises(ControlError) as info:
        control.add_fault(api="vpc", action="CreateSnatEntry", reset="sometimes")
    assert info.value.status == 400 and "before, after" in str(info.value)


def test_mse_and_ram_actions_take_faults(box: Sandbox, control: ControlClient) -> None:
    for api, action in (("mse", "ListGateway"), ("ram", "GetRole")):
        fault = control.add_fault(api=api, action=action, code="Throttling.User", status=400)
        assert (fault["api"], fault["action"]) == (api, action)
    assert [f["api"] for f in control.faults()["cloud"]] == ["mse", "ram"]


def test_a_k8s_fault_can_leave_dry_runs_alone(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plan dry-runs the create it will make: the fault must be left for the real write.
    core = k8s.CoreV1Api(kube(box))
    args = ["--action", "create", "--resource", "configmaps", "--skip-dry-runs"]
    assert cli(box, "fault", "add", "--api", "k8s", *args, "--code", "X", "--status", "500") == 0
    core.create_namespaced_config_map("default", configmap("dry"), dry_run="All")
    assert [f["skip_dry_runs"] for f in control.faults()["k8s"]] == [True]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("default", configmap("dry"))
    assert (info.value.status, json.loads(info.value.body)["reason"]) == (500, "X")
    core.create_namespaced_config_map("default", configmap("dry"))  # used up
    core.delete_namespaced_config_map("dry", "default")
    with pytest.raises(ControlError) as err:
        control.add_fault(
            api="vpc", action="DescribeVpcs", code="X", status=500, skip_dry_runs=True
        )
    assert err.value.status == 400


def test_fault_list_shows_resets(
    box: Sandbox, control: ControlClient, capsys: pytest.CaptureFixture[str]
) -> None:
    control.add_fault(api="k8s", action="create", resource="pods", reset="before", count=2)
    capsys.readouterr()
    assert cli(box, "fault", "list") == 0
    table = capsys.readouterr().out
    header, row = table.splitlines()[:2]
    assert "RESET" in header and "create pods" in row and "before" in row


def test_a_hold_on_every_resource_counts_its_parked_steps(
    box: Sandbox, control: ControlClient
) -> None:
    control.stuck("snat_entry", "*")
    entry = create_snat(box, "gateway", name="held")
    wait_for(
        lambda: control.faults()["stuck"] == [{"kind": "snat_entry", "id": "*", "parked_steps": 1}],
        what="the entry's Pending -> Available step to park",
    )
    assert snat_status(box, entry) == "Pending"
    control.clear_faults()
    delete_snat(box, entry)
