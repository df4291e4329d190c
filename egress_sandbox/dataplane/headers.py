"""Header control (``request-header-control-*``, ``response-header-control-*``), as Higress.

Parsing follows Higress ``header_control.go``: add/update take one ``Key Value`` per line
(split at the first run of blanks; a line without a value is skipped, as Higress logs and skips
it; a key given twice keeps its last value), remove takes ``K1,K2``. Applying follows Envoy's
header mutation: removals first, then updates (set: replace every entry), then additions
(appended to an existing value with a comma, as the MSE annotation table says "appends").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Headers = list[tuple[str, str]]
_BLANKS = re.compile(r"\s+")
# Names a header line may carry (RFC 7230 token); anything else is skipped, never sent.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class HeaderOps:
    add: tuple[tuple[str, str], ...] = ()
    update: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.remove)


def parse_pairs(value: str | None) -> tuple[tuple[str, str], ...]:
    out: dict[str, tuple[str, str]] = {}
    for line in (value or "").split("\n"):
        line = line.strip()
        if not line:
            continue
        parts = _BLANKS.split(line, maxsplit=1)
        if len(parts) != 2 or not _TOKEN.match(parts[0]) or "\r" in parts[1]:
            continue  # Higress: "Header format ... is invalid", the line is skipped
        out[parts[0].lower()] = (parts[0], parts[1].strip())
    return tuple(out.values())


def parse_names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def parse(add: str | None, update: str | None, remove: str | None) -> HeaderOps | None:
    ops = HeaderOps(parse_pairs(add), parse_pairs(update), parse_names(remove))
    return ops if ops else None


def apply(headers: Headers, ops: HeaderOps | None) -> Headers:
    """``headers`` with ``ops`` applied (a new list; names compared case-insensitively)."""
    if not ops:
        return headers
    gone = {n.lower() for n in ops.remove}
    out = [(k, v) for k, v in headers if k.lower() not in gone]
    for key, value in ops.update:
        at = next((i for i, (k, _) in enumerate(out) if k.lower() == key.lower()), None)
        out = [(k, v) for k, v in out if k.lower() != key.lower()]
        out.insert(len(out) if at is None else at, (key.lower(), value))
    for key, value in ops.add:
        at = next((i for i, (k, _) in enumerate(out) if k.lower() == key.lower()), None)
        if at is None:
            out.append((key.lower(), value))
        else:
            out[at] = (out[at][0], f"{out[at][1]},{value}")
    return out
