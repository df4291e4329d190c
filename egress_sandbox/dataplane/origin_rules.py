"""How individual hosts of the sandbox's "internet" behave (topology ``origin_hosts``).

:class:`OriginRules` is the live view the origin and the gateway's dialler share: the
topology's hosts plus what the run-time control changed (``egress-sandbox origin down HOST``).
"""

from __future__ import annotations

import threading

from pydantic import BaseModel, ConfigDict, Field


class OriginHost(BaseModel):
    """One public host with requirements or faults; every other host is a plain echo."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="the host name; '*.example.com' matches one label")
    require_sni: bool = Field(default=False, description="TLS without this SNI is refused")
    require_client_certificate: bool = Field(
        default=False, description="TLS without a client certificate from the sandbox CA fails"
    )
    down: bool = Field(default=False, description="connections to the host are refused")


def host_matches(pattern: str, host: str) -> bool:
    """Exact (case-insensitive), or ``*.example.com`` for exactly one more label."""
    pattern, host = pattern.rstrip(".").lower(), host.rstrip(".").lower()
    if pattern.startswith("*."):
        suffix = pattern[1:]
        label = host[: -len(suffix)] if host.endswith(suffix) else ""
        return bool(label) and "." not in label
    return pattern == host


class OriginRules:
    """The effective rule per host: an exact entry beats a wildcard; run-time downs on top."""

    def __init__(self, hosts: list[OriginHost] | None = None) -> None:
        self._lock = threading.Lock()
        self._hosts = [h.model_copy() for h in hosts or []]
        self._down: dict[str, bool] = {}  # host -> down, set at run time

    def rule(self, host: str) -> OriginHost:
        name = host.rstrip(".").lower()
        with self._lock:
            exact = [h for h in self._hosts if h.host.lower() == name]
            wild = [
                h for h in self._hosts if h.host.startswith("*.") and host_matches(h.host, name)
            ]
            found = (exact or wild or [OriginHost(host=name)])[0]
            down = self._down.get(name)
        return found if down is None else found.model_copy(update={"down": down})

    def set_down(self, host: str, down: bool) -> OriginHost:
        """Take ``host`` down (connections refused) or bring it back; its effective rule."""
        name = host.rstrip(".").lower()
        if not name or "/" in name or " " in name:
            raise ValueError(f"host: {host!r} is not a host name (expected e.g. api.example.com)")
        with self._lock:
            self._down[name] = down
        return self.rule(name)

    def clear(self) -> int:
        """Forget every run-time change (the topology's hosts stay); how many there were."""
        with self._lock:
            n = len(self._down)
            self._down.clear()
        return n

    def describe(self) -> list[dict[str, object]]:
        """Every host with a rule or a run-time state, for the control API."""
        with self._lock:
            names = [h.host.lower() for h in self._hosts] + list(self._down)
        seen: list[str] = []
        for n in names:
            if n not in seen:
                seen.append(n)
        return [self.rule(n).model_dump() for n in seen]
