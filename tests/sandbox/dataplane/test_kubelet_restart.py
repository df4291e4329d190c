"""Pods a saved world held as Running: the sandbox's restart is the node's reboot.

Containers do not survive it: a curl pod that was Running comes back ``terminated`` (reason
Unknown, exit code 255, what a runtime reports for a container it lost), so under
``restartPolicy: Never`` it ends Failed instead of staying Running forever.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_sandbox.core.ids import IdFactory
from egress_sandbox.k8s.store import Store, now_rfc3339
from egress_sandbox.kubelet import Kubelet
from egress_sandbox.sandbox import Sandbox
from egress_sandbox.topology import Topology

from .conftest import add_snat, wait_for
from .test_kubelet import needs_curl, pod

Obj = dict[str, Any]
NODE = "cn-hangzhou.127.16.1.10"


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbxk-"))  # short: the pod network is a UNIX socket
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _saved_running_pod(name: str, policy: str) -> Obj:
    obj = pod(name)
    obj["spec"]["restartPolicy"] = policy
    obj["spec"]["nodeName"] = NODE
    return obj


def _running_status(started: str) -> Obj:
    return {
        "phase": "Running",
        "podIP": "127.16.1.150",
        "startTime": started,
        "containerStatuses": [
            {
                "name": "curl",
                "image": "curlimages/curl:8.10.1",
                "imageID": "docker.io/curlimages/curl@sha256:" + "a" * 64,
                "containerID": "containerd://" + "b" * 64,
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
                "lastState": {},
            }
        ],
    }


def _phase(store: Store, name: str) -> str | None:
    rt = store.types.get("", "v1", "pods")
    assert rt is not None
    return (store.get(rt, "default", name).get("status") or {}).get("phase")


@pytest.mark.parametrize(("policy", "phase"), [("Never", "Failed"), ("Always", "Running")])
def test_loaded_running_pod_is_killed_by_the_reboot(home: Path, policy: str, phase: str) -> None:
    store = Store(IdFactory(7))
    pods, ns = store.types.get("", "v1", "pods"), store.types.get("", "v1", "namespaces")
    assert pods is not None and ns is not None
    store.create(ns, {"metadata": {"name": "default"}})
    # What a loaded state.json holds: a pod this node ran, still reported Running.
    created = store.create(pods, _saved_running_pod("victim", policy))
    created["status"] = _running_status(now_rfc3339())
    store.update(pods, created, subresource="status")
    kubelet = Kubelet(store, podnet_socket=home / "podnet.sock", ids=IdFactory(8), node_name=NODE)
    kubelet.start()
    try:
        wait_for(lambda: _phase(store, "victim") == phase, 5, f"phase {phase}")
        status = store.get(pods, "default", "victim")["status"]
        (cs,) = status["containerStatuses"]
        killed = cs["state" if policy == "Never" else "lastState"]["terminated"]
        assert (killed["exitCode"], killed["reason"]) == (255, "Unknown")
        assert killed["containerID"] == "containerd://" + "b" * 64
        assert status["podIP"] == "127.16.1.150"  # the pod keeps its address
        if policy == "Always":
            assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        events_rt = store.types.get("", "v1", "events")
        assert events_rt is not None
        events = store.list(events_rt)[0]
        assert [e["type"] for e in events if e["reason"] == "Rebooted"] == ["Warning"]
        assert kubelet.logs("default", "victim") == ""  # logs do not outlive the node
    finally:
        kubelet.stop()


@pytest.mark.curl
@needs_curl
def test_sandbox_restart_fails_a_running_curl_pod(home: Path) -> None:
    box = Sandbox(home, Topology()).start()
    pods = box.store.types.get("", "v1", "pods")
    assert pods is not None
    try:
        # SNAT for the node vSwitch, so the pod can hold a connection to the origin open.
        add_snat(box.cloud, box.cloud_lock, box.ids, box.cloud.node_vswitch_ids(box.cluster_id)[0])
        # telnet:// keeps the connection to the origin open: the container runs until killed.
        box.store.create(pods, pod("holder", args=["-sS", "telnet://47.246.1.1:80"]))
        wait_for(lambda: _phase(box.store, "holder") == "Running", 15, "Running")
        time.sleep(0.2)  # let curl connect, so the stop really kills a working container
    finally:
        box.stop()
    box = Sandbox(home, Topology()).start()
    try:
        assert box.restored
        wait_for(lambda: _phase(box.store, "holder") == "Failed", 10, "Failed")
        status = box.store.get(pods, "default", "holder")["status"]
        term = status["containerStatuses"][0]["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (255, "Unknown")
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "PodFailed")
    finally:
        box.stop()
