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
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic import ValidationError as _ValidationError

from egress_lib import parameter_file
from egress_lib.endpoints import Endpoints
from egress_lib.errors import ParameterError, Problem
from egress_lib.parameter_overrides import apply_override
from egress_lib.policies import EchoUrl, IpAccess, Policies
from egress_lib.policy_checks import policy_notes
from egress_lib.validation_messages import (
    NEAR_CUTOFF,
    credential_problem,
    cross_checks,
    pop_credentials,
    problems_from_validation_error,
)
from egress_lib.validators import (
    ADOPTABLE_KINDS,
    AdoptRef,
    ClusterId,
    DnsLabel,
    DnsSubdomain,
    EipAddress,
    Host,
    HttpPath,
    NatGatewayId,
    RegionId,
    ServerName,
    VSwitchId,
    looks_like_credential,
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

    config_name: DnsSubdomain = Field(
        default="egress-gateway", description="metadata.name of the MseIngressConfig"
    )
    name: StrictStr = Field(
        default="egress-gateway",
        min_length=1,
        max_length=64,
        description="spec.name: the gateway's name in the MSE console",
    )
    ingress_class: DnsSubdomain = Field(
        default="mse",
        description="IngressClass bound to the MseIngressConfig; keep 'mse' (without it the "
        "add-on creates a default internet-facing gateway)",
    )
    spec: GatewaySpec = Field(default="2c4g", description="gateway node spec")
    replicas: StrictInt = Field(
        default=3, ge=0, le=30, description="gateway nodes, 0..30 (2 or more recommended)"
    )
    vswitches: list[VSwitchId] = Field(
        min_length=1,
        max_length=2,
        description="1 or 2 dedicated vSwitch IDs (primary first) in the cluster's VPC; the "
        "SNAT entry is added for these",
    )
    private_slb_spec: SlbSpec = Field(
        default="slb.s2.small", description="spec of the internal CLB in front of the gateway"
    )
    ip_access_control: IpAccess | None = Field(
        default=None,
        description="gateway-wide allow and deny lists of source addresses "
        "(spec.global.ipAccessControl); null: none",
    )


class Snat(_Model):
    """Where the gateway's SNAT entries go; nulls are discovered from the VPC."""

    nat_gateway_id: NatGatewayId | None = Field(
        default=None, description="Internet NAT gateway of the VPC; null: the only one"
    )
    snat_ip: EipAddress | None = Field(
        default=None, description="EIP of that NAT gateway as source; null: chosen by UsingStatus"
    )
    entry_name: StrictStr = Field(
        default="egress-gateway",
        min_length=2,
        max_length=128,
        description="SnatEntryName of the entries the runbook creates",
    )


class Destination(_Model):
    """One external domain reached through the gateway."""

    name: DnsLabel = Field(description="name of the ExternalName Service")
    host: Host = Field(description="external domain; also the Ingress rule's host")
    port: StrictInt = Field(ge=1, le=65535, description="backend port: 80 HTTP, normally 443 HTTPS")
    path: HttpPath = Field(default="/", description="Ingress rule path, starting with '/'")
    path_type: PathType = Field(default="Prefix", description="Ingress rule pathType")
    backend_protocol: BackendProtocol = Field(
        default="HTTP", description="protocol from the gateway to the destination"
    )
    ingress_name: DnsSubdomain | None = Field(
        default=None,
        description="Ingress of this rule; destinations sharing it form one Ingress; "
        "null: the destination's name",
    )
    sni: ServerName | None = Field(
        default=None,
        description="TLS server name sent to the destination (HTTPS only; proxy-ssl-name "
        "annotation); null: none",
    )
    upstream_vhost: ServerName | None = Field(
        default=None,
        description="Host header sent to the destination (upstream-vhost annotation); "
        "null: the request's own",
    )

    policies: Policies = Field(
        default_factory=Policies,
        description="layer-7 policies of this destination (IP lists, throttling, load "
        "balancing, TLS, mirroring, headers, timeouts and retries); empty: none",
    )

    @property
    def ingress(self) -> str:
        """The Ingress this destination's rule lives in."""
        return self.ingress_name or self.name


class Verify(_Model):
    """How the test pod reaches each destination through the gateway."""

    image: StrictStr = Field(
        default="registry-vpc.{region_id}.aliyuncs.com/egress-runbook/curl:8.10.1",
        min_length=1,
        description="image of the test pod; must contain curl; {region_id} becomes region_id "
        "(ACR's VPC endpoint: nodes pull it without internet)",
    )
    timeout_seconds: StrictInt = Field(
        default=60, ge=1, le=3600, description="curl --max-time per destination"
    )
    echo_url: EchoUrl | None = Field(
        default=None,
        description="URL, through the gateway, of an endpoint that answers with the caller's "
        "address (its host must be a destination's); null: read the address from each "
        "destination's answer where it has one, else skip the egress address check",
    )


class Timeouts(_Model):
    """Deadlines, in seconds, for the long waits."""

    controller_seconds: StrictInt = Field(
        default=600, ge=1, le=86400, description="add-on install and controller Deployment"
    )
    gateway_seconds: StrictInt = Field(
        default=900, ge=1, le=86400, description="MseIngressConfig reaching Listening"
    )
    snat_seconds: StrictInt = Field(
        default=300, ge=1, le=86400, description="SNAT entries becoming Available"
    )
    ingress_status_seconds: StrictInt = Field(
        default=300, ge=1, le=86400, description="Ingress status getting the CLB address"
    )
    api_retry_seconds: StrictInt = Field(
        default=120,
        ge=1,
        le=3600,
        description="retrying one throttled or failing API call (cloud and Kubernetes)",
    )


class Controller(_Model):
    """The MSE Ingress Controller add-on; version null = the latest the cluster offers."""

    addon_name: StrictStr = Field(
        default="mse-ingress-controller", min_length=1, description="name of the ACK add-on"
    )
    version: StrictStr | None = Field(
        default=None, description="add-on version; null: the latest the cluster offers"
    )


# The sandbox has one region, so region_id may be left out for target sandbox (the model
# fills it in); for target aliyun it is required.
SANDBOX_REGION_ID = "cn-hangzhou"


class Parameters(_Model):
    """Schema v1 of the runbook parameters. The only place defaults live."""

    schema_version: Literal[1] = Field(
        default=1, description="version of this schema; 1 is the only one"
    )
    cluster_name: DnsLabel = Field(
        description="names the runs and their folders runs/<cluster_name>/; a DNS-1123 label"
    )
    target: Literal["sandbox", "aliyun"] = Field(
        default="sandbox",
        description="sandbox (the offline emulation) or aliyun (Alibaba Cloud and the "
        "cluster's API server)",
    )
    # Declared without a default so it is a str once validated; _sandbox_region fills it in
    # for the sandbox, so only target aliyun must give it.
    region_id: RegionId = Field(
        description="region of the cluster, VPC and NAT gateway; required for target aliyun, "
        f"{SANDBOX_REGION_ID} for the sandbox",
    )
    cluster_id: ClusterId = Field(
        description="ACK cluster ID: 'c' followed by 32 lowercase hex digits"
    )
    kubeconfig: StrictStr | None = Field(
        default=None,
        description="kubeconfig file; null: $KUBECONFIG or ~/.kube/config (the sandbox's own "
        "for target sandbox)",
    )
    kube_context: StrictStr | None = Field(
        default=None, description="kubeconfig context; null: its current context"
    )
    profile: StrictStr | None = Field(
        default=None,
        description="target aliyun: the Alibaba Cloud CLI profile (~/.aliyun/config.json) "
        "whose credentials the runbook uses; null: the default credential chain",
    )
    sandbox_home: StrictStr | None = Field(
        default=None,
        description="target sandbox: the folder of the sandbox to use (its sandbox.json); "
        "null: $EGRESS_SANDBOX_HOME or ~/.local/state/egress-sandbox",
    )
    endpoints: Endpoints = Field(
        default_factory=Endpoints,
        description="OpenAPI host names (vpc, slb, cs, mse, ram) for target aliyun, e.g. VPC "
        "endpoints; null: the SDK's default",
    )
    namespace: DnsLabel = Field(
        default="default",
        description="namespace of the ExternalName Services, Ingresses and test pods",
    )
    gateway: Gateway = Field(
        description="the MSE gateway (MseIngressConfig, internal CLB only) and its IngressClass; "
        "vswitches is required"
    )
    snat: Snat = Field(
        default_factory=Snat,
        description="SNAT entry for the gateway's vSwitches; null IDs are found in the VPC",
    )
    destinations: list[Destination] = Field(
        min_length=1,
        description="external domains reached through the gateway: one ExternalName Service "
        "and one Ingress rule each",
    )
    verify: Verify = Field(
        default_factory=Verify,
        description="the test pod that curls each destination through the gateway",
    )
    timeouts: Timeouts = Field(
        default_factory=Timeouts, description="deadlines of the long waits, in seconds"
    )
    controller: Controller = Field(
        default_factory=Controller, description="the MSE Ingress Controller add-on"
    )
    adopt: list[AdoptRef] = Field(
        default_factory=list,
        description="objects the runbook may take over although it did not create them: "
        "Kind/name, Kind one of " + ", ".join(ADOPTABLE_KINDS),
    )
    approve: StrictBool = Field(
        default=False,
        description="false: only show the plans and change nothing; true: apply exactly the "
        "plans shown",
    )

    @model_validator(mode="before")
    @classmethod
    def _sandbox_region(cls, data: Any) -> Any:
        # A real cluster's region is never guessed: without it, target aliyun fails as a
        # missing region_id, reported with every other problem.
        if (
            isinstance(data, dict)
            and data.get("region_id") is None
            and data.get("target", "sandbox") != "aliyun"
        ):
            return {**data, "region_id": SANDBOX_REGION_ID}
        return data

    @model_validator(mode="after")
    def _absolute_sandbox_home(self) -> Parameters:
        # Absolute once validated: the notebooks run in another folder than the CLI.
        if self.sandbox_home is not None and self.sandbox_home.strip():
            home = str(Path(self.sandbox_home).expanduser().resolve())
            object.__setattr__(self, "sandbox_home", home)
        return self

    @model_validator(mode="after")
    def _image_region(self) -> Parameters:
        # The default image sits in the cluster region's VPC registry.
        if "{region_id}" in self.verify.image:
            image = self.verify.image.replace("{region_id}", self.region_id)
            object.__setattr__(self, "verify", self.verify.model_copy(update={"image": image}))
        return self

    def ingress_groups(self) -> dict[str, list[Destination]]:
        """Destinations grouped by the Ingress they share, in first-seen order."""
        groups: dict[str, list[Destination]] = {}
        for dest in self.destinations:
            groups.setdefault(dest.ingress, []).append(dest)
        return groups

    def has_policies(self) -> bool:
        """Whether any destination or the gateway declares a layer-7 policy."""
        return self.gateway.ip_access_control is not None or any(
            d.policies.declared() for d in self.destinations
        )

    def adopts(self, kind: str, name: str) -> bool:
        """Whether ``adopt:`` lists ``Kind/name``: the runbook may take that object over."""
        return f"{kind}/{name}" in self.adopt

    def to_injectable(self) -> dict[str, object]:
        """Every key with its validated value, defaults filled in, as JSON-compatible data.

        This is what the runner injects into every notebook: a notebook then sees exactly
        the values that were validated, never its own parameters cell's.
        """
        return dict(self.model_dump(mode="json"))

    @property
    def notes(self) -> list[str]:
        """Things that are valid but unusual, worth showing to the operator."""
        out = []
        for i, d in enumerate(self.destinations):
            if d.backend_protocol == "HTTPS" and d.port != 443:
                out.append(f"destinations[{i}].port is {d.port}; HTTPS backends normally use 443")
            if d.backend_protocol == "HTTP" and d.port == 443:
                out.append(f"destinations[{i}].port is 443 with backend_protocol HTTP")
        return out + policy_notes(self)

    @classmethod
    def from_namespace(cls, ns: Mapping[str, object]) -> Parameters:
        """Build from a notebook's ``globals()``.

        Under papermill (an injected cell in IPython's input history ``In``) only the names
        papermill injected count: a key it did not inject takes the schema's default, a
        required one is an error, and the notebook's parameters cell is ignored. Without an
        injected cell (interactive JupyterLab) the parameters cell's values are used.
        An injected name the schema does not know (a typo in the parameters file), or one
        that looks like a credential, is an error too.
        """
        history = ns.get("In")
        cells = _injected_cells(history) if isinstance(history, list) else []
        if not cells:
            picked = {k: ns[k] for k in cls.model_fields if k in ns}
            return _validate(picked, {}, "the notebook's parameters cell")
        names = _assigned_names(cells)
        problems: list[Problem] = []
        for name in sorted(names - set(cls.model_fields)):
            if looks_like_credential(name):
                problems.append(credential_problem(name))
                continue
            near = difflib.get_close_matches(name, list(cls.model_fields), n=1, cutoff=NEAR_CUTOFF)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problem = f"{name!r} is not a parameter of schema v1"
            problems.append(Problem(name, ns.get(name), f"one of the known keys{hint}", problem))
        if problems:
            raise ParameterError(problems, source=INJECTED)
        picked = {k: ns[k] for k in cls.model_fields if k in names and k in ns}
        return _validate(picked, {}, INJECTED)


INJECTED = "the injected parameters"


def _injected_cells(history: list[object]) -> list[str]:
    """Sources of papermill's injected cells: their first line is exactly "# Parameters".

    (The notebook's own parameters cell starts with a different comment.)
    """
    out = []
    for src in history:
        if isinstance(src, str):
            lines = src.lstrip().splitlines()
            if lines and lines[0].strip() == "# Parameters":
                out.append(src)
    return out


def _assigned_names(sources: list[str]) -> set[str]:
    names: set[str] = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def _injected_names(history: list[object]) -> set[str]:
    """Names assigned in papermill's injected cell (its first line is "# Parameters")."""
    return _assigned_names(_injected_cells(history))


def load_parameters(
    source: str | os.PathLike[str] | Mapping[str, object],
    overrides: Mapping[str, object] | None = None,
) -> Parameters:
    """Load and validate parameters from a YAML file or a mapping.

    ``overrides`` maps dotted keys ("gateway.replicas", "destinations.0.port") or
    top-level keys to values; string values are read as YAML scalars ("false" -> False).
    Schema defaults, the file and the overrides are validated together; every problem is
    reported at once. A key that looks like a credential is refused, its value never shown.
    """
    label: str | None = None
    if isinstance(source, Mapping):
        data: object = copy.deepcopy(dict(source))
    else:
        label = str(source)
        data = _read_yaml(Path(source))
    if data is None and label is not None and not overrides:
        # Reported as itself, not as the four required keys it lacks.
        raise ParameterError(
            Problem(
                "<root>",
                None,
                f"a YAML mapping of the parameters ({_TEMPLATES})",
                "the file holds no YAML document (it is empty or only comments)",
            ),
            source=label,
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = {"list": "a list", "str": "a string"}.get(type(data).__name__, type(data).__name__)
        raise ParameterError(
            Problem(
                "<root>",
                data,
                f"a mapping of keys to values ({_TEMPLATES})",
                f"the document is {kind}, not a mapping",
            ),
            source=label,
        )
    return _validate(data, overrides or {}, label)


_TEMPLATES = "parameters/sandbox.yaml and parameters/example-ack.yaml are templates"


def _validate(
    data: dict[str, object], overrides: Mapping[str, object], label: str | None
) -> Parameters:
    problems = pop_credentials(data)
    for key, value in overrides.items():
        problems.extend(apply_override(data, str(key), value, Parameters))
    try:
        params = Parameters.model_validate(data)
    except _ValidationError as e:
        problems.extend(problems_from_validation_error(e, Parameters))
        raise ParameterError(problems, source=label) from None
    problems.extend(cross_checks(params))
    if problems:
        raise ParameterError(problems, source=label)
    return params


def _read_yaml(path: Path) -> object:
    return parameter_file.read(path)
