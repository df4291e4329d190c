"""A bounded fuzz of the sandbox's three HTTP servers (loopback only, one fixed seed).

A few hundred random requests (methods, paths, queries, headers, bodies of JSON, YAML and
garbage up to beyond each server's size limit, and malformed HTTP) go to the Kubernetes API
(with the admin token, the read-only token and none), the cloud OpenAPI (signed and not) and
the control endpoint of one sandbox. Every answer must be a 2xx or 4xx whose body is JSON in
that service's own shape (or the connection closes without one); never a 5xx, an HTML page, a
hang or a crash. Afterwards the servers still answer normal requests, every list (as JSON and
as kubectl's Table) still works, and the process's memory grew by a bounded amount.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
import pytest
import yaml
from alibabacloud_vpc20160428 import models as vpc_models
from kubernetes import client as k8s
from raw_http import Reply, exchange, request_bytes
from sandbox_clients import kube, vpc
from sandbox_env import sandbox_home

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 48
REQUESTS_PER_SERVER = 200
NAMESPACE = "fuzz"  # every authenticated write of the fuzz stays in here (or is a dry run)
K8S_LIMIT = 3 * 1024 * 1024
OPENAPI_LIMIT = 1024 * 1024
CONTROL_LIMIT = 64 * 1024
RSS_GROWTH_LIMIT = 256 * 1024 * 1024
POP_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}
CS_KEYS = {"code", "message", "requestId"}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_home(tmp_path_factory.mktemp("fuzz-home"), 48) as sandbox:
        yield sandbox


# ---- what a request and its answer look like ---------------------------------------------------


@dataclass
class Sent:
    label: str
    data: bytes | list[bytes]


def _too_big(limit: int) -> list[bytes]:
    """A chunked body a little over ``limit``, sent in 64 KiB chunks (never held whole)."""
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return [chunk] * (limit // len(piece) + 4) + [b"0\r\n\r\n"]


class Fuzzer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, items: list[Any] | tuple[Any, ...]) -> Any:
        return items[self.rng.randrange(len(items))]

    def text(self, n: int = 12) -> str:
        alphabet = "abcXYZ019-_.~/%?&=:;*'\"<>{}[] \t\u00e9\u4e2d"
        return "".join(self.pick(alphabet) for _ in range(self.rng.randint(0, n)))

    def scalar(self) -> Any:
        return self.pick(
            [
                None,
                True,
                False,
                0,
                -1,
                2**31,
                2**63,
                1.5,
                "",
                "nope",
                self.text(),
                "2026-12-01T10:00:00Z",
                "80",
                "100m",
                "!!notbase64",
                "aGVsbG8=",
            ]
        )

    def value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth > 3 or roll < 0.45:
            return self.scalar()
        if roll < 0.7:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        keys = ["name", "port", "ports", "spec", "data", "labels", "metadata", "type", "items"]
        return {
            self.pick(keys) if self.rng.random() < 0.7 else self.text(6): self.value(depth + 1)
            for _ in range(self.rng.randint(0, 4))
        }

    def mutate(self, obj: Any, rate: float = 0.2) -> Any:
        """``obj`` with about ``rate`` of its values replaced by random ones."""
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                out[k] = self.value() if self.rng.random() < rate else self.mutate(v, rate)
            if self.rng.random() < rate / 2:
                out[self.text(6)] = self.value()
            return out
        if isinstance(obj, list):
            return [self.mutate(v, rate) for v in obj]
        return self.value() if self.rng.random() < rate else obj

    def body(self, valid: list[Any], limit: int) -> tuple[bytes | list[bytes], str]:
        """A body and its Content-Type: mostly near-valid objects, sometimes worse."""
        roll = self.rng.random()
        if roll < 0.5:
            return json.dumps(self.mutate(self.pick(valid))).encode(), "application/json"
        if roll < 0.6:
            return json.dumps(self.value()).encode(), self.pick(CONTENT_TYPES)
        if roll < 0.7:
            return yaml.safe_dump(self.mutate(self.pick(valid))).encode(), "application/yaml"
        if roll < 0.8:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 300))), (
                self.pick(CONTENT_TYPES)
            )
        if roll < 0.9:
            return self.pick(NASTY_BODIES), self.pick(CONTENT_TYPES)
        if roll < 0.95:
            return _too_big(limit), "application/json"
        return b"", self.pick(CONTENT_TYPES)

    def ascii(self, n: int) -> str:
        return self.text(n).encode("ascii", "replace").decode().replace("\t", " ")

    def headers(self, content_type: str) -> dict[str, str]:
        h = {"Content-Type": content_type, "Accept": self.pick(ACCEPTS)}
        if self.rng.random() < 0.2:
            h[self.ascii(8).replace(":", "").replace(" ", "") or "X"] = self.ascii(20)
        if self.rng.random() < 0.05:
            h["X-Big"] = "a" * self.rng.randint(1000, 20000)
        return {k: v.replace("\r", "").replace("\n", "") for k, v in h.items()}

    def query(self, params: list[tuple[str, list[str]]]) -> str:
        chosen = [p for p in params if self.rng.random() < 0.15]
        parts = [f"{k}={quote(self.pick(vs), safe='')}" for k, vs in chosen]
        if self.rng.random() < 0.1:
            parts.append(quote(self.text(8), safe="=&"))
        return ("?" + "&".join(parts)) if parts else ""

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | list[bytes]
    ) -> bytes | list[bytes]:
        if isinstance(body, list):  # an oversized chunked body
            head = request_bytes(method, path, headers, b"", chunked=True)
            return [head.removesuffix(b"0\r\n\r\n"), *body]
        return request_bytes(method, path, headers, body, chunked=self.rng.random() < 0.15)

    def malformed(self, *, truncated: bool = False) -> bytes:
        if truncated and self.rng.random() < 0.3:
            return bytes(self.pick(TRUNCATED))
        tail = self.ascii(20).encode() if self.rng.random() < 0.3 else b""
        return bytes(self.pick(MALFORMED)) + tail


CONTENT_TYPES = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/x-www-form-urlencoded",
    "text/html",
    ";;;",
]
ACCEPTS = [
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/vnd.kubernetes.protobuf",
    "*/*",
    "garbage/",
]
NASTY_BODIES = [
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    (
        b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        b"metadata: {name: bomb, annotations: {x: *f}}\n"
    ),
    b"a: &a [*a]\n",
    b'{"metadata": {"name": "x"}, "data": {"a": NaN}}',
    b'{"spec": {"leaseDurationSeconds": 1e999}}',
    b'{"data": {"a": "\\ud800"}}',
    b"\xff\xfe\x00{",
    b"k8s\x00\xff\xff\xff\xff\x0f",
    b"k8s\x00\n\x02v1\x12\x07Service\x1a\xff\xff\xff\xff\x0f",
    b"when: 2001-12-14\nset: !!set {a, b}\nbin: !!binary aGVsbG8=\n",
    b"[{}]",
    b'[{"op": "add", "path": "/spec/x", "value": 1}]',
    b'[{"op": "replace", "path": "/metadata/name", "value": "other"}]',
    b'[{"op": "remove", "path": "/spec"}, {"op": "test"}]',
    b"Action=DescribeVpcs&RegionId=cn-hangzhou&%ff%fe=%zz&PageSize=-1",
    b"null",
    b'"string"',
]
# Requests that end before they are complete: sent to plain servers, which then see the end of
# the stream (a half-close); the TLS server's waits for them are test_http_limits' subject.
TRUNCATED = [
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nRegionId=",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    b"GET / HTTP/1.1\r\nHost: x",
]
MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
    b"G\x00ET /\x00 HTTP/1.1\r\n\r\n",
    b"GET /%ff%fe%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
]


# ---- what each server must answer ----------------------------------------------------------


def _check(label: str, reply: Reply | None, shape: Callable[[Reply, Any], None]) -> None:
    if reply is None:
        return  # closed without an answer: allowed (oversized bodies, timeouts, resets)
    assert reply.status < 500, f"{label}: {reply.status} {reply.body[:300]!r}"
    assert 200 <= reply.status < 300 or 400 <= reply.status < 500, f"{label}: {reply.status}"
    if " HEAD " in f" {label} ":
        return  # an answer without a body
    content_type = reply.headers.get("content-type", "")
    if reply.status >= 400 or content_type.startswith("application/json"):
        assert content_type.startswith("application/json"), f"{label}: {content_type}"
        try:
            body = reply.json()
        except ValueError as exc:
            raise AssertionError(f"{label}: not JSON: {reply.body[:300]!r}") from exc
        shape(reply, body)


def _k8s_shape(reply: Reply, body: Any) -> None:
    if reply.status >= 400:
        assert body["kind"] == "Status" and body["status"] == "Failure", body
        assert body["code"] == reply.status and isinstance(body["message"], str), body
        assert isinstance(body["reason"], str), body
    else:
        assert isinstance(body, dict), body


def _pop_shape(reply: Reply, body: Any) -> None:
    if reply.status >= 400:
        assert set(body) in (POP_KEYS, POP_KEYS | {"AccessDeniedDetail"}, CS_KEYS), body
    else:
        assert isinstance(body, (dict, list)), body


def _control_shape(reply: Reply, body: Any) -> None:
    if reply.status >= 400:
        assert set(body) == {"error"} and isinstance(body["error"], str), body
    else:
        assert isinstance(body, (dict, list)), body


# ---- the three servers -----------------------------------------------------------------------

K8S_RESOURCES = [
    ("api/v1", "services", True),
    ("api/v1", "configmaps", True),
    ("api/v1", "secrets", True),
    ("api/v1", "events", True),
    ("api/v1", "serviceaccounts", True),
    ("api/v1", "pods", True),
    ("api/v1", "namespaces", False),
    ("api/v1", "nodes", False),
    ("apis/apps/v1", "deployments", True),
    ("apis/networking.k8s.io/v1", "ingresses", True),
    ("apis/networking.k8s.io/v1", "ingressclasses", False),
    ("apis/coordination.k8s.io/v1", "leases", True),
    ("apis/events.k8s.io/v1", "events", True),
    ("apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    ("apis/authorization.k8s.io/v1", "selfsubjectaccessreviews", False),
    ("apis/mse.alibabacloud.com/v1alpha1", "mseingressconfigs", False),
]
# Near-valid objects of each kind: the fuzz mutates them (a Secret, a Lease, an Ingress...).
VALID_K8S = list(
    yaml.safe_load_all(
        f"""
{{apiVersion: v1, kind: Service, metadata: {{name: s}}, spec: {{ports: [{{port: 80}}]}}}}
---
{{apiVersion: v1, kind: ConfigMap, metadata: {{name: c, labels: {{a: b}}}}, data: {{k: v}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: t}}
type: kubernetes.io/tls
data: {{tls.crt: eA==, tls.key: eA==}}
---
apiVersion: v1
kind: Event
metadata: {{name: e}}
involvedObject: {{kind: Pod, name: p, namespace: {NAMESPACE}}}
reason: R
message: m
---
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers: [{{name: c, image: curl, resources: {{limits: {{cpu: 100m}}}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: i}}
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: s, port: {{number: 80}}}}}}}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: l}}
spec: {{holderIdentity: me, leaseDurationSeconds: 30, renewTime: "2026-12-01T10:00:00.000000Z"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: d}}
spec:
  replicas: 1
  selector: {{matchLabels: {{a: b}}}}
  template:
    metadata: {{labels: {{a: b}}}}
    spec: {{containers: [{{name: c, image: x}}]}}
---
apiVersion: authorization.k8s.io/v1
kind: SelfSubjectAccessReview
spec: {{resourceAttributes: {{verb: get, resource: pods}}}}
"""
    )
)
K8S_QUERY = [
    ("limit", ["1", "0", "-1", "abc", "99999999999999999999"]),
    ("continue", ["abc", "eyJ2IjoiIn0=", ""]),
    ("labelSelector", ["a=b", "a in (b,c)", "!!", "a==", "a,b!=c", "(("]),
    ("fieldSelector", ["metadata.name=x", "spec.foo=bar", "=", "metadata.name!=="]),
    ("dryRun", ["All", "None", ""]),
    ("fieldManager", ["x" * 200, "m", ""]),
    ("fieldValidation", ["Strict", "Warn", "Ignore", "Bogus"]),
    ("resourceVersion", ["0", "abc", "-1", "99999999999"]),
    ("propagationPolicy", ["Orphan", "Foreground", "Never"]),
    ("gracePeriodSeconds", ["0", "abc"]),
    ("force", ["true", "maybe"]),
    ("includeObject", ["None", "Object", "Bogus"]),
    ("tailLines", ["1", "abc"]),
    ("container", ["c", ""]),
]


def _valid_for(plural: str, name: str) -> Any:
    """The near-valid object of ``plural``'s kind (a Service for services...), named ``name``."""
    kind = {
        "services": "Service",
        "configmaps": "ConfigMap",
        "secrets": "Secret",
        "events": "Event",
        "pods": "Pod",
        "ingresses": "Ingress",
        "leases": "Lease",
        "deployments": "Deployment",
        "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    }.get(plural)
    for obj in VALID_K8S:
        if obj["kind"] == kind:
            return {**obj, "metadata": {**obj.get("metadata", {}), "name": name}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def _k8s_target(fz: Fuzzer, token: str | None) -> tuple[str, str, str, str]:
    """(method, path, plural, name): mostly the fuzz namespace's objects, sometimes anything."""
    prefix, plural, namespaced = fz.pick(K8S_RESOURCES)
    name = fz.pick(["s", "c", "t", "e", "p", "i", "l", "d", "s", "c", "x" * 300, "Bad_Name"])
    if fz.rng.random() < 0.08:
        path = fz.pick(["/", "/version", "/api", "/apis", "/openapi/v3", "/healthz", "/x/y/z"])
        path += "/" + quote(fz.text(8)) if fz.rng.random() < 0.5 else ""
        return fz.pick(["GET", "POST", "DELETE"]), path, plural, name
    if namespaced:
        ns = NAMESPACE if token is None or fz.rng.random() < 0.9 else fz.text(5) or "x"
        collection = f"/{prefix}/namespaces/{quote(ns)}/{plural}"
    else:
        collection = f"/{prefix}/{plural}"
    item = f"{collection}/{quote(name)}"
    roll = fz.rng.random()
    if roll < 0.3:
        return "POST", collection, plural, name
    if roll < 0.45:
        return "GET", fz.pick([collection, item]), plural, name
    if roll < 0.6:
        return "PUT", item + fz.pick(["", "", "/status"]), plural, name
    if roll < 0.8:
        return "PATCH", item + fz.pick(["", "", "/status"]), plural, name
    if roll < 0.9:
        return "DELETE", fz.pick([item, item, collection]), plural, name
    method = fz.pick(["HEAD", "OPTIONS", "FOO", "POST", "GET"])
    return method, item + fz.pick(["", "/log", "/bogus", "/status/x"]), plural, name


def _k8s_body(fz: Fuzzer, method: str, plural: str, name: str) -> tuple[bytes | list[bytes], str]:
    if method == "PATCH" and fz.rng.random() < 0.7:
        ctype = fz.pick(CONTENT_TYPES[3:7])
        if ctype == "application/json-patch+json":
            ops = [{"op": fz.pick(["add", "replace", "remove", "test", "move", "copy", "x"]),
                    "path": fz.pick(["/metadata/labels/a", "/spec", "/data/k", "/x/y", "", "~"]),
                    "value": fz.value(), "from": fz.pick(["/spec", "/nope"])}
                   for _ in range(fz.rng.randint(0, 3))]  # fmt: skip
            return json.dumps(ops).encode(), ctype
        patch = fz.mutate(_valid_for(plural, name), rate=0.15)
        if ctype == "application/apply-patch+yaml":
            return yaml.safe_dump(patch).encode(), ctype
        return json.dumps(patch).encode(), ctype
    if method in ("POST", "PUT") and fz.rng.random() < 0.75:
        obj = fz.mutate(_valid_for(plural, name), rate=fz.pick([0.0, 0.05, 0.1, 0.3]))
        if fz.rng.random() < 0.15:
            return yaml.safe_dump(obj).encode(), "application/yaml"
        return json.dumps(obj).encode(), "application/json"
    if method == "DELETE" and fz.rng.random() < 0.7:
        return b"", "application/json"
    return fz.body(VALID_K8S, K8S_LIMIT)


def _k8s_request(fz: Fuzzer, token: str | None) -> Sent:
    if fz.rng.random() < 0.06:
        return Sent("k8s malformed", fz.malformed())
    method, path, plural, name = _k8s_target(fz, token)
    # Writes outside the fuzz namespace (and Pods and Deployments, which the kubelet and the
    # controllers would act on) are dry runs: the fuzz must not take the cluster apart.
    writes = method in ("POST", "PUT", "PATCH", "DELETE")
    inside = path.startswith(f"/api/v1/namespaces/{NAMESPACE}/") or (
        f"/namespaces/{NAMESPACE}/" in path and path.startswith("/apis/")
    )
    if token and writes and (not inside or plural in ("pods", "deployments")):
        query = fz.query([p for p in K8S_QUERY if p[0] != "dryRun"])
        query += ("&" if query else "?") + "dryRun=All"
    else:
        query = fz.query(K8S_QUERY)
    body, ctype = _k8s_body(fz, method, plural, name) if writes else (b"", "application/json")
    headers = fz.headers(ctype)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Sent(f"k8s {method} {path}{query}", fz.request(method, path + query, headers, body))


def _encode(params: dict[str, str]) -> str:
    """The query as the SDK writes it: sorted ``key=quote(value, safe='~')``."""
    return "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(params.items()))


class Signer:
    """ACS3-HMAC-SHA256 as the reference recipe describes it, for signed fuzz calls."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id, self.secret = key_id, secret

    def headers(
        self, method: str, path: str, query: str, body: bytes, extra: dict[str, str]
    ) -> dict[str, str]:
        hashed = hashlib.sha256(body).hexdigest()
        h = {k.lower(): v for k, v in extra.items()}
        h |= {
            "host": "127.0.0.1",
            "x-acs-content-sha256": hashed,
            "x-acs-date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
        }
        names = sorted(h)
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{n}:{h[n].strip()}\n" for n in names),
                ";".join(names),
                hashed,
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        signature = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = (
            f"ACS3-HMAC-SHA256 Credential={self.key_id},SignedHeaders={';'.join(names)},"
            f"Signature={signature}"
        )
        return h


RPC_ACTIONS = [
    ("DescribeVpcs", "2016-04-28"),
    ("DescribeNatGateways", "2016-04-28"),
    ("DescribeSnatTableEntries", "2016-04-28"),
    ("CreateSnatEntry", "2016-04-28"),
    ("DeleteSnatEntry", "2016-04-28"),
    ("DescribeVSwitchAttributes", "2016-04-28"),
    ("DescribeEipAddresses", "2016-04-28"),
    ("DescribeLoadBalancers", "2014-05-15"),
    ("ListGateway", "2019-05-31"),
    ("GetRole", "2015-05-01"),
    ("NoSuchAction", "2016-04-28"),
    ("DescribeVpcs", "1999-01-01"),
]
RPC_QUERY = [
    ("RegionId", ["cn-hangzhou", "cn-nowhere", ""]),
    ("PageSize", ["10", "0", "-1", "abc", "99999999999"]),
    ("PageNumber", ["1", "0", "x"]),
    ("SnatTableId", ["stb-x", ""]),
    ("NatGatewayId", ["ngw-x", "\u0000", "\u00ff"]),
    ("SourceVSwitchId", ["vsw-x"]),
    ("SnatIp", ["47.96.0.1", "999.1.1.1", "x"]),
    ("DryRun", ["true", "false", "maybe"]),
    ("ClientToken", ["t", "x" * 300]),
    ("Tag.1.Key", ["k"]),
    ("Tag.1.Value", ["v"]),
    ("RoleName", ["AliyunServiceRoleForMse", "x"]),
]
ROA_PATHS = [
    ("GET", "/clusters/{cid}"),
    ("GET", "/clusters/{cid}/addon_instances/mse-ingress-controller"),
    ("POST", "/clusters/{cid}/components/install"),
    ("GET", "/tasks/t-x"),
    ("GET", "/k8s/{cid}/user_config"),
    ("DELETE", "/clusters/{cid}/components/uninstall"),
    ("GET", "/no/such/path"),
]


def _openapi_request(fz: Fuzzer, signer: Signer, cluster_id: str) -> Sent:
    if fz.rng.random() < 0.06:
        return Sent("openapi malformed", fz.malformed(truncated=True))
    body: bytes | list[bytes] = b""
    params: dict[str, str] = {}
    if fz.rng.random() < 0.6:
        method, path = "POST", "/"
        action, version = fz.pick(RPC_ACTIONS)
        extra = {"x-acs-action": action, "x-acs-version": version, "accept": "application/json"}
        params = {k: fz.pick(vs) for k, vs in RPC_QUERY if fz.rng.random() < 0.3}
        if fz.rng.random() < 0.8:
            params["RegionId"] = "cn-hangzhou"
        if fz.rng.random() < 0.2:
            body, ctype = fz.body([{"RegionId": "cn-hangzhou"}], OPENAPI_LIMIT)
            extra["content-type"] = fz.pick(["application/x-www-form-urlencoded", ctype])
    else:
        method, path = fz.pick(ROA_PATHS)
        path = path.format(cid=fz.pick([cluster_id, cluster_id, "c-nope"]))
        extra = {"x-acs-version": fz.pick(["2015-12-15", "2015-12-15", "bogus"])}
        extra["accept"] = "application/json"
        if method == "POST":
            addon = [{"name": "mse-ingress-controller", "version": "2.1.3"}]
            body = json.dumps(fz.mutate(addon, rate=0.2)).encode()
            extra["content-type"] = "application/json"
    query = _encode(params)
    if fz.rng.random() < 0.75 and not isinstance(body, list):
        headers = signer.headers(method, path, query, body, extra)
        label = "signed"
    else:
        headers = {**extra, "authorization": fz.pick(["", "ACS3-HMAC-SHA256 garbage", "Bearer x"])}
        label = "unsigned"
    target = path + ("?" + query if query else "")
    return Sent(f"openapi {label} {method} {target}", fz.request(method, target, headers, body))


CONTROL_PATHS = [
    ("GET", "/_sandbox/faults"),
    ("POST", "/_sandbox/faults"),
    ("POST", "/_sandbox/faults/stuck"),
    ("POST", "/_sandbox/faults/drop-watches"),
    ("GET", "/_sandbox/transitions"),
    ("PUT", "/_sandbox/transitions/snat_entry"),
    ("PUT", "/_sandbox/transitions/bogus"),
    ("POST", "/_sandbox/transitions/advance"),
    ("GET", "/_sandbox/audit?since=abc&mutating=maybe"),
    ("GET", "/_sandbox/origin"),
    ("POST", "/_sandbox/origin/sideways"),
    ("GET", "/_sandbox/nothing"),
    ("DELETE", "/_sandbox/transitions"),
    ("GET", "/"),
]
VALID_CONTROL = [
    {"api": "vpc", "action": "DescribeVpcs", "code": "Throttling.User", "status": 400, "count": 1},
    {"api": "k8s", "action": "create", "resource": "configmaps", "code": "X", "status": 500},
    {"kind": "snat_entry", "id": "snat-x"},
    {"mode": "timed", "seconds": 0.1},
    {"id": "snat-nope"},
    {"host": "www.example.com"},
]


def _control_request(fz: Fuzzer, admin: str, readonly: str) -> Sent:
    if fz.rng.random() < 0.08:
        return Sent("control malformed", fz.malformed(truncated=True))
    method, path = fz.pick(CONTROL_PATHS)
    if fz.rng.random() < 0.1:
        method = fz.pick(["PATCH", "FOO", "DELETE"])
    body: bytes | list[bytes] = b""
    ctype = "application/json"
    if method in ("POST", "PUT"):
        body, ctype = fz.body(VALID_CONTROL, CONTROL_LIMIT)
    headers = fz.headers(ctype)
    token = fz.pick([admin, admin, readonly, "", "wrong"])
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Sent(f"control {method} {path}", fz.request(method, path, headers, body))


# ---- the test -------------------------------------------------------------------------------


def _lists_work(box: Sandbox, admin: str) -> None:
    ca = str(box.pki.ca_path)
    for prefix, plural, _namespaced in K8S_RESOURCES:
        if plural == "selfsubjectaccessreviews":
            continue
        for accept in ("application/json", "application/json;as=Table;v=v1;g=meta.k8s.io"):
            reply = exchange(
                box.k8s.port,
                request_bytes(
                    "GET",
                    f"/{prefix}/{plural}",
                    {"Authorization": f"Bearer {admin}", "Accept": accept},
                ),
                ca=ca,
            )
            assert reply is not None, (plural, accept)
            if plural == "mseingressconfigs" and reply.status == 404:
                continue  # served once the MSE add-on is installed (the fuzz may not have)
            assert reply.status == 200, (plural, accept, reply)
            kind = reply.json()["kind"]
            assert kind == "Table" or kind.endswith("List"), (plural, accept, kind)


def _kubectl_lists(box: Sandbox) -> None:
    exe = shutil.which("kubectl")
    if exe is None:
        return
    proc = subprocess.run(
        [
            exe,
            "--kubeconfig",
            str(box.kubeconfig_path),
            "get",
            "svc,cm,secrets,ing,leases,events,pods",
            "-A",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(Path(box.kubeconfig_path).parent), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr


def _control_reset(box: Sandbox, admin: str) -> None:
    reply = exchange(
        box.control.port,
        request_bytes("POST", "/_sandbox/reset", {"Authorization": f"Bearer {admin}"}),
    )
    assert reply is not None and reply.status == 200, reply


def test_random_requests_get_well_formed_answers_and_the_servers_stay_up(box: Sandbox) -> None:
    admin, readonly = box.tokens.admin, box.tokens.readonly
    k8s.CoreV1Api(kube(box)).create_namespace({"metadata": {"name": NAMESPACE}})
    info = box.info()
    signer = Signer(info["access_key_id"], info["access_key_secret"])
    ca = str(box.pki.ca_path)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    fz = Fuzzer(random.Random(SEED))
    for i in range(REQUESTS_PER_SERVER):
        sent = _k8s_request(fz, fz.pick([admin, admin, readonly, None]))
        _check(f"#{i} {sent.label}", exchange(box.k8s.port, sent.data, ca=ca), _k8s_shape)
        sent = _openapi_request(fz, signer, box.cluster_id)
        reply = exchange(box.aliyun.port, sent.data, half_close=True)
        _check(f"#{i} {sent.label}", reply, _pop_shape)
        sent = _control_request(fz, admin, readonly)
        reply = exchange(box.control.port, sent.data, half_close=True)
        _check(f"#{i} {sent.label}", reply, _control_shape)
        if reply is not None and reply.status < 300 and not sent.label.startswith("control GET"):
            _control_reset(box, admin)  # a fault the fuzz added must not answer the next call
    grown = process.memory_info().rss - rss_before
    assert grown < RSS_GROWTH_LIMIT, f"the process grew by {grown // 2**20} MiB"

    # Still up, and still right: normal requests through the real clients.
    assert k8s.VersionApi(kube(box)).get_code().git_version
    core = k8s.CoreV1Api(kube(box))
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "after-the-fuzz"}})
    assert core.read_namespaced_config_map("after-the-fuzz", NAMESPACE).metadata.name
    assert core.list_service_for_all_namespaces().items
    vpcs = vpc(box).describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=box.topology.region_id))
    assert vpcs.body.total_count >= 1
    reply = exchange(
        box.control.port,
        request_bytes("GET", "/_sandbox/faults", {"Authorization": f"Bearer {admin}"}),
    )
    assert reply is not None and reply.status == 200
    _lists_work(box, admin)
    _kubectl_lists(box)
