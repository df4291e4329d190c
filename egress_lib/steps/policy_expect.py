"""What each policy check expects, from the parameters alone, and whether an answer fits.

Pure functions over canned answers (statuses, bodies, headers), so the expectation logic is
unit-tested without a cluster: the IP lists' precedence, the throttle's counts, the load
balancer's split, mirroring's copy count, header control and TLS details.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from egress_lib.policies import HeaderControl, IpAccess, LoadBalancing, RateLimit
from egress_lib.steps.policy_results import Outcome

# MSE's default route-limit-burst-multiplier (reference section 3).
DEFAULT_BURST_MULTIPLIER = 5
# A throttle check sends at most this many requests on one connection.
MAX_THROTTLE_REQUESTS = 200
# Requests past the burst: enough for 429s to show, few enough to stay quick.
THROTTLE_EXTRA = 5
# An endpoint expected to serve at least this many of the requests must serve one: with a
# weighted random pick, missing it by chance is then below 1 % (0.5^5 x 2 for 50/50).
MIN_EXPECTED_SHARE = 5
THROTTLED_BODY = "local_rate_limited"
DENIED_BODY = "RBAC: access denied"
TLS_VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Verdict:
    """Whether an answer fits, and what was observed, in words."""

    ok: bool
    observed: str
    # The answer cannot show it (e.g. a real origin does not echo TLS details): no failure.
    skipped: bool = False

    @property
    def outcome(self) -> Outcome:
        if self.skipped:
            return "skipped"
        return "pass" if self.ok else "fail"


# ---- IP lists --------------------------------------------------------------------------------


def first_match(source: str, cidrs: Sequence[str]) -> str | None:
    """The first entry of ``cidrs`` that holds ``source`` (None: none, or not an address)."""
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return None
    for c in cidrs:
        if addr in ipaddress.ip_network(c, strict=False):
            return c
    return None


@dataclass(frozen=True)
class IpVerdict:
    """Whether the gateway lets ``source`` through, which level decides, and why."""

    allowed: bool
    level: str  # "gateway", "route", "domain", or "" when no list names the source
    reason: str


def _decide(source: str, ips: IpAccess, level: str) -> IpVerdict | None:
    # Within a level deny beats allow; a level that only denies lets the others through.
    denied_by = first_match(source, ips.deny)
    if denied_by:
        return IpVerdict(False, level, f"{source} is in the {level} deny list ({denied_by})")
    if ips.allow:
        allowed_by = first_match(source, ips.allow)
        if allowed_by is None:
            listed = ",".join(ips.allow)
            return IpVerdict(False, level, f"{source} is not in the {level} allow list ({listed})")
        return IpVerdict(True, level, f"{source} is in the {level} allow list ({allowed_by})")
    return None


def ip_verdict(
    source: str,
    gateway: IpAccess | None,
    route: IpAccess | None,
    domain: IpAccess | None,
) -> IpVerdict:
    """The documented precedence: gateway-wide first, then the route's lists if it has any
    (the domain's are then not consulted), else the host's domain lists."""
    if gateway is not None:
        decided = _decide(source, gateway, "gateway")
        if decided is not None and not decided.allowed:
            return decided
    for level, ips in (("route", route), ("domain", domain)):
        if ips is not None and (ips.allow or ips.deny):
            decided = _decide(source, ips, level)
            if decided is not None:
                return decided
            return IpVerdict(True, level, f"{source} is in no {level} deny list")
    if gateway is not None and gateway.allow:
        return IpVerdict(True, "gateway", f"{source} is in the gateway allow list")
    return IpVerdict(True, "", f"{source} is in no list that applies")


def judge_ip(verdict: IpVerdict, status: int | None, body: str) -> Verdict:
    """Denied: HTTP 403; allowed: any other HTTP answer (the lists let it through)."""
    if status is None:
        return Verdict(False, "no HTTP answer")
    if status == 403:
        said = f" {body.strip()[:60]!r}" if body.strip() else ""
        return Verdict(not verdict.allowed, f"HTTP 403{said}")
    return Verdict(verdict.allowed, f"HTTP {status}: passed the lists")


# ---- throttling ------------------------------------------------------------------------------


def burst(rl: RateLimit) -> int:
    """Tokens a replica's bucket holds: the limit x the multiplier (MSE's default 5)."""
    limit = rl.rps if rl.rps is not None else (rl.rpm or 0)
    return limit * (rl.burst_multiplier or DEFAULT_BURST_MULTIPLIER)


def per_second(rl: RateLimit) -> float:
    """The refill rate, in tokens per second."""
    return float(rl.rps) if rl.rps is not None else (rl.rpm or 0) / 60.0


def _fill(rl: RateLimit) -> tuple[int, float]:
    # Envoy's bucket refills in steps: the limit's tokens once per interval (1 s or 60 s).
    return (rl.rps, 1.0) if rl.rps is not None else (rl.rpm or 0, 60.0)


def max_passes(rl: RateLimit, elapsed: float) -> int:
    """The most requests a full bucket lets through in ``elapsed`` seconds: the burst plus
    one fill per interval begun (a fill may fall anywhere in the window)."""
    tokens, interval = _fill(rl)
    return burst(rl) + tokens * (math.floor(elapsed / interval) + 1)


def refill_seconds(rl: RateLimit, needed: int) -> float:
    """How long an empty bucket takes to hold ``needed`` tokens again (whole intervals, as
    Envoy refills, and a little margin for the replica's clock)."""
    tokens, interval = _fill(rl)
    if tokens <= 0:
        return 0.0
    return interval * math.ceil(min(needed, burst(rl)) / tokens) + 0.2


def throttled(answers: Sequence[Answer]) -> int:
    """How many answers are the route's own rate limit (429 ``local_rate_limited``)."""
    return sum(1 for a in answers if a.status == 429 and THROTTLED_BODY in a.body)


def throttle_requests(rl: RateLimit) -> int | None:
    """How many requests the throttle check sends: more than a full bucket and two fills let
    through (the requests take up to a second or so); None when that is too many to send."""
    tokens, _ = _fill(rl)
    n = burst(rl) + (2 * tokens if rl.rps is not None else tokens) + THROTTLE_EXTRA
    return n if n <= MAX_THROTTLE_REQUESTS else None


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange as the probe saw it."""

    status: int | None
    body: str = ""
    seconds: float = 0.0


def judge_throttle(answers: Sequence[Answer], rl: RateLimit) -> Verdict:
    """The first answers pass, then 429 ``local_rate_limited``; never more passes than the
    bucket holds plus the fills that fell while the requests ran (:func:`max_passes`)."""
    if not answers:
        return Verdict(False, "no answer")
    passed = [a for a in answers if a.status is not None and a.status != 429]
    limited = [a for a in answers if a.status == 429]
    missing = [a for a in answers if a.status is None]
    elapsed = sum(a.seconds for a in answers)
    bound = max_passes(rl, elapsed)
    bodies_ok = all(THROTTLED_BODY in a.body for a in limited)
    observed = f"{len(passed)} passed, then {len(limited)} x 429"
    if limited:
        observed += " local_rate_limited" if bodies_ok else " (body not local_rate_limited)"
    if missing:
        observed += f", {len(missing)} without an answer"
    observed += f" in {elapsed:.2f} s"
    ok = (
        not missing
        and bool(limited)
        and bodies_ok
        and 1 <= len(passed) <= bound
        and answers[0].status != 429
    )
    return Verdict(ok, observed)


def judge_under_limit(answer: Answer | None) -> Verdict:
    """A single request under the limit gets through."""
    if answer is None or answer.status is None:
        return Verdict(False, "no HTTP answer")
    return Verdict(answer.status < 400, f"HTTP {answer.status}")


# ---- load balancing and failover -------------------------------------------------------------


def endpoint_weights(host: str, lb: LoadBalancing) -> dict[str, int]:
    """Each endpoint's host and weight in percent, the destination's own host first."""
    out = {host: lb.weight}
    for e in lb.endpoints:
        out[e.host] = out.get(e.host, 0) + e.weight
    return out


def _split_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{h} {n}" for h, n in counts.items())


def judge_split(
    answers: Sequence[Answer], hosts: Sequence[str | None], weights: Mapping[str, int]
) -> Verdict:
    """Every request answered; when the answers name their endpoint, the split fits the
    weights: no request to a weight-0 endpoint, at least one to any endpoint expected to
    serve :data:`MIN_EXPECTED_SHARE` or more."""
    n = len(answers)
    good = sum(1 for a in answers if a.status is not None and a.status < 400)
    observed = f"{good}/{n} answered"
    known = [h for h in hosts if h]
    if not known:
        return Verdict(good == n and n > 0, observed + " (the answers do not name the endpoint)")
    counts = Counter(known)
    ordered = {h: counts.get(h, 0) for h in weights} | {
        h: c for h, c in counts.items() if h not in weights
    }
    observed += f"; {_split_text(ordered)}"
    unexpected = [h for h, c in ordered.items() if c and weights.get(h, 0) == 0]
    missed = [h for h, w in weights.items() if w * n / 100 >= MIN_EXPECTED_SHARE and not counts[h]]
    return Verdict(good == n and n > 0 and not unexpected and not missed, observed)


RETRIED = "retried"  # Envoy's 503 body names the retries it made: "... retried and the ..."


def judge_failover(answers: Sequence[Answer], hosts: Sequence[str | None], down: str) -> Verdict:
    """With ``down`` refusing connections: no answer from it, the live endpoints answer, and
    each request the weighted pick gave to ``down`` is either answered by another endpoint
    (failover) or a 503 whose body says the gateway retried.

    Envoy keeps a retry within the Service the weighted pick chose (the sandbox emulates
    that: egress_sandbox/dataplane/retry.py), so across several ExternalName Services a
    retry cannot reach the other provider; the check shows which of the two happened.
    """
    n = len(answers)
    good = [a for a in answers if a.status is not None and a.status < 400]
    failed = [a for a in answers if not (a.status is not None and a.status < 400)]
    known = [h for h in hosts if h]
    retried = [a for a in failed if a.status == 503 and RETRIED in a.body]
    observed = f"{len(good)}/{n} answered while {down} was down"
    if known:
        observed += f" ({_split_text(Counter(known))})"
    if failed:
        observed += f"; {len(retried)} x 503 after retrying"
        if len(retried) < len(failed):
            codes = Counter(str(a.status or "no answer") for a in failed if a not in retried)
            observed += f", {_split_text(codes)} without"
    ok = bool(good) and down not in known and len(retried) == len(failed)
    return Verdict(ok, observed)


# ---- timeouts --------------------------------------------------------------------------------


def judge_timeout(answer: Answer | None, timeout: int, delay: int) -> Verdict:
    """The gateway gives up with 504 after about ``timeout`` s, before the origin's delay."""
    if answer is None or answer.status is None:
        return Verdict(False, "no HTTP answer")
    said = f" {answer.body.strip()[:40]!r}" if answer.body.strip() else ""
    observed = f"HTTP {answer.status}{said} after {answer.seconds:.1f} s"
    return Verdict(answer.status == 504 and answer.seconds < delay, observed)


# ---- mirroring -------------------------------------------------------------------------------


def judge_mirror(seen: int, sent: int, percentage: int | None, shadow_ok: bool) -> Verdict:
    """Copies seen by the mirror for ``sent`` requests: all at 100 %, none at 0 %, else at
    most ``sent`` (and at least one when the share should give three or more)."""
    p = 100 if percentage is None else percentage
    if p == 100:
        ok = seen == sent
    elif p == 0:
        ok = seen == 0
    else:
        ok = seen <= sent and (seen >= 1 or sent * p / 100 < 3)
    observed = f"{seen} of {sent} copies seen"
    if seen:
        observed += ", Host with -shadow" if shadow_ok else ", Host without -shadow"
    return Verdict(ok and (shadow_ok or seen == 0), observed)


def mirror_copies(lines: Sequence[str], marker: str) -> tuple[int, bool]:
    """(copies carrying ``marker``, whether every one's Host ends with ``-shadow``) from an
    echo server's JSON log lines; other lines count when they hold the marker at all."""
    seen = 0
    shadow = True
    for line in lines:
        if marker not in line:
            continue
        seen += 1
        try:
            data: Any = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        headers = data.get("headers") if isinstance(data, dict) else None
        host = str((headers or {}).get("host") or (headers or {}).get("Host") or "")
        shadow = shadow and host.split(":", 1)[0].endswith("-shadow")
    return seen, shadow


# ---- headers ---------------------------------------------------------------------------------


def lower_keys(headers: Mapping[str, Any]) -> dict[str, str]:
    """Header names lower-cased; several values of one name joined with ', '."""
    out: dict[str, str] = {}
    for k, v in headers.items():
        value = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        key = k.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def judge_headers(
    headers: Mapping[str, str], control: HeaderControl, sent: Mapping[str, str]
) -> list[tuple[str, str, Verdict]]:
    """(check, expectation, verdict) per header of ``control``; ``headers`` lower-cased.

    ``sent`` is what the other side sent itself: an added header is appended to its value,
    an updated one replaces it, a removed one is gone even if it was sent.
    """
    out: list[tuple[str, str, Verdict]] = []
    for name, value in control.add.items():
        got = headers.get(name.lower())
        ok = got is not None and value in [p.strip() for p in got.split(",")]
        before = sent.get(name.lower())
        want = f"{name}: {before}, {value}" if before else f"{name}: {value}"
        out.append((f"add {name}", want, Verdict(ok, _shown(name, got))))
    for name, value in control.update.items():
        got = headers.get(name.lower())
        out.append((f"update {name}", f"{name}: {value}", Verdict(got == value, _shown(name, got))))
    for name in control.remove:
        got = headers.get(name.lower())
        out.append((f"remove {name}", f"no {name}", Verdict(got is None, _shown(name, got))))
    return out


def _shown(name: str, value: str | None) -> str:
    return f"no {name}" if value is None else f"{name}: {value[:80]}"


def split_head(text: str) -> tuple[int | None, dict[str, str], str]:
    """(status, lower-cased headers, body) of what ``curl -D -`` printed; the last header
    block wins (a 100 Continue comes first)."""
    status: int | None = None
    headers: dict[str, str] = {}
    # A curl message (stderr) may come first in the log: start at the status line.
    at = 0 if text.startswith("HTTP/") else text.find("\nHTTP/") + 1
    rest = text[at:] if at > 0 or text.startswith("HTTP/") else text
    while rest.startswith("HTTP/"):
        head, sep, body = rest.replace("\r\n", "\n").partition("\n\n")
        lines = head.split("\n")
        parts = lines[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        raw: dict[str, Any] = {}
        for line in lines[1:]:
            k, colon, v = line.partition(":")
            if colon:
                key = k.strip()
                raw[key] = [*raw[key], v.strip()] if key in raw else v.strip()
        headers = lower_keys(raw)
        rest = body if sep else ""
    return status, headers, rest


def echo_of(body: str) -> dict[str, Any] | None:
    """The origin's JSON echo (an object), or None when the body is something else.

    curl's own messages go to stderr, which the pod's log interleaves with stdout, so text
    may surround the object: the first whole object wins.
    """
    start = body.find("{")
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(body[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ---- TLS -------------------------------------------------------------------------------------


def judge_origination(
    echo: dict[str, Any] | None,
    status: int | None,
    sni: str | None,
    client_certificate: bool,
) -> Verdict:
    """The origin saw TLS, the expected SNI (none when sni is unset) and a client
    certificate exactly when upstream_tls names one. Without an echo: a 2xx/3xx answer
    over an HTTPS backend still shows that TLS worked, but not its details."""
    if status is None:
        return Verdict(False, "no HTTP answer")
    if echo is None or "tls" not in echo:
        ok = status < 400
        # Only the sandbox origin echoes them; a 2xx still shows the TLS handshake worked.
        return Verdict(ok, f"HTTP {status} (the answer does not echo TLS details)", skipped=ok)
    got_sni = echo.get("sni") or None
    cert = echo.get("client_certificate") or None
    observed = (
        f"HTTP {status}; tls {str(bool(echo.get('tls'))).lower()}"
        f" {echo.get('tls_version') or ''}".rstrip()
        + f", sni {got_sni or 'none'}, client certificate {cert or 'none'}"
    )
    ok = (
        status < 400
        and bool(echo.get("tls"))
        and got_sni == sni
        and (cert is not None) == client_certificate
    )
    return Verdict(ok, observed)


def curl_tls(version: str) -> str:
    """``TLSv1.2`` -> ``1.2``, as curl's --tlsv1.x and --tls-max take it."""
    return version.removeprefix("TLSv")


def below(version: str) -> str | None:
    """The version just below ``version`` (None for TLSv1.0)."""
    i = TLS_VERSIONS.index(version)
    return TLS_VERSIONS[i - 1] if i > 0 else None


def above(version: str) -> str | None:
    """The version just above ``version`` (None for TLSv1.3)."""
    i = TLS_VERSIONS.index(version)
    return TLS_VERSIONS[i + 1] if i + 1 < len(TLS_VERSIONS) else None


def judge_handshake(status: int | None, error: str, *, should_work: bool) -> Verdict:
    """A TLS handshake with the gateway: any HTTP answer shows it worked."""
    if status is not None:
        return Verdict(should_work, f"HTTP {status} over TLS")
    return Verdict(not should_work, f"handshake failed: {error[:100] or 'no answer'}")
