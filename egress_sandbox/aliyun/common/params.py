"""RPC request parameters as the real service reads them.

The SDK serialises everything into the query string (Tea's query serialisation in
alibabacloud_tea_openapi): booleans as ``True``/
``False``, lists as ``Name.1``, ``Name.2``, and lists of models as ``Tag.1.Key``. Required
parameters are not checked client-side, so the server must answer ``Missing<Param>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from egress_sandbox.aliyun.common import errors

_INDEXED = re.compile(r"^(?P<name>[A-Za-z]+)\.(?P<n>\d+)(?:\.(?P<sub>[A-Za-z]+))?$")


class Params:
    """Read-only view of one request's flat parameters with typed, strict accessors."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = dict(raw)

    def raw(self) -> dict[str, str]:
        return dict(self._raw)

    def get(self, name: str) -> str | None:
        """The value, or None when absent. An empty value counts as absent, as on the real API."""
        value = self._raw.get(name)
        return value if value else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise errors.MissingParameter(name)
        return value

    def region(self, expected: str, *, required: bool = True) -> str | None:
        """The RegionId, checked against the sandbox's one region.

        [UNCONFIRMED] The sandbox has one region; any other RegionId is 404
        InvalidRegionId.NotFound, as the NAT docs give for an unknown region.
        """
        region = self.require("RegionId") if required else self.get("RegionId")
        if region is not None and region != expected:
            raise errors.InvalidRegionIdNotFound()
        return region

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        # The Python SDK sends str(True) == "True"; other SDKs send "true".
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise errors.InvalidParameter(f"The specified parameter {name} is not valid.")
        return lowered == "true"

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.InvalidParameter(f"The specified parameter {name} is not valid.") from None

    def csv(self, name: str) -> list[str]:
        """A comma-separated list (``VpcId``, ``LoadBalancerId``, ``SnatIp``)."""
        value = self.get(name)
        return [v.strip() for v in value.split(",") if v.strip()] if value else []

    def indexed(self, name: str) -> list[str]:
        """``Name.1``, ``Name.2``, ... in index order."""
        found: dict[int, str] = {}
        for key, value in self._raw.items():
            m = _INDEXED.match(key)
            if m and m["name"] == name and m["sub"] is None:
                found[int(m["n"])] = value
        return [found[i] for i in sorted(found)]

    def indexed_models(self, name: str) -> list[dict[str, str]]:
        """``Tag.1.Key``/``Tag.1.Value``, ... as ``[{"Key": .., "Value": ..}, ...]``, by index."""
        found: dict[int, dict[str, str]] = {}
        for key, value in self._raw.items():
            m = _INDEXED.match(key)
            if m and m["name"] == name and m["sub"] is not None:
                found.setdefault(int(m["n"]), {})[m["sub"]] = value
        return [found[i] for i in sorted(found)]

    def tags(self) -> dict[str, str]:
        """``Tag.N.Key``/``Tag.N.Value`` filters as a dict (a missing Value means any value: "")."""
        out: dict[str, str] = {}
        for tag in self.indexed_models("Tag"):
            key = tag.get("Key")
            if not key:
                raise errors.InvalidParameter("The specified parameter Tag.N.Key is not valid.")
            out[key] = tag.get("Value", "")
        return out

    def dry_run(self) -> None:
        """Raise DryRunOperation when DryRun=true (call after the request passed validation)."""
        if self.bool("DryRun"):
            raise errors.DryRunOperation()


def tags_match(wanted: Mapping[str, str], have: Mapping[str, str]) -> bool:
    """Every wanted tag key is present; an empty wanted value matches any value."""
    return all(k in have and (not v or have[k] == v) for k, v in wanted.items())
