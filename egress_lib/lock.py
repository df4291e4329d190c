"""The per-cluster run lock: a ``coordination.k8s.io/v1`` Lease in the target namespace.

One run at a time may change a cluster. The runner takes the lock before its first write and
keeps it for the whole run; every step takes it too (:func:`ensure`), which is a no-op when the
runner's run already holds it (same run ID), so a notebook run on its own is guarded as well.

The Lease ``egress-runbook-<cluster_name>`` says who holds it: ``holderIdentity`` is the run ID,
annotations name the user, host and process. The holder renews ``renewTime`` every third of
``leaseDurationSeconds`` in a daemon thread; a lease whose ``renewTime + leaseDurationSeconds``
has passed is expired and the next run takes it over (a replace under the resourceVersion it
read, so two runs taking over at once cannot both win). Creating it is the race: one create
is 201, the others 409 AlreadyExists and report :class:`~egress_lib.errors.LockHeld` (or wait).
Releasing deletes the lease under a uid + resourceVersion precondition, only while it is ours.

Expiry is judged by this machine's clock against the ``renewTime`` the holder wrote with its
own: clocks more than a few seconds apart shift when a dead holder's lease may be taken over.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import getpass
import hashlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from egress_lib import ownership
from egress_lib.errors import KubernetesApiError, LockHeld
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.progress import waiting_bar

if TYPE_CHECKING:
    from typing_extensions import Self

    from egress_lib.clients import Session

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "HOST_ANNOTATION",
    "LEASE_PREFIX",
    "PID_ANNOTATION",
    "USER_ANNOTATION",
    "Holder",
    "RunLock",
    "acquire",
    "current_holder",
    "ensure",
    "lease_name",
]

log = logging.getLogger("egress_lib.lock")

Obj = dict[str, Any]

LEASE_PREFIX = "egress-runbook-"
USER_ANNOTATION = "egress-runbook/user"
HOST_ANNOTATION = "egress-runbook/host"
PID_ANNOTATION = "egress-runbook/pid"
DEFAULT_LEASE_SECONDS = 60
_MAX_NAME = 63
# Longest single watch while waiting; the loop watches again until the caller's deadline.
_WATCH_CHUNK_SECONDS = 30
# Pause after losing a race (409), so contending runs do not hammer the API server.
_RACE_PAUSE_SECONDS = 0.1
# Attempts (create or take over) that lost a race, before giving up without a wait.
_MAX_RACES = 10
_API_VERSION = "coordination.k8s.io/v1"


def lease_name(cluster_name: str) -> str:
    """``egress-runbook-<cluster_name>``, at most 63 characters.

    A longer name keeps the start of the cluster name and ends in a hash of all of it, so two
    long cluster names that share their first 40 characters still get different leases.
    """
    name = LEASE_PREFIX + cluster_name
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:6]
    keep = _MAX_NAME - len(LEASE_PREFIX) - len(digest) - 1
    return f"{LEASE_PREFIX}{cluster_name[:keep].rstrip('-.')}-{digest}"


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) the lock: a run, and the process that runs it."""

    run_id: str
    user: str
    host: str
    pid: int

    def identity(self) -> str:
        """The Lease's ``holderIdentity``: the run ID (steps of one run share it)."""
        return self.run_id

    def describe(self) -> str:
        return f"run {self.run_id} ({self.user}@{self.host}, pid {self.pid})"

    def annotations(self) -> dict[str, str]:
        return {
            USER_ANNOTATION: self.user,
            HOST_ANNOTATION: self.host,
            PID_ANNOTATION: str(self.pid),
        }

    @classmethod
    def local(cls, run_id: str) -> Holder:
        """This process (user, host name, pid) running ``run_id``."""
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        return cls(run_id, user, socket.gethostname(), os.getpid())


# ---- time -------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro_time(t: dt.datetime) -> str:
    """RFC 3339 with exactly six fractional digits, the only form MicroTime decodes."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    m = _TIME.fullmatch(value.strip())
    if not m:
        return None
    frac = (m[7] or "0")[:6].ljust(6, "0")
    zone = m[8].upper()
    if zone == "Z":
        tz = dt.timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    year, month, day, hour, minute, second = (int(m[i]) for i in range(1, 7))
    try:
        return dt.datetime(year, month, day, hour, minute, second, int(frac), tzinfo=tz)
    except ValueError:
        return None


def _ago(t: dt.datetime, now: dt.datetime) -> str:
    s = (now - t).total_seconds()
    return f"{s:.0f}s ago" if s >= 0 else f"{-s:.0f}s from now"


# ---- what a lease says ------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    identity: str
    description: str
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    expires: dt.datetime | None  # None: no renew/acquire time or duration, counts as expired
    # The holder ran on this machine and its process is gone (killed): no need to wait.
    dead: bool = False

    def expired(self, now: dt.datetime) -> bool:
        return self.dead or self.expires is None or self.expires < now

    def free(self, now: dt.datetime) -> bool:
        return not self.identity or self.expired(now)

    def detail(self, now: dt.datetime) -> str:
        parts = []
        if self.acquired:
            parts.append(f"since {_micro_time(self.acquired)}")
        if self.renewed:
            parts.append(f"renewed {_ago(self.renewed, now)}")
        if self.expires:
            left = (self.expires - now).total_seconds()
            parts.append(
                f"expires in {left:.0f}s ({_micro_time(self.expires)}) unless renewed"
                if left >= 0
                else f"expired {-left:.0f}s ago"
            )
        return ", ".join(parts)


def _state(lease: Obj) -> _State:
    spec = lease.get("spec") or {}
    meta = lease.get("metadata") or {}
    identity = str(spec.get("holderIdentity") or "")
    ann = meta.get("annotations") or {}
    user, host, pid = ann.get(USER_ANNOTATION), ann.get(HOST_ANNOTATION), ann.get(PID_ANNOTATION)
    if identity and user and host and pid:
        description = f"run {identity} ({user}@{host}, pid {pid})"
    elif identity:
        description = f"holder {identity!r}"
    else:
        description = "nobody"
    acquired = _parse_time(spec.get("acquireTime"))
    renewed = _parse_time(spec.get("renewTime"))
    duration = spec.get("leaseDurationSeconds")
    last = renewed or acquired
    expires = (
        last + dt.timedelta(seconds=duration)
        if last is not None and isinstance(duration, int) and duration > 0
        else None
    )
    dead = host == socket.gethostname() and pid is not None and not _pid_alive(str(pid))
    return _State(identity, description, acquired, renewed, expires, dead)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True  # another user's process, or not a pid we can judge: assume alive
    return True


def _rv(lease: Obj) -> str:
    return str((lease.get("metadata") or {}).get("resourceVersion") or "")


def _uid(lease: Obj) -> str:
    return str((lease.get("metadata") or {}).get("uid") or "")


# ---- API calls --------------------------------------------------------------------------------


def _coordination(session: Session) -> Any:
    from kubernetes import client

    return client.CoordinationV1Api(session.api_client)


def _json(resp: Any) -> Obj:
    data = getattr(resp, "data", resp)
    parsed = json.loads(data) if data else {}
    return parsed if isinstance(parsed, dict) else {}


def _read(api: Any, namespace: str, name: str) -> Obj | None:
    try:
        with k8s_errors("get", "Lease", name):
            resp = api.read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
    except KubernetesApiError as e:
        if e.status == 404:
            return None
        raise
    return _json(resp)


def _create(api: Any, namespace: str, body: Obj) -> Obj:
    with k8s_errors("create", "Lease", body["metadata"]["name"]):
        resp = api.create_namespaced_lease(
            namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
    return _json(resp)


def _replace(api: Any, namespace: str, body: Obj) -> Obj:
    """PUT under ``body``'s resourceVersion: a 409 when the lease changed since it was read."""
    with k8s_errors("update", "Lease", body["metadata"]["name"]):
        resp = api.replace_namespaced_lease(
            body["metadata"]["name"],
            namespace,
            body,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    return _json(resp)


def _delete(api: Any, namespace: str, name: str, uid: str, rv: str) -> None:
    with k8s_errors("delete", "Lease", name):
        api.delete_namespaced_lease(
            name,
            namespace,
            body={"preconditions": {"uid": uid, "resourceVersion": rv}},
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )


def _held_by(current: Obj, identity: str, uid: str) -> bool:
    """``current`` is the lease object we hold: same uid, and our identity in it."""
    holder = (current.get("spec") or {}).get("holderIdentity")
    return _uid(current) == uid and holder == identity


# ---- the lock ---------------------------------------------------------------------------------


class RunLock:
    """A held run lock; a context manager that releases it on exit.

    While held, a daemon thread renews the lease every ``lease_seconds / 3``. If a renewal
    finds the lease deleted or held by someone else, :attr:`lost` says so and renewal stops
    (:meth:`check` raises). A re-entrant lock (the same run already held it) neither renews
    nor releases: the outer holder does.
    """

    def __init__(
        self,
        session: Session,
        holder: Holder,
        lease: Obj,
        *,
        lease_seconds: int,
        reentrant: bool = False,
    ) -> None:
        meta = lease.get("metadata") or {}
        self.name: str = str(meta.get("name") or lease_name(session.params.cluster_name))
        self.namespace: str = str(meta.get("namespace") or session.params.namespace)
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.reentrant = reentrant
        self.lost: str | None = None
        self.released = False
        self._api = _coordination(session)
        self._lease = lease
        self._uid = _uid(lease)
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not reentrant:
            self._thread = threading.Thread(
                target=self._renew_loop, name=f"lease-renew-{self.name}", daemon=True
            )
            self._thread.start()

    def __repr__(self) -> str:
        how = "re-entrant" if self.reentrant else ("released" if self.released else "held")
        lost = f", lost: {self.lost}" if self.lost else ""
        return f"RunLock(Lease {self.namespace}/{self.name}, {self.holder.describe()}, {how}{lost})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """True while this process holds the lock (re-entrant: while the outer holder does)."""
        return not self.released and self.lost is None

    @property
    def lease(self) -> Obj:
        """The lease as last written or read by this lock."""
        with self._mutex:
            return dict(self._lease)

    def check(self) -> None:
        """Raise :class:`LockHeld` if renewal found the lock taken or deleted."""
        if self.lost is not None:
            raise LockHeld(self.name, self.namespace, self.lost, "this run lost the lock")

    # ---- renewal ----

    def _interval(self) -> float:
        return max(self.lease_seconds / 3, 0.1)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._interval()):
            try:
                if not self.renew():
                    return
            except Exception as e:  # noqa: BLE001 - a daemon thread must not die silently
                # Transient (connection, 5xx): keep the last state and try again next time.
                # Losing the lease for good shows as a 409/404 on a later attempt.
                log.warning("renewing Lease %s/%s failed: %s", self.namespace, self.name, e)

    def renew(self) -> bool:
        """Write ``renewTime = now``; False (and :attr:`lost` set) when it is no longer ours."""
        with self._mutex:
            if self.released or self.lost is not None:
                return False
            current = self._lease
            identity = self.holder.identity()
            for _ in range(3):
                body = _without_managed_fields(current)
                body["spec"]["renewTime"] = _micro_time(_now())
                try:
                    self._lease = _replace(self._api, self.namespace, body)
                    return True
                except KubernetesApiError as e:
                    if e.status not in (404, 409):
                        raise
                fresh = _read(self._api, self.namespace, self.name)
                if fresh is None:
                    self.lost = "nobody (the Lease was deleted)"
                    break
                if not _held_by(fresh, identity, self._uid):
                    state = _state(fresh)
                    self.lost = f"{state.description} ({state.detail(_now())})"
                    break
                # Still ours: someone changed labels or annotations. Renew on top of that.
                current = self._lease = fresh
            else:
                return True  # three conflicts in a row while still ours: try next interval
        log.warning("lost the lock Lease %s/%s to %s", self.namespace, self.name, self.lost)
        self._stop.set()
        return False

    # ---- release ----

    def release(self) -> None:
        """Stop renewing, then delete the lease if it is still ours (uid + rv precondition)."""
        if self.reentrant or self.released:
            self.released = True
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=sum(REQUEST_TIMEOUT) + 5)
        with self._mutex:
            self.released = True
            if self.lost is not None:
                return
            current: Obj | None = self._lease
            for _ in range(3):
                if current is None or not _held_by(current, self.holder.identity(), self._uid):
                    return
                try:
                    _delete(self._api, self.namespace, self.name, self._uid, _rv(current))
                    log.info("released the lock Lease %s/%s", self.namespace, self.name)
                    return
                except KubernetesApiError as e:
                    if e.status == 404:
                        return
                    if e.status != 409:
                        raise
                current = _read(self._api, self.namespace, self.name)
            log.warning(
                "the lock Lease %s/%s kept changing; left it to expire", self.namespace, self.name
            )


def _without_managed_fields(lease: Obj) -> Obj:
    body = copy.deepcopy(lease)
    body.setdefault("metadata", {}).pop("managedFields", None)
    if not isinstance(body.get("spec"), dict):
        body["spec"] = {}
    return body


def _new_lease(session: Session, holder: Holder, lease_seconds: int) -> Obj:
    now = _micro_time(_now())
    p = session.params
    return {
        "apiVersion": _API_VERSION,
        "kind": "Lease",
        "metadata": {
            "name": lease_name(p.cluster_name),
            "namespace": p.namespace,
            "labels": ownership.labels(p),
            "annotations": holder.annotations(),
        },
        "spec": {
            "holderIdentity": holder.identity(),
            "leaseDurationSeconds": lease_seconds,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        },
    }


def _take_over(session: Session, current: Obj, holder: Holder, lease_seconds: int) -> Obj:
    """``current`` (free or expired) rewritten as ours, under the resourceVersion read."""
    body = _without_managed_fields(current)
    meta = body["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **ownership.labels(session.params)}
    meta["annotations"] = {**(meta.get("annotations") or {}), **holder.annotations()}
    spec = body["spec"]
    now = _micro_time(_now())
    transitions = spec.get("leaseTransitions")
    if spec.get("holderIdentity") != holder.identity():
        spec["leaseTransitions"] = (transitions if isinstance(transitions, int) else 0) + 1
    spec.update(
        holderIdentity=holder.identity(),
        leaseDurationSeconds=lease_seconds,
        acquireTime=now,
        renewTime=now,
    )
    return body


def current_holder(session: Session) -> tuple[str, str] | None:
    """(holderIdentity, description with since/renewed/expiry) of an unexpired lock, or None."""
    p = session.params
    lease = _read(_coordination(session), p.namespace, lease_name(p.cluster_name))
    if lease is None:
        return None
    state = _state(lease)
    now = _now()
    if state.free(now):
        return None
    detail = state.detail(now)
    return state.identity, f"{state.description}, {detail}" if detail else state.description


def acquire(
    session: Session,
    holder: Holder,
    *,
    wait_seconds: float = 0,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
) -> RunLock:
    """Take the cluster's run lock for ``holder``; release it with ``with`` or ``release()``.

    Held by the same run ID: a re-entrant :class:`RunLock` that leaves the lease alone.
    Held by another run: with ``wait_seconds`` > 0, watch the lease until it is released or
    expires, or the deadline passes; then (or at once without a wait) raise :class:`LockHeld`
    naming the holder and when its lease expires.
    """
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int) or lease_seconds < 1:
        raise ValueError(f"lease_seconds must be a whole number >= 1, not {lease_seconds!r}")
    if not wait_seconds >= 0:  # also refuses NaN
        raise ValueError(f"wait_seconds must be >= 0, not {wait_seconds!r}")
    p = session.params
    api = _coordination(session)
    name, namespace = lease_name(p.cluster_name), p.namespace
    identity = holder.identity()
    deadline = time.monotonic() + wait_seconds
    races = 0
    with contextlib.ExitStack() as stack:
        bar: Any = None
        while True:
            current = _read(api, namespace, name)
            now = _now()
            try:
                if current is None:
                    made = _create(api, namespace, _new_lease(session, holder, lease_seconds))
                    log.info("took the lock Lease %s/%s for %s", namespace, name, holder.describe())
                    return RunLock(session, holder, made, lease_seconds=lease_seconds)
                state = _state(current)
                if state.identity == identity and not state.expired(now):
                    return RunLock(
                        session, holder, current, lease_seconds=lease_seconds, reentrant=True
                    )
                if state.free(now):
                    made = _replace(
                        api, namespace, _take_over(session, current, holder, lease_seconds)
                    )
                    log.info(
                        "took over the lock Lease %s/%s from %s (%s)",
                        namespace,
                        name,
                        state.description,
                        state.detail(now) or "no renew time",
                    )
                    return RunLock(session, holder, made, lease_seconds=lease_seconds)
            except KubernetesApiError as e:
                # 409: another run created it or took it over first (AlreadyExists, Conflict);
                # 404 on the replace: it was deleted meanwhile. Read again and decide again.
                # A 404 on the create is a missing namespace: that is no race.
                if not (e.status == 409 or (e.status == 404 and current is not None)):
                    raise
                races += 1
                if races > _MAX_RACES and time.monotonic() >= deadline:
                    raise
                time.sleep(_RACE_PAUSE_SECONDS)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f"waited {wait_seconds:g}s" if wait_seconds > 0 else ""
                detail = "; ".join(x for x in (waited, state.detail(now)) if x)
                raise LockHeld(name, namespace, state.description, detail)
            if bar is None:
                bar = stack.enter_context(
                    waiting_bar(
                        f"the lock Lease {namespace}/{name}",
                        what=f"the lock Lease {namespace}/{name}",
                        timeout=wait_seconds,
                    )
                )
            bar.set_postfix_str(f"held by {state.description}", refresh=True)
            assert state.expires is not None  # not free, so it has an expiry
            until_expiry = (state.expires - now).total_seconds()
            _wait_for_change(api, namespace, name, _rv(current), min(remaining, until_expiry + 0.2))
            bar.update(1)


def _wait_for_change(api: Any, namespace: str, name: str, rv: str, seconds: float) -> None:
    """Return at the first change of the lease after ``rv``, or after about ``seconds``."""
    if seconds < 1:
        # Shorter than the watch's one-second granularity: sleep it out, then read again.
        time.sleep(max(seconds, 0.05))
        return
    from kubernetes import watch as _watch

    watch: Any = _watch  # the client is only partly annotated
    # Whole seconds, rounded down: the fraction left over is slept by the next round.
    timeout = min(math.floor(seconds), _WATCH_CHUNK_SECONDS)
    w = watch.Watch(return_type="object")
    try:
        with k8s_errors("watch", "Lease", name):
            for event in w.stream(
                api.list_namespaced_lease,
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=rv,
                timeout_seconds=timeout,
                _request_timeout=(REQUEST_TIMEOUT[0], timeout + 10),
            ):
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    w.stop()
                    break
    except KubernetesApiError as e:
        if e.status != 410:  # history expired: reading again is all that is needed
            raise


@contextlib.contextmanager
def _ensure(session: Session, holder: Holder) -> Iterator[RunLock]:
    with acquire(session, holder, wait_seconds=0) as held:
        yield held


def ensure(session: Session, holder: Holder) -> contextlib.AbstractContextManager[RunLock]:
    """The lock around one step: taken on entry (no wait), released on exit.

    A no-op when ``holder``'s run already holds it (the runner took it for the whole run):
    the steps of one run share the run ID. Raises :class:`LockHeld` on entry otherwise.
    """
    return _ensure(session, holder)
