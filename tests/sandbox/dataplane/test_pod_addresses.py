"""Pods have addresses of their own, and what they send leaves from them.

Pod addresses come from the node's /24 of ``Topology.pod_cidr``; a hostNetwork pod has the
node's. A curl pod's connection to a CLB leaves from its address (its own pod-network socket),
so the gateway's x-forwarded-for names the pod; a direct connection to the internet carries, in
its PROXY header, the address of the host dialled. One sandbox on 127.39.0.0/16 for the module.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_sandbox.aliyun.records import LoadBalancer
from egress_sandbox.dataplane.podnet import network_at
from egress_sandbox.dataplane.publicnet import address_of
from egress_sandbox.kubelet.podips import PodAddresses, node_pod_subnet
from egress_sandbox.sandbox import Sandbox

from .conftest import World, wait_for
from .helpers import external_service, ingress, ingress_ip, listening_gateway
from .test_kubelet import finished, needs_curl, pod

Obj = dict[str, Any]
BLOCK = 39
NODE_IP = f"127.{BLOCK}.1.10"
HOST, PATH = "www.aliyun.com", "/product/aliware/mse"
# From the ACR VPC endpoint: the nodes pull it without internet (a docker.io image would not).
CURL = "registry-vpc.cn-hangzhou.aliyuncs.com/egress-runbook/curl:8.10.1"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_home(tmp_path_factory.mktemp("podaddr"), BLOCK) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def world(box: Sandbox) -> World:
    """The sandbox's parts under the names the data-plane helpers use."""
    return World.of(box)


@pytest.fixture(scope="module")
def gateway(world: World) -> tuple[LoadBalancer, str]:
    """A listening gateway with SNAT, routing www.aliyun.com; (its CLB, the Ingress address)."""
    lb = listening_gateway(world)
    world.add_snat("gateway")
    world.store.create(world.services, external_service())
    world.store.create(world.ingresses, ingress())
    return lb, str(ingress_ip(world)["ip"])


def _pod_status(w: World, name: str) -> Obj:
    def addressed() -> Obj | None:
        status = w.store.get(w.pods, "default", name).get("status") or {}
        return status if status.get("podIP") else None

    return wait_for(addressed, what=f"pod {name} to get an address")


def _through_gateway(name: str, ip: str, *, host_network: bool = False) -> Obj:
    # As the seed's test does it (--resolve) for the node, as verify does (--connect-to) for
    # the pod: curl resolves names itself only for the first.
    route = ["--resolve", f"{HOST}:80:{ip}"] if host_network else ["--connect-to", f"::{ip}:80"]
    obj = pod(name, image=CURL, args=["-sS", *route, f"http://{HOST}{PATH}"])
    obj["spec"]["hostNetwork"] = host_network
    return obj


def test_node_ranges() -> None:
    assert str(node_pod_subnet("127.244.0.0/16", NODE_IP)) == f"127.244.{BLOCK}.0/24"
    assert str(node_pod_subnet("10.0.0.0/8", "127.16.1.10")) == "10.0.16.0/24"
    assert str(node_pod_subnet("127.244.7.0/28", NODE_IP)) == "127.244.7.0/28"
    with pytest.raises(ValueError, match="pod_cidr: 'nope'"):
        node_pod_subnet("nope", NODE_IP)
    pool = PodAddresses("127.244.0.0/16", NODE_IP)
    first = pool.pick([])
    assert first == f"127.244.{BLOCK}.2"  # .1 is the node's bridge
    assert pool.pick([first]) == f"127.244.{BLOCK}.3"
    # An ended pod's address is reused only when nothing else is free.
    assert pool.pick([], [first]) == f"127.244.{BLOCK}.3"
    with pytest.raises(ValueError, match=re.escape("pod_cidr: '10.0.0.0/8' is outside")):
        PodAddresses("10.0.0.0/8", NODE_IP)
    tiny = PodAddresses("127.244.7.0/30", NODE_IP)
    assert tiny.pick([]) == "127.244.7.1" and tiny.pick(["127.244.7.1", "127.244.7.2"]) is None


def test_the_node_object_matches_the_kubelet(box: Sandbox) -> None:
    nodes_rt = box.store.types.get("", "v1", "nodes")
    assert nodes_rt is not None
    (node,) = box.store.list(nodes_rt)[0]
    assert node["metadata"]["name"] == f"cn-hangzhou.{NODE_IP}" == box.kubelet.node_name
    assert node["spec"]["podCIDR"] == f"127.244.{BLOCK}.0/24"
    assert {"type": "InternalIP", "address": NODE_IP} in node["status"]["addresses"]


def test_two_pods_get_two_addresses_in_the_pod_cidr(world: World) -> None:
    world.store.create(world.pods, pod("addr-a", image=CURL, args=["-sS", "http://a.invalid/"]))
    world.store.create(world.pods, pod("addr-b", image=CURL, args=["-sS", "http://b.invalid/"]))
    a, b = _pod_status(world, "addr-a"), _pod_status(world, "addr-b")
    assert a["podIP"] != b["podIP"]
    cidr = ipaddress.ip_network("127.244.0.0/16")  # Topology.pod_cidr's default
    for status in (a, b):
        assert ipaddress.ip_address(status["podIP"]) in cidr
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] == NODE_IP


@pytest.mark.curl
@needs_curl
def test_curl_pod_reaches_the_gateway_from_its_own_address(
    world: World, gateway: tuple[LoadBalancer, str]
) -> None:
    _, ip = gateway
    world.store.create(world.pods, _through_gateway("xff-pod", ip))
    done = finished(world, "xff-pod")
    log = world.kubelet.logs("default", "xff-pod")
    assert done["status"]["phase"] == "Succeeded", log
    seen = json.loads(log)
    # The gateway saw the pod as its TCP peer and said so to the origin.
    assert seen["headers"]["x-forwarded-for"] == done["status"]["podIP"]
    assert done["status"]["podIP"].startswith(f"127.244.{BLOCK}.")
    # The container's pod-network socket went with it.
    assert not list(Path(world.kubelet._tmp).glob("p*.sock"))


@pytest.mark.curl
@needs_curl
def test_host_network_pod_has_and_uses_the_node_address(
    world: World, gateway: tuple[LoadBalancer, str]
) -> None:
    _, ip = gateway
    world.store.create(world.pods, _through_gateway("xff-node", ip, host_network=True))
    done = finished(world, "xff-node")
    log = world.kubelet.logs("default", "xff-node")
    assert done["status"]["phase"] == "Succeeded", log
    assert done["status"]["podIP"] == done["status"]["hostIP"] == NODE_IP
    assert json.loads(log)["headers"]["x-forwarded-for"] == NODE_IP


@pytest.mark.curl
@needs_curl
def test_direct_connections_name_the_host_dialled(world: World) -> None:
    eip = world.add_snat("nodes")  # the pods' own way out, for this test only
    try:
        world.store.create(
            world.pods, pod("direct-name", image=CURL, args=["-sS", "http://api.example/x"])
        )
        world.store.create(
            world.pods, pod("direct-ip", image=CURL, args=["-sS", "http://47.246.1.1/y"])
        )
        by_name, by_ip = finished(world, "direct-name"), finished(world, "direct-ip")
        log_name = world.kubelet.logs("default", "direct-name")
        log_ip = world.kubelet.logs("default", "direct-ip")
        assert by_name["status"]["phase"] == "Succeeded", log_name
        assert by_ip["status"]["phase"] == "Succeeded", log_ip
        seen_name, seen_ip = json.loads(log_name), json.loads(log_ip)
    finally:
        with world.cloud_lock:
            nodes = world.vswitch("nodes")
            for entry_id in [
                k for k, e in world.cloud.snat_entries.items() if e.source_vswitch_id == nodes
            ]:
                del world.cloud.snat_entries[entry_id]
    assert seen_name["source_ip"] == seen_ip["source_ip"] == eip
    assert seen_name["destination_ip"] == address_of("api.example")
    assert seen_ip["destination_ip"] == "47.246.1.1"


def _socks_connect(path: Path, host: str, port: int) -> socket.socket:
    """A SOCKS5 CONNECT (no auth, by name) over a UNIX socket; the socket once it succeeded."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
    reply = s.recv(10)
    assert reply[1] == 0, f"SOCKS reply 0x{reply[1]:02x}"
    return s


def test_attached_socket_leaves_from_its_address(
    box: Sandbox, gateway: tuple[LoadBalancer, str]
) -> None:
    """Without curl: a socket attached for an address, and the node's shared one."""
    _, ip = gateway
    net = network_at(box.podnet_socket)
    assert net is not None
    path = Path(tempfile.mkdtemp(prefix="pn-")) / "t.sock"
    net.attach(path, f"127.244.{BLOCK}.250")
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    try:
        seen = []
        for sock_path in (path, box.podnet_socket):
            with _socks_connect(sock_path, ip, 80) as s:
                s.sendall(request)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            seen.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))
    finally:
        net.detach(path)
        path.parent.rmdir()
    assert seen[0]["headers"]["x-forwarded-for"] == f"127.244.{BLOCK}.250"
    assert seen[1]["headers"]["x-forwarded-for"] == NODE_IP
    assert not path.exists()
    with pytest.raises(ValueError, match=re.escape("source_ip: '10.0.0.1' is not a loopback")):
        net.attach(path, "10.0.0.1")
