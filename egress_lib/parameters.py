"""The runbook's parameters (schema v1): pydantic models and the loader.

Every problem is reported at once, as one :class:`ParameterError` naming the key path,
the value given and what is expected.
"""

from __future__ import annotations

import ast
import copy
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as _ValidationError

from egress_lib.errors import ParameterError, Problem
from egress_lib.validation_messages import cross_checks, problems_from_validation_error
from egress_lib.validators import (
    ClusterId,
    DnsLabel,
    DnsSubdomain,
    Host,
    HttpPath,
    IPv4,
    NatGatewayId,
    RegionId,
    VSwitchId,
)

GatewaySpec = Literal["2c4g", "4c8g", "8c16g", "16c32g"]
SlbSpec = Literal[
    "slb.s1.small", "slb.s2.small", "slb.s2.medium", "slb.s3.small", "slb.s3.medium", "slb.s3.large"
]
PathType = Literal["Prefix", "Exact", "ImplementationSpecific"]
BackendProtocol = Literal["HTTP", "HTTPS"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gateway(_Model):
    """The MseIngressConfig (one MSE gateway) and the IngressClass bound to it."""

    config_name: DnsSubdomain = "egress-gateway"
    name: StrictStr = Field(default="egress-gateway", min_length=1, max_length=64)
    ingress_class: DnsSubdomain = "mse"
    spec: GatewaySpec = "2c4g"
    replicas: StrictInt = Field(default=3, ge=0, le=30)
    vswitches: list[VSwitchId] = Field(min_length=1, max_length=2)
    private_slb_spec: SlbSpec = "slb.s2.small"


class Snat(_Model):
    """Where the gateway's SNAT entries go; nulls are discovered from the VPC."""

    nat_gateway_id: NatGatewayId | None = None
    snat_ip: IPv4 | None = None
    entry_name: StrictStr = Field(default="egress-gateway", min_length=2, max_length=128)


class Destination(_Model):
    """One external domain reached through the gateway."""

    name: DnsLabel
    host: Host
    port: StrictInt = Field(ge=1, le=65535)
    path: HttpPath = "/"
    path_type: PathType = "Prefix"
    backend_protocol: BackendProtocol = "HTTP"
    ingress_name: DnsSubdomain | None = None

    @property
    def ingress(self) -> str:
        """The Ingress this destination's rule lives in."""
        return self.ingress_name or self.name


class Verify(_Model):
    """How the test pod reaches each destination through the gateway."""

    image: StrictStr = Field(default="curlimages/curl:8.10.1", min_length=1)
    timeout_seconds: StrictInt = Field(default=60, ge=1, le=3600)


class Timeouts(_Model):
    """Deadlines, in seconds, for the long waits."""

    controller_seconds: StrictInt = Field(default=600, ge=1, le=86400)
    gateway_seconds: StrictInt = Field(default=900, ge=1, le=86400)
    snat_seconds: StrictInt = Field(default=300, ge=1, le=86400)
    ingress_status_seconds: StrictInt = Field(default=300, ge=1, le=86400)


class Controller(_Model):
    """The MSE Ingress Controller add-on; version null = the latest the cluster offers."""

    addon_name: StrictStr = Field(default="mse-ingress-controller", min_length=1)
    version: StrictStr | None = None


class Parameters(_Model):
    """Schema v1 of the runbook parameters."""

    schema_version: Literal[1] = 1
    cluster_name: DnsLabel
    target: Literal["sandbox", "aliyun"] = "sandbox"
    region_id: RegionId
    cluster_id: ClusterId
    kubeconfig: StrictStr | None = None
    kube_context: StrictStr | None = None
    namespace: DnsLabel = "default"
    gateway: Gateway
    snat: Snat = Field(default_factory=Snat)
    destinations: list[Destination] = Field(min_length=1)
    verify: Verify = Field(default_factory=Verify)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    controller: Controller = Field(default_factory=Controller)
    approve: StrictBool = False

    def ingress_groups(self) -> dict[str, list[Destination]]:
        """Destinations grouped by the Ingress they share, in first-seen order."""
        groups: dict[str, list[Destination]] = {}
        for dest in self.destinations:
            groups.setdefault(dest.ingress, []).append(dest)
        return groups

    @property
    def notes(self) -> list[str]:
        """Things that are valid but unusual, worth showing to the operator."""
        out = []
        for i, d in enumerate(self.destinations):
            if d.backend_protocol == "HTTPS" and d.port != 443:
                out.append(f"destinations[{i}].port is {d.port}; HTTPS backends normally use 443")
            if d.backend_protocol == "HTTP" and d.port == 443:
                out.append(f"destinations[{i}].port is 443 with backend_protocol HTTP")
        return out

    @classmethod
    def from_namespace(cls, ns: Mapping[str, object]) -> Parameters:
        """Build from a notebook's ``globals()``: only the schema's top-level keys are used.

        A key papermill injected that the schema does not know (a typo in the parameters
        file) is an error too: the injected cell is found in IPython's input history ``In``.
        """
        picked = {k: ns[k] for k in cls.model_fields if k in ns}
        history = ns.get("In")
        if isinstance(history, list):
            for name in sorted(_injected_names(history) - set(cls.model_fields)):
                near = difflib.get_close_matches(name, list(cls.model_fields), n=1, cutoff=0.5)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problem = f"{name!r} is not a parameter of schema v1"
                raise ParameterError(
                    Problem(name, ns.get(name), f"one of the known keys{hint}", problem),
                    source="the injected parameters",
                )
        return load_parameters(picked)


def _injected_names(history: list[object]) -> set[str]:
    """Names assigned in papermill's injected cell (its source starts with "# Parameters")."""
    names: set[str] = set()
    for src in history:
        if isinstance(src, str) and src.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def load_parameters(
    source: str | os.PathLike[str] | Mapping[str, object],
    overrides: Mapping[str, object] | None = None,
) -> Parameters:
    """Load and validate parameters from a YAML file or a mapping.

    ``overrides`` maps dotted keys ("gateway.replicas", "destinations.0.port") or
    top-level keys to values; string values are read as YAML scalars ("false" -> False).
    """
    label: str | None = None
    if isinstance(source, Mapping):
        data: object = copy.deepcopy(dict(source))
    else:
        label = str(source)
        data = _read_yaml(Path(source))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(
            Problem("<root>", type(data).__name__, "a mapping of keys to values"), source=label
        )
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, _scalar(value), label)
    try:
        params = Parameters.model_validate(data)
    except _ValidationError as e:
        raise ParameterError(problems_from_validation_error(e, Parameters), source=label) from None
    problems = cross_checks(params)
    if problems:
        raise ParameterError(problems, source=label)
    return params


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ParameterError(
            Problem("<file>", str(path), "a readable YAML file", f"cannot read: {e.strerror}")
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = getattr(e, "problem", None) or str(e)
        raise ParameterError(
            Problem(f"<yaml {where}>", None, "valid YAML", f"YAML syntax error: {what}"),
            source=str(path),
        ) from None


def _scalar(value: object) -> object:
    # CLI/papermill overrides arrive as strings; read them the way YAML would.
    if isinstance(value, str):
        try:
            return yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            return value
    return value


def _set_dotted(data: dict[str, object], key: str, value: object, label: str | None) -> None:
    parts = key.split(".")
    node: object = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, dict):
            if last:
                node[part] = value
                return
            node = node.setdefault(part, {})
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        else:
            raise ParameterError(
                Problem(where, key, "a dotted key naming an existing mapping or list item"),
                source=label,
            )
