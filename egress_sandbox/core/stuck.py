"""Resources held in their current state on purpose (``egress-sandbox fault stuck``).

A held resource's transitions still get scheduled as usual, but when a step comes due (timed,
immediate, or a manual ``advance``) it is parked here instead of run. ``release_all()`` (on
``fault clear``) hands the parked steps back so they run as if they had just come due: the
resource then moves on exactly as it would have without the fault.

Kinds and the IDs they hold: ``snat_entry`` (``snat-...``), ``nat_gateway`` (``ngw-...``),
``addon_install`` (CS task ``T-...``), ``mse_gateway`` (MseIngressConfig name). ``*`` as the
ID holds every resource of the kind, including ones created later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

KINDS = ("snat_entry", "nat_gateway", "addon_install", "mse_gateway")
ALL = "*"
Step = Callable[[], None]


def kind_of_id(resource_id: str) -> str | None:
    """The lifecycle kind a cloud resource ID belongs to (MSE configs are named, not IDed)."""
    if resource_id.startswith("snat-"):
        return "snat_entry"
    if resource_id.startswith("ngw-"):
        return "nat_gateway"
    if resource_id.startswith("T-"):
        return "addon_install"
    return None


@dataclass(frozen=True)
class Hold:
    kind: str
    resource_id: str


class StuckRegistry:
    """Thread-safe set of holds, and the steps parked while they last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: set[Hold] = set()
        self._parked: list[tuple[str, str, Step]] = []  # (kind, resource id, step)

    def hold(self, kind: str, resource_id: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        if not resource_id:
            raise ValueError("a resource id (or '*') is required")
        with self._lock:
            self._holds.add(Hold(kind, resource_id))

    def holds(self, kind: str, resource_id: str) -> bool:
        with self._lock:
            return Hold(kind, resource_id) in self._holds or Hold(kind, ALL) in self._holds

    def park_if_held(self, kind: str | None, resource_id: str, step: Step) -> bool:
        """Park ``step`` when the resource is held (True); False means: run it now."""
        if kind is None:
            return False
        with self._lock:
            if Hold(kind, resource_id) not in self._holds and Hold(kind, ALL) not in self._holds:
                return False
            self._parked.append((kind, resource_id, step))
            return True

    def gate(self, kind: str | None, resource_id: str, step: Step) -> Step:
        """``step`` wrapped so that it parks itself when it comes due while held."""

        def gated() -> None:
            if not self.park_if_held(kind, resource_id, gated):
                step()

        return gated

    def describe(self) -> list[dict[str, object]]:
        with self._lock:
            parked = [(k, r) for k, r, _ in self._parked]
            # A "*" hold parks steps under their own IDs: it counts every one of its kind.
            return [
                {
                    "kind": h.kind,
                    "id": h.resource_id,
                    "parked_steps": sum(
                        1 for k, r in parked if k == h.kind and h.resource_id in (ALL, r)
                    ),
                }
                for h in sorted(self._holds, key=lambda h: (h.kind, h.resource_id))
            ]

    def release_all(self) -> list[Step]:
        """Drop every hold; return the parked steps, oldest first, for the caller to run."""
        with self._lock:
            self._holds.clear()
            steps = [s for _, _, s in self._parked]
            self._parked.clear()
        return steps
