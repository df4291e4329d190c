"""What every product's rules (``vpc/models.py``, ``cs/models.py``) share.

Each model owns a view of CloudState guarded by the one cloud lock, mints IDs, and moves its
resources through states with the Lifecycle, timed per kind by the topology's ``transitions``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from egress_sandbox.aliyun.lifecycle import Lifecycle
from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.topology import Transition, Transitions

T = TypeVar("T")


class _HasStatus(Protocol):
    status: str


class CloudModel:
    def __init__(
        self,
        cloud: CloudState,
        *,
        lock: threading.RLock,
        ids: IdFactory,
        lifecycle: Lifecycle,
        transitions: Transitions,
    ) -> None:
        self.cloud = cloud
        self.lock = lock
        self._ids = ids
        self._lifecycle = lifecycle
        self._transitions = transitions

    def resume(self) -> None:
        """Schedule the transitions the cloud's records are in the middle of.

        Call it once the model serves a cloud, fresh or loaded from a saved world: scheduled
        steps are not saved, and a fresh topology may seed records mid-transition (a NAT
        gateway ``Creating``). Not run on construction, so the owner decides when the clocks
        start and nothing is scheduled twice. The base model has nothing to resume.
        """

    def _copies(self, table: Mapping[str, T]) -> list[T]:
        """Deep copies of a table's records, so callers can render them outside the lock."""
        with self.lock:
            return [copy.deepcopy(record) for record in table.values()]

    def _copy_of(self, table: Mapping[str, T], key: str, missing: Callable[[], Exception]) -> T:
        """A deep copy of ``table[key]``; raises ``missing()`` when there is no such record."""
        with self.lock:
            record = table.get(key)
            if record is None:
                raise missing()
            return copy.deepcopy(record)

    def _later(
        self, transition: Transition, resource_id: str, step: Callable[[], None], reason: str
    ) -> None:
        """Run ``step`` when ``transition`` says (at once, after N s, or on ``advance``)."""
        self._lifecycle.schedule(transition, resource_id, step, reason)

    def _move_later(
        self,
        transition: Transition,
        table: str,
        resource_id: str,
        *,
        expect: str,
        to: str | None,
        reason: str,
    ) -> None:
        """After ``transition``, move ``cloud.<table>[resource_id]`` from ``expect`` to ``to``.

        ``to=None`` removes the record. A record that left ``expect`` in the meantime (deleted,
        or moved on by another request) is left alone, so stale steps are harmless. The table is
        looked up when the step runs, not now, in case the cloud's tables were replaced.
        """

        def step() -> None:
            with self.lock:
                records: dict[str, _HasStatus] = getattr(self.cloud, table)
                record = records.get(resource_id)
                if record is None or record.status != expect:
                    return
                if to is None:
                    del records[resource_id]
                else:
                    record.status = to

        self._later(transition, resource_id, step, reason)

    def advance(self, resource_id: str) -> bool:
        """Manual mode: run the oldest waiting step of a resource; False when none waits."""
        return self._lifecycle.advance(resource_id)
