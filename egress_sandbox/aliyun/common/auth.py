"""Who is calling: ACS3 / legacy-v2 signature verification, STS and bearer tokens, RAM checks.

Order of checks (the real gateway's order is [UNCONFIRMED]; this one never leaks whether a
signature was right before the caller proved the request is fresh):
Authorization well-formed -> x-acs-date format and +-15 min -> AccessKey (or STS key) known ->
STS token matches and is unexpired -> x-acs-content-sha256 == sha256(body) -> every ``x-acs-*``,
``host`` and ``content-type`` header is signed -> signature -> nonce unused. The nonce is recorded
only after the signature verified, so forged requests cannot burn a client's nonces.

Choices marked [UNCONFIRMED]: a body whose hash differs from x-acs-content-sha256 is reported as
SignatureDoesNotMatch (the gateway hashes the body itself, so the signature cannot match); a
missing or malformed Authorization / unsigned ``x-acs-*`` header is IncompleteSignature; nonces
are remembered for 30 minutes (twice the clock-skew window) across all AccessKeys.
Secrets never appear in messages, logs or audit records.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common import signature as sig
from egress_sandbox.aliyun.common.ram_policy import RamPolicy, ram_action
from egress_sandbox.aliyun.records import CloudState

MAX_SKEW_SECONDS = 15 * 60
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Principal:
    name: str
    kind: Literal["access_key", "sts", "bearer"]
    access_key_id: str  # "" for bearer tokens
    read_only: bool
    policy: RamPolicy | None = None  # None: every action is allowed


@dataclass(frozen=True)
class IncomingRequest:
    """The parts of an HTTP request a signature covers, exactly as received."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, list[str]]  # lower-case names
    body: bytes
    params: Mapping[str, str]  # decoded query (+ form body) parameters

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def parse_date(value: str) -> float:
    """RFC3339 UTC ``%Y-%m-%dT%H:%M:%SZ`` to epoch seconds (InvalidTimeStamp.Format otherwise)."""
    try:
        parsed = dt.datetime.strptime(value, _DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise errors.InvalidTimeStampFormat() from None
    return parsed.timestamp()


class NonceCache:
    """Nonces seen recently; a nonce may be used once within the freshness window."""

    def __init__(self, ttl: float = 2 * MAX_SKEW_SECONDS) -> None:
        self._ttl = ttl
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use(self, nonce: str, now: float) -> None:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {n: t for n, t in self._seen.items() if t > now}
            expiry = self._seen.get(nonce)
            if expiry is not None and expiry > now:
                raise errors.SignatureNonceUsed()
            self._seen[nonce] = now + self._ttl


class Authenticator:
    """Verifies requests against the AccessKeys, STS and bearer tokens held in CloudState."""

    def __init__(
        self,
        cloud: CloudState,
        lock: threading.RLock,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cloud = cloud
        self._lock = lock
        self._clock = clock
        self._nonces = NonceCache()

    def authenticate(self, req: IncomingRequest) -> Principal:
        if req.header("x-acs-bearer-token") is not None:
            return self._bearer(req)
        if req.header("authorization") is None and "Signature" in req.params:
            return self._rpc_v2(req)
        return self._acs3(req)

    # --- ACS3-HMAC-SHA256 ---------------------------------------------------------------------

    def _acs3(self, req: IncomingRequest) -> Principal:
        raw_auth = req.header("authorization")
        auth = sig.parse_authorization(raw_auth) if raw_auth else None
        if auth is None:
            raise errors.IncompleteSignature("The Authorization header is missing or malformed.")
        if auth.algorithm != sig.ACS3_ALGORITHM:
            raise errors.IncompleteSignature(
                f"The signature algorithm {auth.algorithm} is not supported."
            )
        now = self._clock()
        self._check_fresh(req.header("x-acs-date"), now, "x-acs-date")
        secret, principal = self._credential(auth.credential, req.header("x-acs-security-token"))
        if principal.kind == "sts" and req.header("x-acs-accesskey-id") not in (
            None,
            auth.credential,
        ):
            raise errors.InvalidSecurityTokenMismatch()
        claimed = req.header("x-acs-content-sha256")
        if claimed is None:
            raise errors.IncompleteSignature("The x-acs-content-sha256 header is missing.")
        nonce = req.header("x-acs-signature-nonce")
        if not nonce:
            raise errors.IncompleteSignature("The x-acs-signature-nonce header is missing.")
        must_sign = {n for n in req.headers if n.startswith("x-acs-")} | {"host"}
        if "content-type" in req.headers:
            must_sign.add("content-type")
        unsigned = sorted(must_sign - set(auth.signed_headers))
        if unsigned:
            raise errors.IncompleteSignature(
                f"The headers {', '.join(unsigned)} must be signed (SignedHeaders)."
            )
        canonical = sig.canonical_request(
            method=req.method,
            raw_path=req.raw_path,
            raw_query=req.raw_query,
            headers=req.headers,
            signed_headers=auth.signed_headers,
            hashed_payload=claimed,
        )
        to_sign = sig.string_to_sign(canonical)
        body_ok = hashlib.sha256(req.body).hexdigest() == claimed
        if not body_ok or not sig.signatures_equal(
            sig.acs3_signature(secret, to_sign), auth.signature
        ):
            # The server's string to sign is what the real gateway echoes to help debugging;
            # it holds only a hash, never the secret.
            raise errors.SignatureDoesNotMatch(
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{to_sign}"
            )
        self._nonces.use(nonce, now)
        return principal

    # --- legacy RPC v2 (HMAC-SHA1 in the query) ---------------------------------------------

    def _rpc_v2(self, req: IncomingRequest) -> Principal:
        p = req.params
        if p.get("SignatureMethod") != "HMAC-SHA1" or p.get("SignatureVersion") != "1.0":
            raise errors.IncompleteSignature(
                "Only SignatureMethod HMAC-SHA1 version 1.0 is supported."
            )
        for name in ("AccessKeyId", "Timestamp", "SignatureNonce"):
            if not p.get(name):
                raise errors.MissingParameter(name)
        now = self._clock()
        self._check_fresh(p["Timestamp"], now, "Timestamp")
        secret, principal = self._credential(p["AccessKeyId"], p.get("SecurityToken"))
        to_sign = sig.rpc_v2_string_to_sign(req.method, p)
        if not sig.signatures_equal(sig.rpc_v2_signature(secret, to_sign), p["Signature"]):
            raise errors.SignatureDoesNotMatch(
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{to_sign}"
            )
        self._nonces.use(p["SignatureNonce"], now)
        return principal

    # --- bearer -------------------------------------------------------------------------------

    def _bearer(self, req: IncomingRequest) -> Principal:
        token = req.header("x-acs-bearer-token") or ""
        signature_type = req.params.get("SignatureType") or req.header("x-acs-signature-type")
        if signature_type != "BEARERTOKEN":
            raise errors.IncompleteSignature(
                "SignatureType BEARERTOKEN is required with a bearer token."
            )
        now = self._clock()
        self._check_fresh(req.header("x-acs-date"), now, "x-acs-date")
        with self._lock:
            record = self._cloud.bearer_tokens.get(token)
        if record is None or parse_date(record.expiration) <= now:
            raise errors.InvalidBearerTokenNotFound()
        nonce = req.header("x-acs-signature-nonce")
        if nonce:
            self._nonces.use(nonce, now)
        return Principal(record.principal, "bearer", "", record.read_only)

    # --- shared -------------------------------------------------------------------------------

    def _check_fresh(self, value: str | None, now: float, name: str) -> None:
        if not value:
            raise errors.IncompleteSignature(f"The {name} header or parameter is missing.")
        if abs(now - parse_date(value)) > MAX_SKEW_SECONDS:
            raise errors.InvalidTimeStampExpired(
                f"Specified time stamp or date value is expired. {name}: {value}"
            )

    def _credential(self, access_key_id: str, security_token: str | None) -> tuple[str, Principal]:
        """The secret to verify with and the principal it identifies."""
        with self._lock:
            key = self._cloud.access_keys.get(access_key_id)
            sts = self._cloud.sts_tokens.get(access_key_id)
        if key is not None:
            policy = RamPolicy.parse(key.policy) if key.policy is not None else None
            return key.access_key_secret, Principal(
                key.principal, "access_key", key.access_key_id, key.read_only, policy
            )
        if sts is None:
            raise errors.InvalidAccessKeyIdNotFound()
        if not security_token:
            raise errors.InvalidSecurityTokenMalformed("The SecurityToken is missing.")
        if not sig.signatures_equal(security_token, sts.security_token):
            raise errors.InvalidSecurityTokenMismatch()
        if parse_date(sts.expiration) <= self._clock():
            raise errors.InvalidSecurityTokenExpired()
        return sts.access_key_secret, Principal(
            sts.principal, "sts", sts.access_key_id, sts.read_only
        )


def check_permission(
    principal: Principal, *, service: str, action: str, mutating: bool, account_id: str
) -> None:
    """Refuse a call its RAM action is not allowed for, with the 403 the real RAM check gives.

    A read-only principal may call no mutating action; a principal with a policy only what
    the policy allows.
    """
    auth_action = ram_action(service, action)
    if principal.read_only and mutating:
        decision = "ImplicitDeny"
    elif principal.policy is not None:
        decision = principal.policy.decide(auth_action)
    else:
        return
    if decision == "Allow":
        return
    diagnostic = json.dumps(
        {"AuthAction": auth_action, "Principal": principal.name, "Decision": decision},
        sort_keys=True,
    )
    raise errors.ForbiddenRam(
        access_denied_detail={
            "PolicyType": "AccountLevelIdentityBasedPolicy",
            "AuthPrincipalOwnerId": account_id,
            "EncodedDiagnosticMessage": base64.b64encode(diagnostic.encode()).decode(),
            "AuthPrincipalType": "AssumedRoleUser" if principal.kind == "sts" else "SubUser",
            "AuthPrincipalDisplayName": principal.name,
            "NoPermissionType": decision,
            "AuthAction": auth_action,
        }
    )
