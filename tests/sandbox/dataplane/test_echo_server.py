"""Echo-server pods: an in-process mendhak/http-https-echo on the pod's address.

The pod is Running and Ready while it serves; each request is answered with the image's JSON
echo and logged as one JSON line, readable (kubelet and ``pods/log`` through the real client)
while the container runs; deleting the pod stops the server. One sandbox on 127.43.0.0/16.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from sandbox_clients import kube
from sandbox_env import sandbox_home

from egress_sandbox.kubelet import podstatus
from egress_sandbox.kubelet.echoserver import EchoServer, echo_of, node_headers
from egress_sandbox.kubelet.podstatus import ContainerState, is_echo_image
from egress_sandbox.sandbox import Sandbox

from .conftest import wait_for

Obj = dict[str, Any]
BLOCK = 43
ECHO = "registry-vpc.cn-hangzhou.aliyuncs.com/egress-runbook/http-https-echo:34"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_home(tmp_path_factory.mktemp("echo"), BLOCK) as sandbox:
        yield sandbox


def _pods(box: Sandbox) -> Any:
    rt = box.store.types.get("", "v1", "pods")
    assert rt is not None
    return rt


def echo_pod(name: str, image: str = ECHO, ports: list[int] | None = None) -> Obj:
    container: Obj = {"name": "echo", "image": image}
    if ports is not None:
        container["ports"] = [{"containerPort": p} for p in ports]
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"containers": [container]},
    }


def ready(box: Sandbox, name: str) -> Obj:
    def get() -> Obj | None:
        p = box.store.get(_pods(box), "default", name)
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        return p if p["status"].get("phase") == "Running" and conds.get("Ready") == "True" else None

    return wait_for(get, what=f"pod {name} Running and Ready")


def _get(
    ip: str, port: int, path: str, headers: dict[str, str], source: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(
        ip, port, timeout=10, source_address=(source, 0) if source else None
    )
    try:
        conn.request("POST", path, body=b'{"a": 1}', headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_echo_images() -> None:
    assert is_echo_image("mendhak/http-https-echo:34")
    assert is_echo_image("ealen/echo-server:0.9.2")
    assert is_echo_image("registry.k8s.io/echoserver:1.10")
    assert is_echo_image(ECHO)
    assert not is_echo_image("echo.example.com/nginx:1")  # the registry is not the repository
    assert not is_echo_image("curlimages/curl:8.10.1")


def test_echo_pod_answers_on_its_address_and_logs_while_running(box: Sandbox) -> None:
    box.store.create(_pods(box), echo_pod("echo-1", ports=[8080, 9090]))
    p = ready(box, "echo-1")
    ip = p["status"]["podIP"]
    assert ip.startswith(f"127.244.{BLOCK}.")
    headers = {
        "Host": "audit.egress-audit:8080",
        "Content-Type": "application/json",
        "X-Forwarded-For": "203.0.113.7, 10.0.0.1",
        "X-Egress": "one",
    }
    status, resp_headers, body = _get(ip, 8080, "/mirror/x?q=1&q=2&r=", headers, "127.0.0.9")
    assert status == 200 and resp_headers["x-powered-by"] == "Express"
    assert resp_headers["content-type"] == "application/json; charset=utf-8"
    seen = json.loads(body)
    assert seen["path"] == "/mirror/x" and seen["method"] == "POST"
    assert seen["query"] == {"q": ["1", "2"], "r": ""}
    assert seen["body"] == '{"a": 1}' and seen["json"] == {"a": 1}
    assert seen["headers"]["x-egress"] == "one" and seen["headers"]["host"] == headers["Host"]
    assert seen["hostname"] == "audit.egress-audit" and seen["protocol"] == "http"
    # trust proxy (loopback, uniquelocal): the first untrusted address in x-forwarded-for.
    assert seen["ip"] == "203.0.113.7" and seen["ips"] == ["203.0.113.7", "10.0.0.1"]
    assert seen["os"] == {"hostname": "echo-1"}
    # The second declared port serves too; a status code can be asked for.
    status, _, _ = _get(ip, 9090, "/", {"x-set-response-status-code": "503"})
    assert status == 503

    lines = box.kubelet.logs("default", "echo-1").splitlines()
    assert [json.loads(line)["path"] for line in lines] == ["/mirror/x", "/"]
    # The same log through pods/log with the real client, while the pod still runs.
    core = k8s.CoreV1Api(kube(box))
    text = core.read_namespaced_pod_log("echo-1", "default", tail_lines=1)
    assert json.loads(text)["path"] == "/"
    assert box.store.get(_pods(box), "default", "echo-1")["status"]["phase"] == "Running"

    box.store.delete(_pods(box), "default", "echo-1")

    def refused() -> bool:
        try:
            socket.create_connection((ip, 8080), timeout=1).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            return False  # taken into the backlog just as the listener closed: try again
        return False

    wait_for(refused, timeout=5, what="the server to stop with its pod")


def test_default_port_and_host_network(box: Sandbox) -> None:
    box.store.create(_pods(box), echo_pod("echo-default"))
    ip = ready(box, "echo-default")["status"]["podIP"]
    status, _, body = _get(ip, 8080, "/", {"Host": "x"})
    assert status == 200 and json.loads(body)["ip"] == "::ffff:127.0.0.1"
    node = echo_pod("echo-node", ports=[18080])
    node["spec"]["hostNetwork"] = True
    box.store.create(_pods(box), node)
    p = ready(box, "echo-node")
    assert p["status"]["podIP"] == p["status"]["hostIP"] == f"127.{BLOCK}.1.10"
    status, _, body = _get(p["status"]["podIP"], 18080, "/", {"Host": "x"})
    assert status == 200 and json.loads(body)["os"]["hostname"] == box.kubelet.node_name
    for name in ("echo-default", "echo-node"):
        box.store.delete(_pods(box), "default", name)


def test_docker_hub_echo_image_needs_internet(box: Sandbox) -> None:
    box.store.create(_pods(box), echo_pod("echo-hub", image="mendhak/http-https-echo:34"))

    def pull_failed() -> Obj | None:
        p = box.store.get(_pods(box), "default", "echo-hub")
        cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return waiting if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    wait_for(pull_failed, what="the pull to fail")
    events_rt = box.store.types.get("", "v1", "events")
    assert events_rt is not None
    failed = [
        e["message"]
        for e in box.store.list(events_rt, "default")[0]
        if e["involvedObject"]["name"] == "echo-hub" and e["reason"] == "Failed"
    ]
    assert any("lookup registry-1.docker.io: i/o timeout" in m for m in failed), failed
    box.store.delete(_pods(box), "default", "echo-hub")


def test_a_taken_port_fails_the_server() -> None:
    with socket.socket() as taken:
        taken.bind(("127.244.200.9", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = EchoServer("127.244.200.9", [port], "h", lambda _: None)
        with pytest.raises(OSError, match=f"listen EADDRINUSE: .* 127.244.200.9:{port}"):
            server.start()


def test_echo_shape_without_trusted_peer() -> None:
    headers = node_headers(
        [("Host", "api.example:80"), ("Host", "other"), ("X-A", "1"), ("x-a", "2")]
    )
    assert headers == {"host": "api.example:80", "x-a": "1, 2"}
    seen = echo_of(
        method="GET",
        target="/p?x=1",
        headers={**headers, "x-forwarded-for": "198.51.100.1", "x-forwarded-proto": "https"},
        body="",
        peer="8.8.8.8",  # a public peer is not a trusted proxy: its headers do not count
        hostname="pod",
    )
    assert seen["ip"] == "::ffff:8.8.8.8" and seen["ips"] == []
    assert seen["protocol"] == "http" and seen["hostname"] == "api.example"
    assert seen["subdomains"] == [] and seen["query"] == {"x": "1"}
    assert list(seen)[:4] == ["path", "headers", "method", "body"]


def test_echo_pod_deadline(box: Sandbox) -> None:
    p = echo_pod("echo-deadline")
    p["spec"]["activeDeadlineSeconds"] = 1
    box.store.create(_pods(box), p)
    ready(box, "echo-deadline")

    def failed() -> Obj | None:
        cur = box.store.get(_pods(box), "default", "echo-deadline")
        return cur if cur["status"].get("phase") == "Failed" else None

    done = wait_for(failed, timeout=10, what="the deadline to end the pod")
    assert done["status"]["reason"] == "DeadlineExceeded"
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 137
    box.store.delete(_pods(box), "default", "echo-deadline")


def test_running_log_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podstatus, "LOG_LIMIT", 100)
    cs = ContainerState("c", "i")
    for n in range(50):
        cs.append_log(f"line {n:02d}")
    assert len(cs.log) <= 100
    lines = cs.log.splitlines()
    assert lines[-1] == "line 49" and all(len(line) == 7 for line in lines)  # whole lines only
