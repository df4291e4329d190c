"""Retries towards the upstream: ``proxy-next-upstream-tries``, ``-timeout`` and the conditions.

Translation as Higress ``retry.go`` does it (to an Istio HTTPRetry, then Envoy's retry policy):
- ``proxy-next-upstream-tries`` is Istio's ``attempts``, i.e. Envoy's ``num_retries``: the
  number of retries after the first try (default 3 once any retry annotation is set);
- ``proxy-next-upstream-timeout`` is the per-try timeout in seconds;
- conditions: ``error``, ``timeout`` or ``invalid_header`` become Envoy's ``5xx`` (so they also
  retry 5xx answers), ``http_<code>`` becomes a retriable status code, ``off`` means no retry;
  only status codes (no error/timeout) retry only those codes, not connect failures.
Without any retry annotation the route keeps Istio's default policy: 2 retries on
``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` with 503
(UNCONFIRMED for MSE; the shared brief guessed Higress defaults of ``error,timeout`` x 3).

A retry stays with the Service (Envoy cluster) the weighted pick chose for the request: Envoy
never re-picks among weighted clusters on a retry (envoyproxy/envoy#5891, #10683; Istio
"retries go to the same destination", istio/istio#41787); it goes to another endpoint of that
Service when it has one (Istio's ``previous_hosts`` predicate). An ExternalName Service has one.
"""

from __future__ import annotations

from dataclasses import dataclass

# Why an attempt failed before the upstream answered.
CONNECT, RESET, TIMEOUT = "connect", "reset", "timeout"
BACKOFF_BASE, BACKOFF_MAX = 0.025, 0.25  # Envoy's defaults, in seconds


@dataclass(frozen=True)
class RetryPolicy:
    num_retries: int
    retry_on: frozenset[str]
    codes: frozenset[int]
    per_try_timeout: float | None  # seconds; None: only the route timeout bounds a try

    def retries(self, failure: str | None, status: int | None) -> bool:
        """Whether an attempt that failed so (or answered ``status``) is worth retrying."""
        on = self.retry_on
        if failure == CONNECT:
            return bool(on & {"5xx", "gateway-error", "reset", "connect-failure"})
        if failure in (RESET, TIMEOUT):
            return bool(on & {"5xx", "gateway-error", "reset"})
        if status is None:
            return False
        if "5xx" in on and status >= 500:
            return True
        if "gateway-error" in on and status in (502, 503, 504):
            return True
        return "retriable-status-codes" in on and status in self.codes


ISTIO_DEFAULT = RetryPolicy(
    2,
    frozenset({"connect-failure", "refused-stream", "unavailable", "cancelled"})
    | {"retriable-status-codes"},
    frozenset({503}),
    None,
)


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


def from_annotations(tries: str | None, timeout: str | None, conditions: str | None) -> RetryPolicy:
    """The route's policy; malformed numbers keep their defaults, as Higress ignores them."""
    if tries is None and timeout is None and conditions is None:
        return ISTIO_DEFAULT
    count = _int(tries)
    num = max(count, 0) if count is not None else 3
    seconds = _int(timeout)
    per_try = float(seconds) if seconds is not None and seconds > 0 else None
    retry_on, codes = frozenset({"5xx"}), frozenset[int]()
    if conditions is not None:
        raw = conditions.split(",") if "," in conditions else conditions.split()
        found = {c.strip() for c in raw if c.strip()}
        if "off" in found:
            num = 0
        elif found:
            on: set[str] = set()
            if found & {"error", "timeout", "invalid_header"}:
                on.add("5xx")
            codes = frozenset(
                int(c[5:]) for c in found if c.startswith("http_") and c[5:].isdigit()
            )
            if codes:
                on.add("retriable-status-codes")
            # Nothing Envoy knows (e.g. only non_idempotent): Istio keeps its default list.
            retry_on = frozenset(on) if on else ISTIO_DEFAULT.retry_on
            if not on:
                codes = ISTIO_DEFAULT.codes
    return RetryPolicy(num, retry_on, codes, per_try)


def backoff(retry: int, draw: float) -> float:
    """Envoy's fully jittered exponential back-off before retry number ``retry`` (1-based);
    ``draw`` is a uniform number in [0, 1) from the sandbox's seeded randomness."""
    ceiling = min(BACKOFF_BASE * float(2**retry), BACKOFF_MAX)
    return draw * ceiling
