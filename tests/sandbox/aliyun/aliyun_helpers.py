"""Shared helpers of the emulated-OpenAPI tests (a unique module name: tests have no packages)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_slb20140515.client import Client as SlbClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from egress_sandbox.aliyun.records import CloudState
from egress_sandbox.aliyun.server import OpenApiServer
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.ids import IdFactory
from egress_sandbox.topology import Topology, Transition, Transitions

REGION = "cn-hangzhou"


@dataclass
class RecordingHooks:
    """CloudHooks that remember every call, in order."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail_install: bool = False

    def addon_installing(self, cluster_id: str, name: str, version: str, config: str) -> None:
        self.calls.append(("installing", cluster_id, name, version, config))

    def addon_installed(self, cluster_id: str, name: str, version: str, config: str) -> None:
        self.calls.append(("installed", cluster_id, name, version, config))
        if self.fail_install:
            raise RuntimeError("controller broke")

    def addon_uninstalled(self, cluster_id: str, name: str) -> None:
        self.calls.append(("uninstalled", cluster_id, name))

    def kubeconfig(self, cluster_id: str) -> str:
        return f"apiVersion: v1\nkind: Config\n# {cluster_id}\n"


@dataclass
class World:
    topology: Topology
    cloud: CloudState
    lock: threading.RLock
    ids: IdFactory
    hooks: RecordingHooks
    audit: AuditLog
    server: OpenApiServer
    resumed_at: float = 0.0  # time.monotonic() when server.resume() ran

    def config(
        self,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        **extra: Any,
    ) -> open_api_models.Config:
        return open_api_models.Config(
            access_key_id=(self.topology.access_key_id if access_key_id is None else access_key_id),
            access_key_secret=(
                self.topology.access_key_secret if access_key_secret is None else access_key_secret
            ),
            security_token=security_token,
            endpoint=self.server.endpoint,
            protocol="http",
            region_id=REGION,
            read_timeout=10000,
            connect_timeout=5000,
            **extra,
        )

    def vpc(self, **kw: Any) -> VpcClient:
        return VpcClient(self.config(**kw))

    def slb(self, **kw: Any) -> SlbClient:
        return SlbClient(self.config(**kw))

    def cs(self, **kw: Any) -> CsClient:
        return CsClient(self.config(**kw))

    @property
    def nat(self) -> Any:
        return next(iter(self.cloud.nat_gateways.values()))

    def vswitch(self, name: str) -> Any:
        return next(v for v in self.cloud.vswitches.values() if v.vswitch_name == name)

    @property
    def cluster_id(self) -> str:
        return next(iter(self.cloud.clusters))

    def gateway_lb(
        self,
        name: str,
        address: str,
        *,
        address_type: str = "intranet",
        tags: dict[str, str] | None = None,
        listeners: tuple[tuple[int, str], ...] = (),
    ) -> Any:
        """An active slb.s2.small CLB in the gateway vSwitch (as the MSE controller inserts it),
        with ``(port, protocol)`` listeners; the caller holds ``lock``."""
        from egress_sandbox.aliyun.slb import models as slb

        gw = self.vswitch("gateway")
        lb = slb.create_load_balancer(
            self.cloud,
            self.ids,
            name=name,
            vpc_id=gw.vpc_id,
            vswitch_id=gw.vswitch_id,
            spec="slb.s2.small",
            address_type=address_type,
            address=address,
            tags=tags,
        )
        for port, protocol in listeners:
            slb.add_listener(self.cloud, lb.load_balancer_id, port=port, protocol=protocol)
        return lb


def fast_transitions(mode: str = "timed") -> Transitions:
    t = Transition(mode=mode, seconds=0.05)  # type: ignore[arg-type]
    return Transitions(snat_entry=t, nat_gateway=t, addon_install=t, mse_gateway=t)


def utc_date(offset_seconds: float = 0) -> str:
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_acs3(
    *,
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    access_key_id: str,
    secret: str,
) -> dict[str, str]:
    """Sign by hand, straight from the reference recipe (D4), independent of the emulator code."""
    hashed = hashlib.sha256(body).hexdigest()
    all_headers = {k.lower(): v for k, v in headers.items()}
    all_headers["host"] = host
    all_headers["x-acs-content-sha256"] = hashed
    canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(query.items()))
    names = sorted(all_headers)
    canonical_headers = "".join(f"{n}:{all_headers[n].strip()}\n" for n in names)
    signed_headers = ";".join(names)
    canonical = (
        f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{hashed}"
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    all_headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed_headers},"
        f"Signature={signature}"
    )
    return all_headers


def rpc_headers(action: str, version: str = "2016-04-28", **overrides: str) -> dict[str, str]:
    headers = {
        "accept": "application/json",
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": utc_date(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
    }
    headers.update(overrides)
    return headers


def send(
    world: World,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes = b"",
) -> tuple[int, dict[str, Any]]:
    """Send over plain http.client, with the query encoded the way the SDK encodes it."""
    conn = http.client.HTTPConnection("127.0.0.1", world.server.port, timeout=10)
    try:
        url = path + ("?" + urlencode(query) if query else "")
        conn.request(method, url, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


# --- what a real client sees of an error ----------------------------------------------------

POP_ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}
CS_ERROR_KEYS = {"code", "message", "requestId"}


def assert_pop_error(
    e: Any, code: str, status: int, *, extra: frozenset[str] = frozenset()
) -> None:
    """A gateway/RPC error as the SDK surfaces it: code, status, its message format, the body.

    The SDK formats ``message`` as ``code: <status>, <Message> request id: <RequestId>`` and
    keeps the whole body (plus ``statusCode``) in ``data`` (alibabacloud_tea_openapi's error
    handling).
    """
    assert (e.code, e.status_code) == (code, status), (e.code, e.status_code, e.message)
    assert e.message.startswith(f"code: {status}, ")
    assert e.message.endswith(f" request id: {e.request_id}")
    assert set(e.data) == POP_ERROR_KEYS | {"statusCode"} | extra, set(e.data)
    assert e.data["RequestId"] == e.request_id and e.data["Code"] == code
    assert e.data["Recommend"].startswith(f"https://api.aliyun.com/troubleshoot?q={code}&")


def assert_cs_error(e: Any, code: str, status: int) -> None:
    """A CS business error: lower-case body ``{code, message, requestId}``."""
    assert (e.code, e.status_code) == (code, status), (e.code, e.status_code, e.message)
    assert e.message.startswith(f"code: {status}, ")
    assert e.message.endswith(f" request id: {e.request_id}")
    assert set(e.data) == CS_ERROR_KEYS | {"statusCode"}, set(e.data)
    assert e.data["requestId"] == e.request_id and e.data["code"] == code


def rpc_call(
    world: World,
    action: str,
    query: dict[str, str],
    *,
    version: str = "2016-04-28",
    **config: Any,
) -> dict[str, Any]:
    """An RPC call through the SDK's generic ``call_api``: the raw body, headers and status."""
    from alibabacloud_tea_openapi.client import Client as OpenApiClient
    from alibabacloud_tea_util.models import RuntimeOptions

    client = OpenApiClient(world.config(**config))
    params = open_api_models.Params(
        action=action,
        version=version,
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = open_api_models.OpenApiRequest(query=query)
    return client.call_api(params, request, RuntimeOptions())  # type: ignore[no-any-return]


def wait_until(predicate: Any, timeout: float = 3.0, step: float = 0.01) -> float:
    """Poll ``predicate`` until true; return the seconds it took (fails after ``timeout``)."""
    import time

    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(step)
    return time.monotonic() - started
