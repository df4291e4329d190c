"""One retry policy for every API call egress_lib makes, Alibaba Cloud and Kubernetes alike.

Why our own loop rather than the clients' (darabonba ``RetryOptions``, urllib3 ``Retry``): the
SDK's made 4 attempts within about 2 s, far shorter than real throttling lasts, had no overall
deadline and no hook to log or count; the ``kubernetes`` client retried no answer at all. Here
one loop (:func:`run`) gives every call the same things:

* exponential backoff with jitter, bounded by one deadline per call,
  ``timeouts.api_retry_seconds`` (:func:`policy_for`), whatever the number of attempts;
* a wait the server asks for (``x-acs-retry-after``, ``Retry-After``) is honoured, but a wait
  that would end past the deadline is not started: the call fails at once, saying so;
* each retry is logged (logger ``egress_lib.retry``, WARNING: call, reason, attempt, wait) and
  counted, per process and, under the runner, per step in ``retries.jsonl`` of the run folder
  (:func:`step_counts` reads it back for the run record);
* the error after the last attempt says the call was retried (:class:`Exhausted`).

What is retried:

======================  ===============================================================
Alibaba Cloud           ``Throttling`` and ``Throttling.*``, ``ServiceUnavailable``,
                        ``InternalError`` and any other 5xx; the "busy, try again" codes
                        :data:`BUSY_CODES`. Transport failures: always for reads; for writes
                        when the request never left (connection refused, connect timeout),
                        or when repeating it is harmless (:data:`SAFE_WRITES`).
Kubernetes              HTTP 429, 500, 502, 503, 504; connection refused or reset, timeouts.
======================  ===============================================================

Any other answer (a 4xx such as Forbidden, InvalidParameter, NotFound, a 409 Conflict) is
final and raised at once. A Kubernetes write repeated after a lost answer is safe because of
how the runbook writes: a create that meets 409 AlreadyExists reads the object and converges
on it, a replace under a resourceVersion that meets 409 reads it back, a delete under a uid
that meets 404 was done (:func:`egress_lib.kube.apply_change`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from egress_lib.parameters import Parameters

log = logging.getLogger("egress_lib.retry")

T = TypeVar("T")

# "Busy with another change, try again": CreateSnatEntry's "you cannot repeatedly call ...
# within the specified period" (OperationConflict), a NAT gateway being changed
# (IncorrectStatus.NATGW), an entry being changed (IncorretSnatEntryStatus, sic: the real
# code). aliyun/terraform-provider-alicloud retries its SNAT calls on the same codes. The
# request was refused, so nothing happened and repeating it is safe, even for a write.
BUSY_CODES = frozenset({"OperationConflict", "IncorrectStatus.NATGW", "IncorretSnatEntryStatus"})
# Flow control and "failed on our side": any other Throttling.* and any 5xx count too.
SERVER_CODES = frozenset({"Throttling", "ServiceUnavailable", "InternalError"})
KUBE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Cloud writes that may be repeated after a transport failure that may have reached the
# server: CreateSnatEntry sends the run's ClientToken (the VPC API answers a repeat with the
# first result) and re-reads the table first; a repeated DeleteSnatEntry of a deleted entry
# answers a NotFound code, which the caller treats as done. InstallClusterAddons has no
# token, so it is repeated only when the request never left.
SAFE_WRITES = frozenset({"CreateSnatEntry", "DeleteSnatEntry"})
READ_PREFIXES = ("Describe", "List", "Get", "Query", "Check")

RETRIES_FILE = "retries.jsonl"
_ATTR = "_egress_retry"


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry one call. ``sleep``/``clock``/``rand`` are for tests."""

    deadline_seconds: float = 120.0
    base_delay: float = 1.0
    max_delay: float = 15.0
    multiplier: float = 2.0
    # The share of each wait drawn at random: 0.5 is "equal jitter" (half fixed, half random),
    # so that many clients throttled at once do not come back at the same moment.
    jitter: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 = the first): exponential, capped, jittered."""
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** max(retry - 1, 0))
        return ceiling * (1 - self.jitter) + ceiling * self.jitter * self.rand()

    def with_deadline(self, seconds: float) -> RetryPolicy:
        """This policy with another deadline."""
        return dataclasses.replace(self, deadline_seconds=seconds)


# One attempt, no retry: for calls made outside a Session (nothing says how long to retry).
ONCE = RetryPolicy(deadline_seconds=0.0)


def policy_for(params: Parameters) -> RetryPolicy:
    """The policy of a Session: the deadline is ``timeouts.api_retry_seconds``."""
    return RetryPolicy(deadline_seconds=float(params.timeouts.api_retry_seconds))


@dataclass(frozen=True)
class Verdict:
    """Why a failed attempt is worth another: ``reason`` (a code, ``HTTP 503``, ``timeout``),
    and the wait the server asked for, in seconds."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Exhausted:
    """A call that kept failing until its deadline; attached to the last error."""

    call: str
    attempts: int
    seconds: float
    deadline: float
    reason: str
    # A wait the server asked for that would have ended past the deadline.
    asked_wait: float | None = None
    deadline_name: str = "timeouts.api_retry_seconds"

    def describe(self) -> str:
        """``tried 6 times over 118.2 s (timeouts.api_retry_seconds: 120 s)``, and why it ended."""
        times = "once" if self.attempts == 1 else f"{self.attempts} times"
        text = f"tried {times} over {self.seconds:.1f} s"
        if self.asked_wait is not None:
            text += f"; the server then asked to wait {self.asked_wait:g} s, past the deadline"
        return f"{text} ({self.deadline_name}: {self.deadline:g} s)"


def mark(exc: BaseException, info: Exhausted) -> None:
    """Attach ``info`` to ``exc``: the error converters put it into the message."""
    with contextlib.suppress(AttributeError):  # an exception type with __slots__
        setattr(exc, _ATTR, info)


def exhausted_of(exc: BaseException | None) -> Exhausted | None:
    """The :class:`Exhausted` attached to ``exc``, if its call was retried to the deadline."""
    info = getattr(exc, _ATTR, None)
    return info if isinstance(info, Exhausted) else None


def run(
    policy: RetryPolicy,
    call: str,
    attempt: Callable[[int], T],
    classify: Callable[[Exception], Verdict | None],
) -> T:
    """``attempt(n)`` for n = 1, 2, ... until it returns, its error is final, or time is up.

    ``classify`` says whether an error is worth another attempt (a :class:`Verdict`) or final
    (None: raised at once). When the deadline leaves no room for the next wait, the last error
    is raised with an :class:`Exhausted` attached (:func:`exhausted_of`).
    """
    start = policy.clock()
    deadline = start + policy.deadline_seconds
    n = 0
    while True:
        n += 1
        try:
            return attempt(n)
        except Exception as e:  # classify decides; what it refuses is re-raised
            verdict = classify(e)
            if verdict is None:
                raise
            now = policy.clock()
            remaining = deadline - now
            asked = verdict.retry_after
            if remaining <= 0 or (asked is not None and asked > remaining):
                too_long = asked if asked is not None and remaining > 0 else None
                spent = now - start
                mark(
                    e, Exhausted(call, n, spent, policy.deadline_seconds, verdict.reason, too_long)
                )
                raise
            wait = asked if asked is not None else min(policy.backoff(n), remaining)
            note(call, verdict.reason, n, wait, asked=asked is not None)
        policy.sleep(wait)


# --- counting ---------------------------------------------------------------------------------

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def note(call: str, reason: str, attempt: int, wait: float, *, asked: bool = False) -> None:
    """Log and count one retry (also used for a watch resumed after its stream broke)."""
    why = "as the server asked" if asked else "backing off"
    log.warning(
        "%s: attempt %d failed (%s); retrying in %.1f s (%s)", call, attempt, reason, wait, why
    )
    with _lock:
        _counts[reason] += 1
    _append(call, reason, attempt, wait)


def counts() -> dict[str, int]:
    """Retries made by this process so far, by reason."""
    with _lock:
        return dict(_counts)


def _append(call: str, reason: str, attempt: int, wait: float) -> None:
    # Under the runner, every process of the run (the runner planning, each kernel applying)
    # appends here; one short line per write with O_APPEND keeps lines whole.
    from egress_lib.plan import RUN_DIR_ENV
    from egress_lib.progress import STEP_ENV

    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    line = json.dumps(
        {
            "step": os.environ.get(STEP_ENV, ""),
            "call": call,
            "reason": reason,
            "attempt": attempt,
            "wait": round(wait, 3),
        },
        separators=(",", ":"),
    )
    try:
        fd = os.open(Path(run_dir) / RETRIES_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as e:  # a record that cannot be written must not fail the call
        log.debug("cannot record the retry in %s: %s", run_dir, e)


def step_counts(run_dir: Path, step: str) -> dict[str, int]:
    """Retries recorded in ``run_dir`` while step number ``step`` planned or ran, by reason."""
    path = Path(run_dir) / RETRIES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    out: Counter[str] = Counter()
    for line in text.splitlines():
        try:
            row: Any = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed process
        if isinstance(row, Mapping) and row.get("step") == step:
            out[str(row.get("reason") or "?")] += 1
    return dict(out)


# --- what is worth another attempt ------------------------------------------------------------


def is_retryable_code(code: str | None, status: int | None) -> bool:
    """Throttling, a server-side failure, or a busy table (:data:`BUSY_CODES`)."""
    code = code or ""
    return (
        code in SERVER_CODES
        or code.startswith("Throttling")
        or code in BUSY_CODES
        or (status is not None and status >= 500)
    )


def transport_reason(exc: BaseException | None) -> tuple[str, bool]:
    """(reason, sent) for a transport failure: ``sent`` is False when the request never left.

    Walks the exception's causes (the SDK keeps only the text of the requests error, with
    the error itself as ``__context__``) and reads their types, then the text.
    """
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__ or _reason_attr(exc)
    names = {type(e).__name__ for e in seen}
    text = " ".join(str(e) for e in seen).lower()
    if names & {"NewConnectionError", "ConnectionRefusedError"} or "connection refused" in text:
        return "connection refused", False
    if names & {"ConnectTimeout", "ConnectTimeoutError"} or "connect timeout" in text:
        return "connect timeout", False
    if names & {"ReadTimeout", "ReadTimeoutError", "TimeoutError", "timeout"} or (
        "timed out" in text
    ):
        return "timeout", True
    if names & {"ConnectionResetError", "RemoteDisconnected", "ProtocolError", "IncompleteRead"}:
        return "connection reset", True
    if "reset" in text or "aborted" in text or "broken" in text:
        return "connection reset", True
    return "connection error", True


def _reason_attr(exc: BaseException) -> BaseException | None:
    # urllib3's MaxRetryError keeps what went wrong in .reason, not as a cause.
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, BaseException) else None


def cloud_verdict(err: Exception, action: str) -> Verdict | None:
    """Whether a failed OpenAPI call is worth another attempt.

    ``err`` is the :class:`~egress_lib.errors.CloudApiError` raised ``from`` the SDK's
    exception, which carries the ``retry_after`` of ``x-acs-retry-after`` (milliseconds)
    and, for transport failures, the underlying error.
    """
    from egress_lib.errors import CloudApiError, CloudConnectionError

    if not isinstance(err, CloudApiError):
        return None
    sdk = err.__cause__
    if isinstance(err, CloudConnectionError):
        inner = getattr(sdk, "inner_exception", None)
        if type(inner).__name__ != "RetryError":
            return None  # no credentials, a bad argument: not a transport failure
        reason, sent = transport_reason(inner)
        if sent and not action.startswith(READ_PREFIXES) and action not in SAFE_WRITES:
            return None  # a write that may have been carried out: not repeated blindly
        return Verdict(reason)
    if not is_retryable_code(err.code, err.status_code):
        return None
    after = getattr(sdk, "retry_after", None)
    seconds = float(after) / 1000 if isinstance(after, (int, float)) and after > 0 else None
    return Verdict(err.code or f"HTTP {err.status_code}", seconds)


def retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header (an HTTP date is not used)."""
    value = (headers or {}).get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None
