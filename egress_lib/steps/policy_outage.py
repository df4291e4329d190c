"""Sandbox only: take one external endpoint down while the failover check runs.

On a real cluster the runbook never breaks a provider on purpose, so that check is shown as
not exercised. The sandbox offers the outage through its control endpoint (what
``egress-sandbox origin down HOST`` calls), found, like everything else of the sandbox, through
its ``sandbox.json``; the call carries the session's own Kubernetes credentials: whoever may
administer the sandbox's cluster may also break its internet. egress_lib does not import
egress_sandbox: this is one HTTP call on loopback.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from egress_lib.clients import sandbox_home
from egress_lib.errors import StepFailed

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.steps.policy_probes import Outage

TIMEOUT_SECONDS = 10.0
# sandbox.json's control_url ends with the control prefix (/_sandbox).
DOWN_PATH, UP_PATH = "/origin/down", "/origin/up"


def _control_url(home: str | None) -> str | None:
    try:
        info: Any = json.loads((sandbox_home(home) / "sandbox.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = str(info.get("control_url") or "")
    # Loopback only: the call carries a bearer token.
    return url.rstrip("/") if url.startswith("http://127.") else None


def _token(session: Session) -> str:
    config = getattr(session.api_client, "configuration", None)
    keys: dict[str, str] = dict(getattr(config, "api_key", None) or {})
    value = keys.get("authorization") or keys.get("BearerToken") or ""
    return value.removeprefix("Bearer ").strip()


def _set_down(url: str, token: str, host: str, down: bool) -> None:
    request = urllib.request.Request(
        f"{url}{DOWN_PATH if down else UP_PATH}",
        data=json.dumps({"host": host}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    # An empty ProxyHandler: http_proxy in the environment must not see a loopback call.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    what = "down" if down else "back up"
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "code", None) or getattr(e, "reason", e)
        raise StepFailed(
            f"the sandbox could not take {host} {what}: {reason}",
            remedy="Check that the sandbox is running (egress-sandbox status); if the host "
            f"stayed down, bring it back: egress-sandbox origin up {host}",
        ) from None


def sandbox_outage(session: Session) -> Outage | None:
    """A context-manager factory taking a host down on the sandbox; None when unavailable."""
    url = _control_url(session.params.sandbox_home)
    token = _token(session)
    if url is None or not token:
        return None

    @contextlib.contextmanager
    def outage(host: str) -> Iterator[None]:
        _set_down(url, token, host, True)
        try:
            yield
        finally:
            _set_down(url, token, host, False)

    return outage
