"""A small client of the control endpoint, found through the files in the sandbox home.

``sandbox.json`` gives ``control_url``; the kubeconfig gives the ``sandbox-admin`` token, so
whoever may administer the cluster may also break it on purpose, and no other secret exists.
Requests never go through a proxy (the endpoint is loopback) and each has a timeout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

TIMEOUT_SECONDS = 30.0  # latency faults are the client's business, not the control call's
ADMIN_USER = "sandbox-admin"


class ControlError(Exception):
    """The control endpoint answered with an error, or cannot be reached."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def _admin_token(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    for user in config.get("users") or []:
        if user.get("name") == ADMIN_USER:
            return str(user["user"]["token"])
    raise ControlError(None, f"{kubeconfig} has no user {ADMIN_USER}")


class ControlClient:
    def __init__(self, url: str, token: str) -> None:
        if not urllib.parse.urlsplit(url).hostname or not url.startswith("http://127."):
            raise ControlError(None, f"refusing a non-loopback control URL {url!r}")
        self.url = url.rstrip("/")
        self._token = token
        # An empty ProxyHandler: http_proxy in the environment must not see loopback calls.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:  # never show the token
        return f"ControlClient({self.url!r})"

    @classmethod
    def from_home(cls, home: Path) -> ControlClient:
        try:
            info = json.loads((home / "sandbox.json").read_text())
        except (OSError, ValueError):
            raise ControlError(None, f"the sandbox in {home} is not running") from None
        if "control_url" not in info:
            raise ControlError(None, f"{home / 'sandbox.json'} has no control_url")
        return cls(info["control_url"], _admin_token(Path(info["kubeconfig"])))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ControlError(exc.code, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ControlError(None, f"control endpoint {self.url} unreachable: {exc}") from None

    # ---- typed helpers -----------------------------------------------------------------------

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/faults", fault)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/faults")
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("DELETE", "/faults")
        return result

    def stuck(self, kind: str, resource_id: str) -> None:
        self.call("POST", "/faults/stuck", {"kind": kind, "id": resource_id})

    def mse_fail(self, name: str, message: str) -> None:
        self.call("POST", "/faults/mse-fail", {"name": name, "message": message})

    def drop_watches(self, resource: str | None = None) -> int:
        return int(self.call("POST", "/faults/drop-watches", {"resource": resource})["dropped"])

    def transitions(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/transitions")
        return result

    def set_transition(self, kind: str, mode: str, seconds: float | None = None) -> None:
        body: dict[str, Any] = {"mode": mode}
        if seconds is not None:
            body["seconds"] = seconds
        self.call("PUT", f"/transitions/{urllib.parse.quote(kind)}", body)

    def advance(self, resource_id: str) -> None:
        self.call("POST", "/transitions/advance", {"id": resource_id})

    def audit(
        self, since: str | None = None, mutating: bool | None = None, api: str | None = None
    ) -> list[dict[str, Any]]:
        query = {
            k: v
            for k, v in {
                "since": since,
                "mutating": None if mutating is None else str(mutating).lower(),
                "api": api,
            }.items()
            if v is not None
        }
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        records: list[dict[str, Any]] = self.call("GET", f"/audit{suffix}")["records"]
        return records

    def origin_hosts(self) -> list[dict[str, Any]]:
        hosts: list[dict[str, Any]] = self.call("GET", "/origin")["hosts"]
        return hosts

    def origin_down(self, host: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/origin/down", {"host": host})
        return result

    def origin_up(self, host: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/origin/up", {"host": host})
        return result

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/reset")
        return result
