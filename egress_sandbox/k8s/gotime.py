"""Go's ``time.Parse`` for the two layouts Kubernetes times use, with Go's error texts.

``metav1.Time`` parses RFC 3339 and marshals it at second precision in UTC; ``metav1.MicroTime``
parses and marshals RFC 3339 with exactly six fractional digits. Both ``UnmarshalJSON`` methods
return ``time.Parse``'s error as it is, and kube-apiserver puts it in its 400 answer.
"""

from __future__ import annotations

import datetime as dt
import json

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"

_RANGES = {"month": (1, 12), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}


def go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _num(s: str, fixed: bool) -> tuple[int, str] | None:
    """time.getnum: one or two digits; exactly two when fixed."""
    if not s[:1].isdigit() or not s[:1].isascii():
        return None
    if not (s[1:2].isdigit() and s[1:2].isascii()):
        return None if fixed else (int(s[0]), s[1:])
    return int(s[:2]), s[2:]


def parse(value: str, layout: str) -> tuple[str, str]:
    """(the value as Kubernetes stores it, "") or ("", Go's time.ParseError text)."""
    micro = layout == RFC3339_MICRO

    def cannot(rest: str, elem: str) -> tuple[str, str]:
        return "", (
            f"parsing time {go_quote(value)} as {go_quote(layout)}: "
            f"cannot parse {go_quote(rest)} as {go_quote(elem)}"
        )

    def out_of_range(what: str) -> tuple[str, str]:
        return "", f"parsing time {go_quote(value)}: {what} out of range"

    rest = value
    if len(rest) < 4 or not (rest[:4].isascii() and rest[:4].isdigit()):
        return cannot(rest, "2006")
    fields: list[int] = [int(rest[:4])]
    rest = rest[4:]
    steps: tuple[tuple[str, str, bool, str], ...] = (
        ("-", "01", True, "month"),
        ("-", "02", True, ""),
        ("T", "15", False, "hour"),
        (":", "04", True, "minute"),
        (":", "05", True, "second"),
    )
    for sep, elem, fixed, rng in steps:
        if not rest.startswith(sep):
            return cannot(rest, sep)
        rest = rest[len(sep) :]
        got = _num(rest, fixed)
        if got is None:
            return cannot(rest, elem)
        n, rest = got
        if rng and not _RANGES[rng][0] <= n <= _RANGES[rng][1]:
            return out_of_range(rng)
        fields.append(n)
    micros = 0
    if micro:
        frac = rest[:7]
        if len(frac) < 7 or frac[0] not in ".," or not (frac[1:].isascii() and frac[1:].isdigit()):
            return cannot(rest, ".000000")
        micros, rest = int(frac[1:]), rest[7:]
    elif rest[:1] in (".", ",") and rest[1:2].isascii() and rest[1:2].isdigit():
        # A layout without fractional seconds still accepts them after the seconds.
        digits = len(rest[1:]) - len(rest[1:].lstrip("0123456789"))
        rest = rest[1 + digits :]
    offset = 0
    if rest.startswith("Z"):
        rest = rest[1:]
    else:
        tz = rest[:6]
        hh, mm = _num(tz[1:3], True), _num(tz[4:6], True)
        if len(tz) < 6 or tz[3] != ":" or tz[0] not in "+-" or hh is None or mm is None:
            return cannot(rest, "Z07:00")
        if hh[0] > 24:
            return out_of_range("time zone offset hour")
        if mm[0] > 60:
            return out_of_range("time zone offset minute")
        offset = (hh[0] * 60 + mm[0]) * (-1 if tz[0] == "-" else 1)
        rest = rest[6:]
    if rest:
        return "", f"parsing time {go_quote(value)}: extra text: {go_quote(rest)}"
    year, month, day, hour, minute, second = fields
    try:
        when = dt.datetime(year, month, day, hour, minute, second, micros)
    except ValueError:
        return out_of_range("day")
    try:
        utc = when - dt.timedelta(minutes=offset)
    except OverflowError:
        return "", f"parsing time {go_quote(value)}: year out of range"
    stamp = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    return (f"{stamp}.{micros:06d}Z" if micro else f"{stamp}Z"), ""
