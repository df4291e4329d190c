from __future__ import annotations

import json
import os
from typing import Any

import pytest

from egress_sandbox.k8s.errors import BadRequest, NotFound
from egress_sandbox.kubelet import curlcmd
from egress_sandbox.kubelet.podstatus import is_curl_image, normalize_image

from .conftest import World, wait_for
from .helpers import external_service, ingress, ingress_ip, listening_gateway

Obj = dict[str, Any]
needs_curl = pytest.mark.skipif(not os.path.exists("/usr/bin/curl"), reason="needs /usr/bin/curl")


def pod(
    name: str,
    *,
    image: str = "curlimages/curl:8.10.1",
    command: list[str] | None = None,
    args: list[str] | None = None,
) -> Obj:
    container: Obj = {"name": "curl", "image": image}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def finished(w: World, name: str, timeout: float = 30) -> Obj:
    def done() -> Obj | None:
        p = w.store.get(w.pods, "default", name)
        return p if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, f"pod {name} to finish")


@pytest.mark.curl
@needs_curl
def test_curl_pod_through_the_gateway(world: World) -> None:
    lb = listening_gateway(world)
    eip = world.add_snat("gateway")
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    ip = ingress_ip(world)["ip"]
    world.store.create(
        world.pods,
        pod(
            "curl-mse",
            args=[
                "-sS",
                "--resolve",
                f"www.aliyun.com:80:{ip}",
                "http://www.aliyun.com/product/aliware/mse",
            ],
        ),
    )
    p = finished(world, "curl-mse")
    log = world.kubelet.logs("default", "curl-mse")
    assert p["status"]["phase"] == "Succeeded", log
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert p["spec"]["nodeName"] == "cn-hangzhou.127.16.1.10"
    # The default topology's node (127.16.1.10) has 127.244.16.0/24 of the pod CIDR.
    assert p["status"]["podIP"].startswith("127.244.16.") and p["status"]["hostIP"] == "127.16.1.10"
    seen = json.loads(log)
    assert seen["source_ip"] == eip and seen["path"] == "/product/aliware/mse"
    assert lb.address == ip
    reasons = [e["reason"] for e in world.events() if e["involvedObject"]["name"] == "curl-mse"]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


@pytest.mark.curl
@needs_curl
def test_curl_pod_to_public_ip_needs_node_snat(world: World) -> None:
    world.add_snat("gateway")  # the gateway's SNAT does not give pods a way out
    world.store.create(
        world.pods, pod("direct", command=["sh", "-c", "curl -sS http://47.246.1.1/"])
    )
    p = finished(world, "direct")
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 97
    assert "SOCKS5" in world.kubelet.logs("default", "direct")
    world.add_snat("nodes")
    world.store.create(world.pods, pod("direct2", args=["-sS", "http://47.246.1.1/"]))
    assert finished(world, "direct2")["status"]["phase"] == "Succeeded"


@pytest.mark.curl
@needs_curl
def test_curl_pod_cannot_reach_private_addresses(world: World) -> None:
    world.add_snat("nodes")
    world.store.create(
        world.pods, pod("private", command=["/usr/bin/curl"], args=["-sS", "http://127.0.0.1:1/"])
    )
    assert finished(world, "private")["status"]["phase"] == "Failed"


def test_unpullable_image(world: World) -> None:
    world.store.create(world.pods, pod("web", image="nginx"))

    def backoff() -> Obj | None:
        p = world.store.get(world.pods, "default", "web")
        cs = (p.get("status") or {}).get("containerStatuses") or [{}]
        waiting = cs[0].get("state", {}).get("waiting", {})
        return p if waiting.get("reason") == "ImagePullBackOff" else None

    p = wait_for(backoff, what="ImagePullBackOff")
    assert p["status"]["phase"] == "Pending"
    failed = [e["message"] for e in world.events("Failed")]
    assert failed[0].startswith(
        'Failed to pull image "nginx": rpc error: code = NotFound desc = '
        'failed to pull and unpack image "docker.io/library/nginx:latest"'
    )
    assert world.events("BackOff")
    with pytest.raises(BadRequest, match="waiting to start: trying and failing to pull image"):
        world.kubelet.logs("default", "web")
    with pytest.raises(BadRequest, match="is not valid"):
        world.kubelet.logs("default", "web", "x")
    with pytest.raises(NotFound):
        world.kubelet.logs("default", "nope")


@needs_curl
def test_noproxy_is_refused(world: World) -> None:
    world.store.create(world.pods, pod("sneaky", args=["-sS", "--noproxy", "*", "http://x/"]))
    p = finished(world, "sneaky")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert "--noproxy" in world.kubelet.logs("default", "sneaky")


@pytest.mark.curl
@needs_curl
def test_pod_deletion_kills_and_deadline(world: World) -> None:
    world.add_snat("nodes")
    p = pod("slow", args=["-sS", "--max-time", "30", "telnet://47.246.1.1:80"])
    p["spec"]["activeDeadlineSeconds"] = 1
    world.store.create(world.pods, p)
    done = finished(world, "slow", timeout=15)
    assert done["status"]["phase"] == "Failed" and done["status"]["reason"] == "DeadlineExceeded"
    victim = world.store.create(world.pods, pod("victim", args=["-sS", "telnet://47.246.1.1:80"]))
    wait_for(
        lambda: (
            world.store.get(world.pods, "default", "victim").get("status", {}).get("phase")
            == "Running"
        ),
        what="running",
    )
    world.store.delete(world.pods, "default", "victim")
    wait_for(
        lambda: [
            e
            for e in world.events("Killing")
            if e["involvedObject"]["uid"] == victim["metadata"]["uid"]
        ],
        timeout=5,
        what="the container to be killed",
    )


@pytest.mark.parametrize(
    ("command", "args", "ok"),
    [
        (None, ["-sS", "http://a/"], True),
        (["curl"], ["-o/tmp/x", "http://a/"], True),
        (["/usr/local/bin/curl", "-sS"], None, True),
        (["sh", "-c", "curl -sS 'http://a/?q=1'"], None, True),
        (["sh", "-c", "curl http://a/ && curl http://b/"], None, False),
        (["wget", "http://a/"], None, False),
        (["curl", "-sSx", "http://p:1", "http://a/"], None, False),
        (["curl", "--nopr", "*", "http://a/"], None, False),
        (["curl", "--socks5-hostname=x", "http://a/"], None, False),
        (["curl", "-K", "/etc/x", "http://a/"], None, False),
        (["curl", "--dns-servers", "1.1.1.1", "http://a/"], None, False),
        (["curl", "-H", "-x", "http://a/"], None, True),
    ],
)
def test_curl_command_parsing(command: list[str] | None, args: list[str] | None, ok: bool) -> None:
    if ok:
        curlcmd.parse(command, args)
    else:
        with pytest.raises(curlcmd.CommandRefused):
            curlcmd.parse(command, args)


def test_image_names() -> None:
    assert normalize_image("nginx") == "docker.io/library/nginx:latest"
    assert normalize_image("curlimages/curl:8.10.1") == "docker.io/curlimages/curl:8.10.1"
    assert is_curl_image("curlimages/curl:8.10.1")
    assert is_curl_image("registry.example.com:5000/tools/curl")
    assert not is_curl_image("curl.example.com/nginx:1")


@pytest.mark.parametrize(
    ("args", "local"),
    [
        (["-sS", "http://a/"], False),
        (["--connect-to", "a:80:127.16.2.10:80", "http://a/"], False),
        (["--resolve", "a:80:127.16.2.10", "http://a/"], True),
        (["--resolve=a:80:127.16.2.10", "http://a/"], True),
        (["--reso", "a:80:127.16.2.10", "http://a/"], True),
        (["-H", "--resolve", "http://a/"], False),  # a header's value, not an option
    ],
)
def test_who_resolves_names(args: list[str], local: bool) -> None:
    # --resolve only works when curl resolves names itself; otherwise the pod network does.
    assert curlcmd.parse(None, args).resolves_locally is local
