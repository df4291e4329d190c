"""A running emulated OpenAPI endpoint and real SDK clients pointed at it."""

from __future__ import annotations

import os

# The credentials library reads its environment once, at import time (alibabacloud_credentials'
# default chain).
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import threading
import time
from collections.abc import Iterator

import pytest
from aliyun_helpers import RecordingHooks, World, fast_transitions

from egress_sandbox.aliyun.server import OpenApiServer
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.core.scheduler import Scheduler
from egress_sandbox.topology import Topology, build_cloud


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # darabonba sends through HTTP(S)_PROXY even for 127.0.0.1 (NO_PROXY is ignored).
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


@pytest.fixture
def topology() -> Topology:
    """Override in a test module for another world."""
    return Topology(transitions=fast_transitions())


@pytest.fixture
def world(topology: Topology) -> Iterator[World]:
    ids = IdFactory(topology.seed)
    cloud = build_cloud(topology, ids)
    lock = threading.RLock()
    scheduler = Scheduler()
    hooks = RecordingHooks()
    audit = AuditLog()
    server = OpenApiServer(
        cloud,
        lock=lock,
        ids=ids,
        scheduler=scheduler,
        transitions=topology.transitions,
        hooks=hooks,
        audit=audit,
    )
    server.start()
    server.resume()  # as Sandbox.start does: seeded Creating NAT gateways start moving now
    resumed_at = time.monotonic()
    try:
        yield World(topology, cloud, lock, ids, hooks, audit, server, resumed_at)
    finally:
        server.stop()
        scheduler.stop()
