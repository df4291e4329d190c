"""The sandbox's seeded source of randomness, and the deterministic IDs it hands out.

Every ID, RequestId, UID and nonce comes from this factory, seeded at start-up. Each kind of
value (each ID prefix, RequestIds, UIDs, ...) draws from its own stream derived from the seed,
so the n-th ``snat-`` ID is the same in every run even when the number of polls (and so of
RequestIds) in between differs. That keeps stored notebook outputs comparable across runs.
Secrets (bearer tokens, AccessKey and STS secrets) never come from here: the seed is
published, so anything drawn from it is known to everyone (``core/credentials.py``).
"""

from __future__ import annotations

import random
import string
import threading
import uuid
from typing import Any

_ALNUM = string.ascii_lowercase + string.digits


class IdFactory:
    """Seeded, thread-safe generator of Alibaba-looking IDs and Kubernetes UIDs."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        return self._seed

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._streams.clear()

    def state(self) -> dict[str, Any]:
        """Every stream's position, JSON-ready: a restarted sandbox continues where it was.

        Restoring positions (not just the seed) keeps IDs unique across ``down``/``up``: a fresh
        factory with the same seed would hand out the very IDs already in the saved world.
        """
        with self._lock:
            streams = {}
            for name, rng in self._streams.items():
                version, internal, gauss = rng.getstate()
                streams[name] = [version, list(internal), gauss]
            return {"seed": self._seed, "streams": streams}

    def restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._seed = int(state["seed"])
            self._streams.clear()
            for name, (version, internal, gauss) in state.get("streams", {}).items():
                rng = random.Random()
                rng.setstate((version, tuple(internal), gauss))
                self._streams[name] = rng

    def _rng(self, stream: str) -> random.Random:
        rng = self._streams.get(stream)
        if rng is None:
            # A str seed is hashed with SHA-512: stable across processes and Python versions.
            rng = self._streams[stream] = random.Random(f"{self._seed}:{stream}")
        return rng

    def token(self, length: int, alphabet: str = _ALNUM, *, stream: str = "token") -> str:
        with self._lock:
            rng = self._rng(stream)
            return "".join(rng.choice(alphabet) for _ in range(length))

    def resource_id(self, prefix: str, length: int = 21) -> str:
        """An ID shaped like Alibaba's: ``vpc-`` + 21 lowercase alphanumerics (``bp1`` style)."""
        # Real hangzhou IDs start with "bp1"; keeping it makes them read like the real thing.
        return f"{prefix}-bp1{self.token(length - 3, stream=prefix)}"

    def cluster_id(self) -> str:
        """ACK cluster IDs are ``c`` + 32 hex digits."""
        return "c" + self.token(32, "0123456789abcdef", stream="cluster")

    def uuid(self, stream: str = "uuid") -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng(stream).getrandbits(128), version=4))

    def request_id(self) -> str:
        """Alibaba RequestIds are upper-case UUIDs."""
        return self.uuid("request").upper()

    def hex(self, length: int, stream: str = "hex") -> str:
        return self.token(length, "0123456789abcdef", stream=stream)
