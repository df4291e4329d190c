"""One retry policy, against a sandbox (block 45): throttling, 5xx, lost answers, broken watches.

The sandbox's counted faults (cloud: per action; Kubernetes: per verb and resource) are consumed
in order whatever the time, so most policies here sleep through a recorder instead of the
clock: the waits the policy chose are values to compare, and nothing asserts on time. Where a
lost answer needs real time (a client timeout shorter than an injected latency) the margins are
seconds. Steps 01 and 02 run once for the module (03 needs the gateway); every test cleans up
what it made, so their order is free.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import CloudApiError, Session, connect, kube, load_parameters, retry, steps
from egress_lib.plan import RUN_DIR_ENV, Change
from egress_lib.progress import STEP_ENV
from egress_lib.retry import RetryPolicy
from egress_lib.steps._snat_calls import client_token
from egress_sandbox.k8s import faults as k8s_faults
from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
BLOCK = 45

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def box() -> Iterator[Any]:
    home = Path(tempfile.mkdtemp(prefix="sbxr-"))  # short: the pod network is a UNIX socket
    try:
        with sandbox_home(home, BLOCK, Topology.loopback(BLOCK)) as sandbox:
            s = connect(load_parameters(PARAMS).model_copy(update={"approve": True}))
            try:
                steps.controller.apply(s)
                steps.gateway.apply(s)
            finally:
                s.close()
            yield sandbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_faults_left(box: Any) -> Iterator[None]:
    yield
    box.aliyun.faults.clear()
    box.k8s.app.faults.clear()


class Waits:
    """A policy's sleep that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def session_with(policy: RetryPolicy | None = None, **timeouts: int) -> Session:
    params = load_parameters(PARAMS)
    t = params.timeouts.model_copy(update=timeouts)
    return connect(params.model_copy(update={"approve": True, "timeouts": t}), retry_policy=policy)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def session(box: Any, waits: Waits) -> Iterator[Session]:
    s = session_with(RetryPolicy(deadline_seconds=60, sleep=waits))
    yield s
    s.close()


def counted(before: dict[str, int]) -> dict[str, int]:
    now = retry.counts()
    return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}


def audit(box: Any, since: str, **match: Any) -> list[Any]:
    return [
        r
        for r in box.audit.records(since=since)
        if all(getattr(r, k) == v for k, v in match.items())
    ]


def now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# --- Alibaba Cloud -----------------------------------------------------------------------------


def test_throttling_longer_than_the_sdk_retried_gets_through(
    box: Any, session: Session, waits: Waits
) -> None:
    # The SDK used to give up after 4 attempts within about 2 s.
    box.aliyun.faults.add("DescribeNatGateways", "Throttling.User", 400, count=8, api="vpc")
    before = retry.counts()
    plan = steps.snat.plan(session)
    assert [c.kind for c in plan.changes if c.action == "create"] == ["SnatEntry"]
    assert box.aliyun.faults.list() == []  # all eight were met
    assert counted(before) == {"Throttling.User": 8}
    assert len(waits.waits) == 8


def test_x_acs_retry_after_is_waited_as_asked(box: Any, session: Session, waits: Waits) -> None:
    box.aliyun.faults.add(
        "DescribeNatGateways", "Throttling.User", 400, count=5, retry_after_ms=1500, api="vpc"
    )
    steps.snat.plan(session)
    assert waits.waits == [1.5] * 5


def test_throttling_past_the_deadline_stops_with_a_clear_error(box: Any) -> None:
    # The parameters' deadline, the default backoff, real time: 2 s of throttling.
    s = session_with(api_retry_seconds=2)
    box.aliyun.faults.add("DescribeNatGateways", "Throttling.User", 400, count=1000, api="vpc")
    try:
        with pytest.raises(CloudApiError) as info:
            steps.snat.plan(s)
        err = info.value
        assert (err.code, err.status_code) == ("Throttling.User", 400)
        assert err.request_id and f"RequestId {err.request_id}" in str(err)
        assert "; tried " in str(err) and "(timeouts.api_retry_seconds: 2 s)" in str(err)
        assert "vpc:DescribeNatGateways kept answering Throttling.User" in err.remedy
        assert "raise timeouts.api_retry_seconds" in err.remedy
        box.aliyun.faults.clear()
        steps.snat.plan(s)  # and a re-run goes through
    finally:
        s.close()


def _clean_snat(session: Session) -> None:
    for change in steps.snat.entries_to_delete(session):
        steps.snat.delete_entry(session, change)


def ours(box: Any, session: Session) -> list[Any]:
    vsw = session.params.gateway.vswitches[0]
    return [
        e
        for e in box.cloud.snat_entries.values()
        if e.source_vswitch_id == vsw and e.snat_entry_name == session.params.snat.entry_name
    ]


def tokens(box: Any, session: Session) -> list[str]:
    vsw = session.params.gateway.vswitches[0]
    mine = client_token(session, vsw)
    return [k for k in box.cloud.client_tokens if k == f"CreateSnatEntry:{mine}"]


def creates(box: Any, since: str) -> list[Any]:
    return audit(box, since, api="vpc", action="CreateSnatEntry")


def test_create_snat_entry_retried_after_5xx_makes_one_entry(
    box: Any, session: Session, waits: Waits
) -> None:
    _clean_snat(session)
    since = now()
    box.aliyun.faults.add("CreateSnatEntry", "ServiceUnavailable", 503, count=2, api="vpc")
    before = retry.counts()
    result = steps.snat.apply(session)
    [made] = [c for c in result.changes_applied if c.action == "create"]
    assert [e.snat_entry_id for e in ours(box, session)] == [made.result["snat_entry_id"]]
    assert [r.status for r in creates(box, since)] == [503, 503, 200]
    assert len(tokens(box, session)) == 1
    assert counted(before) == {"ServiceUnavailable": 2}
    _clean_snat(session)


def test_create_snat_entry_whose_answer_was_lost_keeps_its_client_token(
    box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt times out on the client but is carried out later; the retry, sent
    meanwhile with the same ClientToken, makes the entry, and the late first one is answered
    with it: one entry."""
    import egress_lib.clients

    monkeypatch.setattr(egress_lib.clients, "READ_TIMEOUT_MS", 1000)
    s = session_with(RetryPolicy(deadline_seconds=60, base_delay=0.05, jitter=0))
    try:
        _clean_snat(s)
        since = now()
        box.aliyun.faults.add("CreateSnatEntry", "", 0, count=1, latency_ms=3000, api="vpc")
        before = retry.counts()
        result = steps.snat.apply(s)
        [made] = [c for c in result.changes_applied if c.action == "create"]
        # The late first attempt reaches the API after the retry: wait for its answer.
        deadline = time.monotonic() + 30
        while len(creates(box, since)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r.status for r in creates(box, since)] == [200, 200]
        assert [e.snat_entry_id for e in ours(box, s)] == [made.result["snat_entry_id"]]
        assert len(tokens(box, s)) == 1  # both attempts sent the same ClientToken
        assert counted(before).get("timeout") == 1
        _clean_snat(s)
    finally:
        s.close()


def test_a_retried_create_snat_entry_reads_the_table_first(
    box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the lost first attempt has made the entry by the time of the retry, the retry
    finds it in the SNAT table and uses it: no second CreateSnatEntry."""
    import egress_lib.clients

    monkeypatch.setattr(egress_lib.clients, "READ_TIMEOUT_MS", 1000)
    s = session_with(RetryPolicy(deadline_seconds=60, base_delay=4, jitter=0))
    try:
        _clean_snat(s)
        since = now()
        box.aliyun.faults.add("CreateSnatEntry", "", 0, count=1, latency_ms=2000, api="vpc")
        result = steps.snat.apply(s)
        [made] = [c for c in result.changes_applied if c.action == "create"]
        [request] = made.result["request_ids"]
        assert request["found"].startswith(f"{made.result['snat_entry_id']} in the SNAT table")
        assert len(creates(box, since)) == 1
        assert [e.snat_entry_id for e in ours(box, s)] == [made.result["snat_entry_id"]]
        _clean_snat(s)
    finally:
        s.close()


# --- Kubernetes writes -------------------------------------------------------------------------


def planned_service(session: Session) -> Change:
    for change in steps.services.plan(session).changes:
        if change.kind == "Service" and change.action == "create":
            return change
    raise AssertionError("no Service to create: the test expects none left over")


def _clean_services(session: Session) -> None:
    for obj in kube.list_owned(session, "Service", session.params.namespace):
        kube.delete(session, "Service", obj["metadata"]["name"], session.params.namespace)


def services_named(session: Session, name: str) -> list[Any]:
    return [
        o
        for o in kube.list_owned(session, "Service", session.params.namespace)
        if o["metadata"]["name"] == name
    ]


@pytest.mark.parametrize(
    ("reason", "status", "retry_after_ms", "waited"),
    [("TooManyRequests", 429, 2000, [2.0]), ("ServiceUnavailable", 503, None, None)],
)
def test_a_kubernetes_create_meeting_429_or_503_is_retried(
    box: Any,
    session: Session,
    waits: Waits,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    status: int,
    retry_after_ms: int | None,
    waited: list[float] | None,
) -> None:
    _clean_services(session)
    change = planned_service(session)
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))  # as under the runner, in step 04
    monkeypatch.setenv(STEP_ENV, "04")
    since = now()
    box.k8s.app.faults.add(
        "create", reason, status, 1, resource="services", retry_after_ms=retry_after_ms
    )
    applied = kube.apply_change(session, change)
    assert applied.result["uid"] and "converged" not in applied.result
    assert len(services_named(session, change.name)) == 1
    posts = audit(box, since, api="k8s", action="create")
    assert [r.status for r in posts] == [status, 201]
    if waited is not None:
        assert waits.waits == waited  # Retry-After, honoured
    assert retry.step_counts(tmp_path, "04") == {f"HTTP {status}": 1}
    _clean_services(session)


def test_a_create_whose_answer_was_lost_converges_without_a_duplicate(
    box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create times out on the client, the server carries it out, and the retry meets
    409 AlreadyExists: the object is ours and as planned, so the change is done."""
    import egress_lib.kinds

    s = session_with(RetryPolicy(deadline_seconds=60, base_delay=4, jitter=0))
    try:
        _clean_services(s)
        change = planned_service(s)
        monkeypatch.setattr(egress_lib.kinds, "REQUEST_TIMEOUT", (5, 0.5))
        since = now()
        box.k8s.app.faults.add("create", "", 0, 1, resource="services", latency_ms=1500)
        applied = kube.apply_change(s, change)
        assert applied.result["converged"].startswith("AlreadyExists")
        [found] = services_named(s, change.name)
        assert applied.result["uid"] == found["metadata"]["uid"]
        assert [r.status for r in audit(box, since, api="k8s", action="create")] == [201, 409]
        _clean_services(s)
    finally:
        s.close()


def test_alreadyexists_converges_only_on_our_object_as_planned(session: Session) -> None:
    from kubernetes import client as k8s

    _clean_services(session)
    change = planned_service(session)
    core = k8s.CoreV1Api(session.api_client)
    ns = session.params.namespace
    # As if the first attempt had been carried out: our labels, the planned body.
    core.create_namespaced_service(ns, change.payload)
    assert kube.apply_change(session, change).result["converged"]
    # Someone else's object of that name, or ours with another body: stale, as before.
    core.delete_namespaced_service(change.name, ns)
    other = {**change.payload, "spec": {**change.payload["spec"], "externalName": "x.example"}}
    core.create_namespaced_service(ns, other)
    with pytest.raises(kube.StaleObject):
        kube.apply_change(session, change)
    core.delete_namespaced_service(change.name, ns)
    theirs = {**change.payload, "metadata": {"name": change.name, "namespace": ns}}
    core.create_namespaced_service(ns, theirs)
    with pytest.raises(kube.StaleObject):
        kube.apply_change(session, change)
    core.delete_namespaced_service(change.name, ns)


# --- watches -----------------------------------------------------------------------------------


def _configmap(session: Session, name: str, data: dict[str, str]) -> None:
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(session.api_client)
    ns = session.params.namespace
    with contextlib.suppress(Exception):
        core.delete_namespaced_config_map(name, ns)
    core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": data})


def _set(session: Session, name: str, data: dict[str, str]) -> None:
    from kubernetes import client as k8s

    k8s.CoreV1Api(session.api_client).patch_namespaced_config_map(
        name, session.params.namespace, {"data": data}
    )


def watches(box: Any, since: str, name: str) -> list[Any]:
    return [
        r
        for r in audit(box, since, api="k8s", action="watch")
        if "configmaps" in r.path and f"metadata.name%3D{name}" in r.path
    ]


def until(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def waiting_for_ready(session: Session, name: str) -> Any:
    return kube.wait_for(
        session,
        "ConfigMap",
        name,
        session.params.namespace,
        lambda o: bool(o and (o.get("data") or {}).get("ready") == "yes"),
        timeout=60,
        reason="the test's ConfigMap to be ready",
    )


def test_a_dropped_watch_resumes_from_the_last_resource_version(box: Any, session: Session) -> None:
    name = "retry-watch-dropped"
    _configmap(session, name, {"ready": "no"})
    since = now()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(waiting_for_ready, session, name)
        until("the watch", lambda: len(watches(box, since, name)) == 1)
        assert k8s_faults.drop_watches(box.store, "configmaps") >= 1
        until("the watch again", lambda: len(watches(box, since, name)) == 2)
        _set(session, name, {"ready": "yes"})
        obj = waiting.result(timeout=30)
    assert obj["data"]["ready"] == "yes"
    first, again = watches(box, since, name)
    rv = first.path.split("resourceVersion=")[1].split("&")[0]
    assert f"resourceVersion={rv}" in again.path  # not a fresh list: no change missed


def test_a_watch_whose_history_expired_lists_again(box: Any, session: Session) -> None:
    name = "retry-watch-gone"
    _configmap(session, name, {"ready": "no"})
    rt = box.store.types.get("", "v1", "configmaps")
    noise = {"metadata": {"name": "retry-watch-noise", "namespace": "default"}, "data": {}}
    since = now()
    before = retry.counts()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(waiting_for_ready, session, name)
        until("the watch", lambda: len(watches(box, since, name)) == 1)
        # More changes than the watch history keeps, none of them to the watched object: the
        # watch's resourceVersion is now older than the history, so a re-watch meets 410.
        box.store.create(rt, noise)
        for i in range(2100):
            box.store.update(rt, {**noise, "data": {"i": str(i)}})
        k8s_faults.drop_watches(box.store, "configmaps")
        until("the watch after listing again", lambda: len(watches(box, since, name)) == 3)
        _set(session, name, {"ready": "yes"})
        obj = waiting.result(timeout=30)
    assert obj["data"]["ready"] == "yes"
    assert counted(before).get("HTTP 410 Gone: listing again") == 1
    box.store.delete(rt, "default", "retry-watch-noise")


class ResettingProxy:
    """A TCP proxy to the API server that can reset (RST) every connection it carries."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket, list[threading.Thread]]] = []
        self.to_client = 0  # bytes the API server sent through the proxy
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            pipes = [
                threading.Thread(target=self._pipe, args=(client, upstream), daemon=True),
                threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True),
            ]
            with self.lock:
                self.pairs.append((client, upstream, pipes))
            for t in pipes:
                t.start()

    def _pipe(self, a: socket.socket, b: socket.socket, count: bool = False) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
                if count:
                    with self.lock:
                        self.to_client += len(data)

    def reset_all(self) -> int:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream, pipes in pairs:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RD)  # wakes the pipes without sending anything
            for t in pipes:
                t.join(5)
            client.close()  # SO_LINGER 0: a RST, as a dying load balancer sends
            upstream.close()
        return len(pairs)

    def close(self) -> None:
        self.server.close()
        self.reset_all()


def test_a_watch_stream_reset_midway_resumes(box: Any, session: Session, tmp_path: Path) -> None:
    import yaml

    # A kubeconfig whose server is the proxy (the loader re-reads the file's server on every
    # request, so the client's host cannot just be changed).
    config = yaml.safe_load((box.home / "kubeconfig").read_text())
    [cluster] = config["clusters"]
    target = cluster["cluster"]["server"].removeprefix("https://").rsplit(":", 1)
    proxy = ResettingProxy((target[0], int(target[1])))
    cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    params = load_parameters(PARAMS).model_copy(update={"kubeconfig": str(kubeconfig)})
    proxied = connect(params, retry_policy=RetryPolicy(deadline_seconds=60, base_delay=0.1))
    name = "retry-watch-reset"
    try:
        _configmap(session, name, {"ready": "no"})
        since = now()
        before = retry.counts()
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(waiting_for_ready, proxied, name)
            until("the watch", lambda: len(watches(box, since, name)) == 1)
            # A first event, so that the stream is under way when the connection dies.
            sent = proxy.to_client
            _set(session, name, {"ready": "soon"})
            until("the event to reach the client", lambda: proxy.to_client > sent)
            assert proxy.reset_all() >= 1
            until("the watch again", lambda: len(watches(box, since, name)) == 2)
            _set(session, name, {"ready": "yes"})
            obj = waiting.result(timeout=30)
        assert obj["data"]["ready"] == "yes"
        assert counted(before) == {"watch stream broke: connection reset": 1}
    finally:
        proxied.close()
        proxy.close()
