"""The sandbox's one source of randomness, and the deterministic IDs it hands out.

Every ID, RequestId, UID and nonce comes from one ``random.Random`` seeded at start-up,
so two sandboxes started with the same seed and fed the same calls agree byte for byte.
"""

from __future__ import annotations

import random
import string
import threading
import uuid

_ALNUM = string.ascii_lowercase + string.digits


class IdFactory:
    """Seeded, thread-safe generator of Alibaba-looking IDs and Kubernetes UIDs."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        return self._seed

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._rng = random.Random(seed)

    def token(self, length: int, alphabet: str = _ALNUM) -> str:
        with self._lock:
            return "".join(self._rng.choice(alphabet) for _ in range(length))

    def resource_id(self, prefix: str, length: int = 21) -> str:
        """An ID shaped like Alibaba's: ``vpc-`` + 21 lowercase alphanumerics (``bp1`` style)."""
        # Real hangzhou IDs start with "bp1"; keeping it makes them read like the real thing.
        return f"{prefix}-bp1{self.token(length - 3)}"

    def cluster_id(self) -> str:
        """ACK cluster IDs are ``c`` + 32 hex digits."""
        return "c" + self.token(32, "0123456789abcdef")

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def request_id(self) -> str:
        """Alibaba RequestIds are upper-case UUIDs."""
        return self.uuid().upper()

    def hex(self, length: int) -> str:
        return self.token(length, "0123456789abcdef")
