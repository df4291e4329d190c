"""The part of fault injection both APIs share: validation and a queue of counted faults.

The cloud (``aliyun/faults.py``) and Kubernetes (``k8s/faults.py``) registries differ only in
what a fault matches (an action of a product, a verb on a resource) and how its error renders;
counting uses down, ordering and thread safety are the same and live here, once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class CountedFault(Protocol):
    """A dataclass with a ``count`` of remaining matches."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    count: int


F = TypeVar("F", bound=CountedFault)


def validate(*, error: str, status: int, count: int, latency_ms: int, error_name: str) -> None:
    """Refuse a fault that could never fire, or fire as nothing an HTTP client would see."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if error and not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400..599)")
    if not error and not latency_ms:
        raise ValueError(f"a fault needs {error_name}, a latency, or both")


class FaultQueue(Generic[F]):
    """Thread-safe list of pending faults (dataclasses), consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def push(self, fault: F) -> F:
        with self._lock:
            self._faults.append(fault)
        return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dataclasses.asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first fault ``matches`` accepts, with one use consumed (a copy: it may be gone)."""
        with self._lock:
            for fault in self._faults:
                if matches(fault):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return dataclasses.replace(fault)
        return None
