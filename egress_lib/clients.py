"""Connect to the target: Kubernetes API clients plus the VPC, SLB, CS, MSE and RAM SDK clients.

The sandbox is found only through the files it writes (``sandbox.json``, ``kubeconfig``),
the same way a real cluster is found through a kubeconfig and a credential chain. Every client
retries under one :class:`~egress_lib.retry.RetryPolicy` (deadline
``timeouts.api_retry_seconds``): the SDK clients through :func:`egress_lib.cloud.call`, the
Kubernetes client through :class:`~egress_lib.kube_retry.RetryingApiClient`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress_lib import remedies, retry
from egress_lib.cloud import CONNECT_TIMEOUT_MS, READ_TIMEOUT_MS, register_client, retry_options
from egress_lib.endpoints import SERVICES, OpenApiService
from egress_lib.errors import TargetUnavailable
from egress_lib.parameters import Parameters
from egress_lib.retry import RetryPolicy

# Set by egress_lib.runner for the kernels it starts: every step of one run shares its ID
# (verify pod names, SNAT ClientTokens, the lock's holder).
RUN_ID_ENV = "EGRESS_RUN_ID"

SANDBOX_NOT_RUNNING = (
    "the sandbox is not running: start it with `egress-sandbox up` (or `make demo`)"
)


def mask(secretish: str | None) -> str:
    """'LTAI5tExample0000' -> 'LTAI****0000'; short or empty values are fully masked."""
    if not secretish:
        return "(none)"
    if len(secretish) < 10:
        return "****"
    return f"{secretish[:4]}****{secretish[-4:]}"


def sandbox_home(explicit: str | None = None) -> Path:
    """``explicit`` (the parameters' ``sandbox_home``), else ``$EGRESS_SANDBOX_HOME``, else
    ``~/.local/state/egress-sandbox``."""
    env = explicit or os.environ.get("EGRESS_SANDBOX_HOME")
    return Path(env) if env else Path.home() / ".local" / "state" / "egress-sandbox"


@dataclass(frozen=True)
class SandboxInfo:
    """What ``sandbox.json`` says; the secret is kept out of repr."""

    home: Path
    aliyun_endpoint: str
    kubeconfig: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    region_id: str
    cluster_id: str
    pid: int


def read_sandbox_info(home: Path | None = None) -> SandboxInfo:
    """Read and check ``sandbox.json``; a missing file or dead pid is "not running"."""
    home = home or sandbox_home()
    path = home / "sandbox.json"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetUnavailable(f"{SANDBOX_NOT_RUNNING} (no {path})") from None
    except (OSError, ValueError) as e:
        raise TargetUnavailable(f"{SANDBOX_NOT_RUNNING} (cannot read {path}: {e})") from None
    try:
        info = SandboxInfo(
            home=home,
            aliyun_endpoint=str(data["aliyun_endpoint"]),
            kubeconfig=str(data.get("kubeconfig") or home / "kubeconfig"),
            access_key_id=str(data["access_key_id"]),
            access_key_secret=str(data["access_key_secret"]),
            region_id=str(data.get("region_id") or ""),
            cluster_id=str(data.get("cluster_id") or ""),
            pid=int(data["pid"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TargetUnavailable(f"{path} is missing or has a bad key: {e}") from None
    if not _pid_alive(info.pid):
        raise TargetUnavailable(f"{SANDBOX_NOT_RUNNING} (pid {info.pid} in {path} has exited)")
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class Session:
    """Everything a step needs to talk to the target. ``repr`` never shows credentials."""

    params: Parameters
    core: Any = field(repr=False)
    networking: Any = field(repr=False)
    apps: Any = field(repr=False)
    custom: Any = field(repr=False)
    apiext: Any = field(repr=False)
    authz: Any = field(repr=False)
    api_client: Any = field(repr=False)
    vpc: Any = field(repr=False)
    slb: Any = field(repr=False)
    cs: Any = field(repr=False)
    mse: Any = field(repr=False)
    ram: Any = field(repr=False)
    target_description: str = ""
    # Where the OpenAPI credentials come from (no secret): errors about them name it.
    credential_source: str = ""
    # One ID per run: from the runner, or a new one per session (interactive use).
    run_id: str = field(default_factory=lambda: new_run_id())
    # How every API call of this session is retried (deadline timeouts.api_retry_seconds).
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy, repr=False)

    @property
    def short_run_id(self) -> str:
        """The random part of the run ID (6 hex digits), for object names."""
        return self.run_id.rsplit("-", 1)[-1]

    def __repr__(self) -> str:
        return f"Session({self.target_description})"

    def close(self) -> None:
        """Close the Kubernetes connection pool."""
        close = getattr(self.api_client, "close", None)
        if callable(close):
            close()


def new_run_id() -> str:
    """``<UTC %Y%m%dT%H%M%SZ>-<6 hex>``, or the runner's ID from ``$EGRESS_RUN_ID``."""
    env = os.environ.get(RUN_ID_ENV)
    if env:
        return env
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def default_chain_source(env: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """Which provider of the default credential chain will answer, without asking it.

    Follows alibabacloud-credentials' order (env, RRSA, CLI profile, INI file, ECS RAM role);
    names files, profiles and masked IDs only. The SDK reads its variables at import time, so
    a variable set later in the process may be seen here but not there.
    """
    env = os.environ if env is None else env
    home = home or Path.home()
    if env.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        sts = " and ALIBABA_CLOUD_SECURITY_TOKEN" if env.get("ALIBABA_CLOUD_SECURITY_TOKEN") else ""
        return (
            f"the environment variables ALIBABA_CLOUD_ACCESS_KEY_ID "
            f"({mask(env['ALIBABA_CLOUD_ACCESS_KEY_ID'])}), ALIBABA_CLOUD_ACCESS_KEY_SECRET{sts}"
        )
    rrsa = (
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    )
    if all(env.get(k) for k in rrsa):
        return f"RRSA (OIDC): role {env['ALIBABA_CLOUD_ROLE_ARN']}, token file {env[rrsa[2]]}"
    cli = home / ".aliyun" / "config.json"
    if env.get("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "").lower() != "true" and cli.is_file():
        profile, mode = _cli_profile(cli, env.get("ALIBABA_CLOUD_PROFILE"))
        return f"the Alibaba Cloud CLI profile {profile!r} (mode {mode}) in {cli}"
    ini = Path(
        env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") or home / ".alibabacloud" / "credentials.ini"
    )
    if ini.is_file():
        return (
            f"the credentials file {ini}, section {env.get('ALIBABA_CLOUD_PROFILE') or 'default'!r}"
        )
    if env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "").lower() != "true":
        role = env.get("ALIBABA_CLOUD_ECS_METADATA")
        return f"the ECS instance RAM role{' ' + role if role else ''} (instance metadata)"
    return (
        "the default credential chain, which found nothing (no ALIBABA_CLOUD_ACCESS_KEY_ID, "
        "no CLI profile, no credentials file)"
    )


def cli_profile_source(profile: str, home: Path | None = None) -> str:
    """The parameters' ``profile``, described as :func:`default_chain_source` does."""
    cli = (home or Path.home()) / ".aliyun" / "config.json"
    if not cli.is_file():
        return f"the Alibaba Cloud CLI profile {profile!r}, but there is no {cli}"
    name, mode = _cli_profile(cli, profile)
    return f"the Alibaba Cloud CLI profile {name!r} (mode {mode}) in {cli}"


def _cli_profile(path: Path, wanted: str | None) -> tuple[str, str]:
    # Only the profile's name and mode are read out: the file also holds secrets.
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return wanted or "?", "unreadable file"
    name = str(wanted or data.get("current") or "default")
    for profile in data.get("profiles") or []:
        if isinstance(profile, dict) and profile.get("name") == name:
            return name, str(profile.get("mode") or "?")
    return name, "not in the file"


def _missing_context(kubeconfig: str | None, context: str | None) -> TargetUnavailable | None:
    """A TargetUnavailable naming the contexts the file has, when ``context`` is not one."""
    from kubernetes import config as _k8s_config

    k8s_config: Any = _k8s_config
    if not context:
        return None
    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        found, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # noqa: BLE001 - unreadable file: the loader's own error says why
        return None
    names = [str(c.get("name")) for c in found or [] if isinstance(c, dict)]
    if context in names:
        return None
    current = str(active.get("name")) if isinstance(active, dict) else None
    return TargetUnavailable(
        f"kube_context {context!r} is not a context of {where}; it has: "
        f"{', '.join(names) or 'none'} (current: {current or 'none'})",
        remedy=remedies.kube_context_missing(context, where, names, current),
    )


def openapi_clients(params: Parameters, common: Mapping[str, Any]) -> dict[OpenApiService, Any]:
    """The VPC, SLB, CS, MSE and RAM SDK clients; building them makes no API call.

    ``common`` holds the Config keys every client shares (region, timeouts, credentials and,
    for the sandbox, its one endpoint). For target aliyun ``params.endpoints`` overrides a
    client's endpoint; the others keep the SDK's own choice: regional (VPC, CS, MSE), mostly
    central (SLB) or global (RAM), from the SDK's endpoint map.
    """
    from alibabacloud_cs20151215.client import Client as CsClient
    from alibabacloud_mse20190531.client import Client as MseClient
    from alibabacloud_ram20150501.client import Client as RamClient
    from alibabacloud_slb20140515.client import Client as SlbClient
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vpc20160428.client import Client as VpcClient

    classes: dict[OpenApiService, Any] = {
        "vpc": VpcClient,
        "slb": SlbClient,
        "cs": CsClient,
        "mse": MseClient,
        "ram": RamClient,
    }
    # The parameters refuse endpoints for the sandbox; checked again so a hand-built
    # Parameters cannot send the sandbox's AccessKey to a real endpoint.
    overrides = params.endpoints.overrides() if params.target == "aliyun" else {}
    out: dict[OpenApiService, Any] = {}
    for service in SERVICES:
        keys = dict(common)
        if service in overrides:
            keys["endpoint"] = overrides[service]
        # One Config per client: the SDK clients keep a reference and may adjust it.
        out[service] = classes[service](Config(**keys, retry_options=retry_options()))
    return out


def kube_api_client(kubeconfig: str | None, context: str | None, policy: RetryPolicy) -> Any:
    """A Kubernetes ApiClient for ``kubeconfig``/``context`` whose requests ``policy`` retries.

    What ``kubernetes.config.new_client_from_config`` does, with our client class.
    """
    from kubernetes import client as k8s
    from kubernetes import config as _k8s_config

    from egress_lib.kube_retry import RetryingApiClient

    k8s_config: Any = _k8s_config  # the loader is not annotated
    configuration = type.__call__(k8s.Configuration)  # not a copy of the process default
    k8s_config.load_kube_config(
        config_file=kubeconfig,
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    return RetryingApiClient(configuration, policy)


def connect(params: Parameters, *, retry_policy: RetryPolicy | None = None) -> Session:
    """Build the clients for ``params.target``; no API call is made here.

    ``retry_policy`` replaces the one the parameters give (tests use short backoffs).
    """
    from kubernetes import client as k8s

    policy = retry_policy or retry.policy_for(params)

    common: dict[str, Any] = {
        "region_id": params.region_id,
        "connect_timeout": CONNECT_TIMEOUT_MS,
        "read_timeout": READ_TIMEOUT_MS,
    }
    kubeconfig: str | None
    if params.target == "sandbox":
        info = read_sandbox_info(sandbox_home(params.sandbox_home))
        kubeconfig = params.kubeconfig or info.kubeconfig
        common |= {
            "access_key_id": info.access_key_id,
            "access_key_secret": info.access_key_secret,
            "endpoint": info.aliyun_endpoint,
            "protocol": "http",
        }
        cloud_text = f"OpenAPI http://{info.aliyun_endpoint}, AccessKey {mask(info.access_key_id)}"
        source = (
            f"the sandbox's AccessKey {mask(info.access_key_id)} from {info.home / 'sandbox.json'}"
        )
    else:
        from alibabacloud_credentials.client import Client as CredentialClient

        kubeconfig = params.kubeconfig  # None = the client's default location
        if params.profile is not None:
            # One CLI profile, whatever the environment says: a fleet run gives each cluster
            # its own, and ALIBABA_CLOUD_PROFILE is read only once, at the SDK's import.
            from alibabacloud_credentials.provider import CLIProfileCredentialsProvider

            provider = CLIProfileCredentialsProvider(profile_name=params.profile)
            common["credential"] = CredentialClient(provider=provider)
        else:
            # The default chain: env vars, ~/.aliyun/config.json, ECS RAM role, RRSA (OIDC).
            common["credential"] = CredentialClient()
        overrides = params.endpoints.overrides()
        named = ", ".join(f"{k} {v}" for k, v in overrides.items())
        cloud_text = (
            f"OpenAPI endpoints {named} (the others the SDK's default)"
            if overrides
            else "OpenAPI default endpoints"
        ) + (
            f", credentials of the CLI profile {params.profile!r}"
            if params.profile is not None
            else ", credentials from the default chain"
        )
        source = (
            cli_profile_source(params.profile)
            if params.profile is not None
            else default_chain_source()
        )

    try:
        api_client = kube_api_client(kubeconfig, params.kube_context, policy)
    except Exception as e:  # noqa: BLE001 - the loader raises ConfigException, OSError, YAML errors
        missing = _missing_context(kubeconfig, params.kube_context)
        if missing is not None:
            raise missing from None
        where = kubeconfig or "the default kubeconfig"
        raise TargetUnavailable(f"cannot load Kubernetes config from {where}: {e}") from None
    host = getattr(api_client.configuration, "host", "?")
    ctx = params.kube_context or "current context"
    description = (
        f"target={params.target} region={params.region_id} cluster={params.cluster_id}; "
        f"Kubernetes {host} ({ctx}); {cloud_text}"
    )
    clients = openapi_clients(params, common)
    vpc, slb, cs, mse, ram = (clients[s] for s in SERVICES)
    for client in clients.values():
        register_client(client, source, policy)
    return Session(
        params=params,
        core=k8s.CoreV1Api(api_client),
        networking=k8s.NetworkingV1Api(api_client),
        apps=k8s.AppsV1Api(api_client),
        custom=k8s.CustomObjectsApi(api_client),
        apiext=k8s.ApiextensionsV1Api(api_client),
        authz=k8s.AuthorizationV1Api(api_client),
        api_client=api_client,
        vpc=vpc,
        slb=slb,
        cs=cs,
        mse=mse,
        ram=ram,
        target_description=description,
        credential_source=source,
        retry_policy=policy,
    )
