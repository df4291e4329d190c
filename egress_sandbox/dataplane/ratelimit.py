"""Local throttling per gateway replica (``route-limit-rps`` / ``-rpm``), as Envoy's token bucket.

Higress (``local_rate_limit.go``) configures Envoy's local rate limit per route: ``max_tokens``
= limit x burst multiplier (default 5), ``tokens_per_fill`` = limit, ``fill_interval`` 1 s for
rps, 60 s for rpm; the bucket starts full and each replica (Envoy instance) has its own. Over
the limit: HTTP 429 with body ``local_rate_limited`` (MSE gateways >= 1.2.23).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

THROTTLED = b"local_rate_limited"
BUCKETS_LIMIT = 4096  # routes x replicas kept; a long-lived sandbox must not grow without end


@dataclass(frozen=True)
class RateLimit:
    max_tokens: int
    tokens_per_fill: int
    fill_interval: float  # seconds


def from_annotations(rps: str | None, rpm: str | None, multiplier: str | None) -> RateLimit | None:
    """As Higress parses them: rpm wins over rps; a malformed value disables throttling
    (Higress returns an error and the route gets no limit)."""
    if rps is None and rpm is None:
        return None
    mult = 5
    if multiplier is not None:
        if not multiplier.strip().isdigit() or int(multiplier) == 0:
            return None
        mult = int(multiplier)
    raw, interval = (rpm, 60.0) if rpm is not None else (rps, 1.0)
    if raw is None or not raw.strip().isdigit() or int(raw) == 0:
        return None
    rate = int(raw)
    if rate * mult > 2**32 - 1:
        return None
    return RateLimit(rate * mult, rate, interval)


class _Bucket:
    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.max_tokens
        self.last_fill = now

    def take(self, now: float) -> bool:
        fills = int((now - self.last_fill) // self.limit.fill_interval)
        if fills > 0:
            self.tokens = min(
                self.limit.max_tokens, self.tokens + fills * self.limit.tokens_per_fill
            )
            self.last_fill += fills * self.limit.fill_interval
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True


class RateLimiter:
    """Buckets keyed by (replica, route); a changed limit starts a fresh bucket, as a pushed
    route configuration does in Envoy."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, replica: int, route: Hashable, limit: RateLimit) -> bool:
        """Whether a request on ``replica`` for ``route`` may pass (and spend a token)."""
        key = (replica, route)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.limit != limit:
                if len(self._buckets) >= BUCKETS_LIMIT:
                    self._buckets.clear()
                bucket = self._buckets[key] = _Bucket(limit, now)
            return bucket.take(now)
