"""egress_lib.lock: the per-cluster run lock, a Lease, against a sandbox of its own."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from sandbox_env import sandbox_home

from egress_lib import Parameters, Session, connect, load_parameters
from egress_lib import lock as run_lock
from egress_lib.errors import KubernetesApiError, LockHeld, ParameterError
from egress_lib.lock import Holder, RunLock, acquire, current_holder, ensure, lease_name

REPO = Path(__file__).resolve().parents[2]
NS = "default"

pytestmark = pytest.mark.timeout(60)

_clusters = itertools.count(1)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sandbox_home(tmp_path_factory.mktemp("lock-home"), 26) as sandbox:
        yield sandbox


def _params(cluster_name: str, namespace: str = NS) -> Parameters:
    overrides = {"cluster_name": cluster_name, "namespace": namespace}
    try:
        return load_parameters(REPO / "parameters" / "sandbox.yaml", overrides)
    except (ParameterError, OSError):
        # parameters/sandbox.yaml may be mid-change by someone else: the minimum keys do.
        return load_parameters(
            {"cluster_name": cluster_name, "target": "sandbox", "namespace": namespace}
        )


@pytest.fixture
def params(box: Any) -> Parameters:
    # One cluster name (so one Lease) per test: the tests share the sandbox.
    return _params(f"lock-{next(_clusters)}")


@pytest.fixture
def session(params: Parameters) -> Iterator[Session]:
    s = connect(params)
    yield s
    s.close()


@pytest.fixture
def other(params: Parameters) -> Iterator[Session]:
    """A second connection to the same cluster, as another process would have."""
    s = connect(params)
    yield s
    s.close()


def _holder(run: str, pid: int = 100) -> Holder:
    return Holder(run, "alice", "host-a", pid)


def _coord(session: Session) -> Any:
    return client.CoordinationV1Api(session.api_client)


def _lease(session: Session) -> Any:
    name = lease_name(session.params.cluster_name)
    try:
        return _coord(session).read_namespaced_lease(name, NS)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def _stop_renewing(held: RunLock) -> None:
    """Make ``held`` look like a holder that died: no more renewals, no release."""
    held._stop.set()
    assert held._thread is not None
    held._thread.join(5)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- names and holders --------------------------------------------------------------------------


def test_lease_name_is_the_prefix_and_the_cluster_name() -> None:
    assert lease_name("sandbox") == "egress-runbook-sandbox"
    assert run_lock.LEASE_PREFIX == "egress-runbook-"


def test_a_long_cluster_name_is_trimmed_to_a_valid_name_of_63() -> None:
    long_a, long_b = "a" * 40 + "-" + "b" * 22, "a" * 40 + "-" + "c" * 22
    names = [lease_name(long_a), lease_name(long_b), lease_name("x" * 48), lease_name("x" * 49)]
    for name in names:
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert names[0] != names[1]
    assert names[2] == "egress-runbook-" + "x" * 48  # exactly 63: kept as is


def test_holder_identity_is_the_run_id_and_describe_names_the_process() -> None:
    h = Holder("20260101T000000Z-abc123", "alice", "host-a", 4242)
    assert h.identity() == "20260101T000000Z-abc123"
    assert h.describe() == "run 20260101T000000Z-abc123 (alice@host-a, pid 4242)"
    assert h.annotations() == {
        "egress-runbook/user": "alice",
        "egress-runbook/host": "host-a",
        "egress-runbook/pid": "4242",
    }
    assert Holder.local("r").pid > 0


def test_bad_arguments_are_refused_before_any_call(session: Session) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        acquire(session, _holder("r"), lease_seconds=0)
    with pytest.raises(ValueError, match="wait_seconds"):
        acquire(session, _holder("r"), wait_seconds=-1)


# ---- acquire, hold, release ---------------------------------------------------------------------


def test_acquire_creates_the_lease_and_release_deletes_it(session: Session) -> None:
    me = _holder("run-a", 11)
    with acquire(session, me) as held:
        assert held.held and not held.reentrant and held.lost is None
        lease = _lease(session)
        assert lease.metadata.name == f"egress-runbook-{session.params.cluster_name}"
        assert lease.metadata.labels == {
            "app.kubernetes.io/managed-by": "egress-runbook",
            "egress-runbook/cluster": session.params.cluster_name,
        }
        assert lease.metadata.annotations == me.annotations()
        assert lease.spec.holder_identity == "run-a"
        assert lease.spec.lease_duration_seconds == 60
        assert lease.spec.lease_transitions == 0
        assert lease.spec.acquire_time is not None and lease.spec.renew_time is not None
        found = current_holder(session)
        assert found is not None
        identity, description = found
        assert identity == "run-a"
        assert description.startswith(me.describe())
        assert "since " in description and "renewed " in description
        assert "expires in " in description
    assert not held.held and held.released
    assert _lease(session) is None
    assert current_holder(session) is None
    held.release()  # a second release is a no-op


def test_a_second_run_gets_lock_held_naming_the_first(session: Session, other: Session) -> None:
    first = _holder("run-a", 11)
    with acquire(session, first):
        with pytest.raises(LockHeld) as e:
            acquire(other, _holder("run-b", 22))
        err = e.value
        assert err.holder == first.describe()
        assert err.lease == lease_name(session.params.cluster_name) and err.namespace == NS
        assert first.describe() in str(err)
        assert "expires in " in str(err)
        assert _lease(session).spec.holder_identity == "run-a"  # untouched
    assert _lease(session) is None


def test_the_same_run_id_is_re_entrant_and_only_the_outer_lock_releases(
    session: Session, other: Session
) -> None:
    outer = acquire(session, _holder("run-a", 11))
    with outer:
        before = _lease(session)
        with acquire(other, _holder("run-a", 99)) as inner:  # a step's kernel: same run
            assert inner.reentrant and inner.held
        lease = _lease(session)
        assert lease is not None and lease.metadata.uid == before.metadata.uid
        assert lease.spec.holder_identity == "run-a"
        assert outer.held
    assert _lease(session) is None


def test_ensure_is_a_no_op_inside_the_runs_own_lock(session: Session, other: Session) -> None:
    with acquire(session, _holder("run-a")), ensure(other, _holder("run-a", 5)) as inner:
        assert inner.reentrant
    assert _lease(session) is None


def test_ensure_alone_takes_and_releases_the_lock(session: Session, other: Session) -> None:
    with ensure(session, _holder("run-a")) as held:
        assert not held.reentrant
        assert _lease(session).spec.holder_identity == "run-a"
        with pytest.raises(LockHeld), ensure(other, _holder("run-b")):
            pass  # pragma: no cover - never entered
    assert _lease(session) is None


def test_a_missing_namespace_is_an_api_error_not_a_retry(box: Any) -> None:
    s = connect(_params(f"lock-{next(_clusters)}", namespace="no-such-namespace"))
    try:
        started = time.monotonic()
        with pytest.raises(KubernetesApiError) as e:
            acquire(s, _holder("run-a"))
        assert e.value.status == 404
        assert time.monotonic() - started < 2
    finally:
        s.close()


# ---- expiry and take-over -----------------------------------------------------------------------


def test_an_expired_lease_written_directly_is_taken_over(session: Session) -> None:
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    body = {
        "metadata": {"name": lease_name(session.params.cluster_name)},
        "spec": {
            "holderIdentity": "dead-run",
            "leaseDurationSeconds": 60,
            "acquireTime": _micro(old),
            "renewTime": _micro(old),
            "leaseTransitions": 3,
        },
    }
    made = _coord(session).create_namespaced_lease(NS, body)
    assert current_holder(session) is None  # expired: nobody holds it
    with acquire(session, _holder("run-a")) as held:
        lease = _lease(session)
        assert lease.metadata.uid == made.metadata.uid  # replaced, not recreated
        assert lease.spec.holder_identity == "run-a"
        assert lease.spec.lease_transitions == 4
        assert lease.metadata.labels["egress-runbook/cluster"] == session.params.cluster_name
        assert lease.spec.renew_time > old
        assert held.held
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_dead_holders_lease_expires_and_its_late_release_leaves_the_new_one(
    session: Session, other: Session
) -> None:
    dead = acquire(session, _holder("run-a"), lease_seconds=2)
    _stop_renewing(dead)
    with pytest.raises(LockHeld):
        acquire(other, _holder("run-b"))
    time.sleep(2.2)
    with acquire(other, _holder("run-b")) as taker:
        assert _lease(session).spec.lease_transitions == 1
        dead.release()  # no longer its lease: must not delete run-b's
        assert _lease(session).spec.holder_identity == "run-b"
        assert taker.held
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_renewal_moves_renew_time_forward(session: Session) -> None:
    with acquire(session, _holder("run-a"), lease_seconds=1) as held:
        first = _lease(session).spec.renew_time
        time.sleep(1.5)  # five renewals at most, the lease never expires meanwhile
        assert _lease(session).spec.renew_time > first
        assert current_holder(session) is not None
        assert held.held
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_renewal_that_finds_another_holder_records_the_loss_and_stops(
    session: Session, other: Session
) -> None:
    held = acquire(session, _holder("run-a"), lease_seconds=1)
    name = lease_name(session.params.cluster_name)
    _coord(other).patch_namespaced_lease(
        name, NS, {"spec": {"holderIdentity": "run-b", "leaseDurationSeconds": 60}}
    )
    deadline = time.monotonic() + 10
    while held.lost is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert held.lost is not None and "run-b" in held.lost
    assert not held.held
    assert held._thread is not None
    held._thread.join(5)
    assert not held._thread.is_alive()
    with pytest.raises(LockHeld):
        held.check()
    held.release()
    assert _lease(session).spec.holder_identity == "run-b"  # not ours to delete
    _coord(other).delete_namespaced_lease(name, NS)


# ---- races and waits ----------------------------------------------------------------------------


def _race(sessions: list[Session], holders: list[Holder]) -> list[RunLock | BaseException]:
    gate = threading.Barrier(len(holders))
    results: list[RunLock | BaseException] = [RuntimeError("not run")] * len(holders)

    def contend(i: int) -> None:
        gate.wait()
        try:
            results[i] = acquire(sessions[i % len(sessions)], holders[i])
        except BaseException as e:  # noqa: BLE001 - the test inspects every outcome
            results[i] = e

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(holders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_runs_racing_to_create_the_lease_exactly_one_wins(session: Session, other: Session) -> None:
    for round_ in range(3):
        holders = [_holder(f"run-{round_}-{i}", i) for i in range(4)]
        results = _race([session, other], holders)
        winners = [r for r in results if isinstance(r, RunLock)]
        losers = [r for r in results if not isinstance(r, RunLock)]
        assert len(winners) == 1, results
        assert all(isinstance(r, LockHeld) for r in losers), losers
        winner = winners[0]
        assert {r.holder for r in losers} == {winner.holder.describe()}  # type: ignore[union-attr]
        assert _lease(session).spec.holder_identity == winner.holder.run_id
        winner.release()
        assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_runs_racing_to_take_over_an_expired_lease_exactly_one_wins(
    session: Session, other: Session
) -> None:
    dead = acquire(session, _holder("dead-run"), lease_seconds=1)
    _stop_renewing(dead)
    time.sleep(1.3)
    results = _race([session, other], [_holder(f"run-{i}", i) for i in range(4)])
    winners = [r for r in results if isinstance(r, RunLock)]
    assert len(winners) == 1, results
    assert all(isinstance(r, LockHeld) for r in results if r is not winners[0]), results
    assert _lease(session).spec.lease_transitions == 1
    winners[0].release()
    dead.release()
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_wait_seconds_waits_until_the_holder_releases(session: Session, other: Session) -> None:
    first = acquire(session, _holder("run-a"))
    timer = threading.Timer(1.5, first.release)
    started = time.monotonic()
    timer.start()
    try:
        with acquire(other, _holder("run-b"), wait_seconds=20) as second:
            waited = time.monotonic() - started
            assert 1.2 < waited < 10
            assert _lease(session).spec.holder_identity == "run-b"
            assert second.held
    finally:
        timer.cancel()
        first.release()
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_wait_seconds_takes_over_once_a_dead_holders_lease_expires(
    session: Session, other: Session
) -> None:
    dead = acquire(session, _holder("run-a"), lease_seconds=2)
    _stop_renewing(dead)
    started = time.monotonic()
    with acquire(other, _holder("run-b"), wait_seconds=20):
        assert 1 < time.monotonic() - started < 10
        assert _lease(session).spec.holder_identity == "run-b"
    dead.release()
    assert _lease(session) is None


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_wait_seconds_has_a_deadline_and_does_not_poll(
    box: Any, session: Session, other: Session
) -> None:
    name = lease_name(session.params.cluster_name)
    with acquire(session, _holder("run-a")):
        seen = len(box.audit.records())
        started = time.monotonic()
        with pytest.raises(LockHeld) as e:
            acquire(other, _holder("run-b"), wait_seconds=2.5)
        assert 2.4 < time.monotonic() - started < 8
        assert "waited 2.5s" in str(e.value)
        assert "run run-a (alice@host-a, pid 100)" in str(e.value)
        # It watched the lease rather than polling it: read, watch, (sleep, read,) read.
        calls = [r for r in box.audit.records()[seen:] if name in r.path]
        assert len(calls) <= 5, [(r.action, r.path) for r in calls]
        assert any(r.action == "watch" for r in calls), [(r.action, r.path) for r in calls]
