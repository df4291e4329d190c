"""Temporary credentials the sandbox issues: what AssumeRole (STS) or a bearer-token grant returns.

There is no emulated STS endpoint; tests and the control API mint credentials here and hand
them to clients, which then sign requests exactly as with real STS credentials (the SDK's credential
providers in alibabacloud_credentials).
Callers must hold the cloud lock (these mutate CloudState). The STS AccessKey ID comes from the
seeded IdFactory like every ID; the secrets do not (``core/credentials.py``): a secret drawn
from the published seed would be known to anyone.
"""

from __future__ import annotations

import datetime as dt
import time

from egress_sandbox.aliyun.records import BearerToken, CloudState, StsToken
from egress_sandbox.core.credentials import ALNUM, random_secret
from egress_sandbox.core.ids import IdFactory


def _expiration(duration_seconds: float, now: float | None) -> str:
    at = dt.datetime.fromtimestamp(
        (now if now is not None else time.time()) + duration_seconds, tz=dt.timezone.utc
    )
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def mint_sts_token(
    cloud: CloudState,
    ids: IdFactory,
    *,
    principal: str,
    duration_seconds: float = 3600,
    read_only: bool = False,
    now: float | None = None,
) -> StsToken:
    """Issue STS credentials (``STS.`` AccessKey, secret, security token) for ``principal``.

    ``duration_seconds`` may be negative to mint an already-expired token (for tests).
    """
    token = StsToken(
        access_key_id="STS."
        + ids.token(24, "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"),
        access_key_secret=random_secret(40),
        security_token="CAIS" + random_secret(120, ALNUM + "+/"),
        principal=principal,
        expiration=_expiration(duration_seconds, now),
        read_only=read_only,
    )
    cloud.sts_tokens[token.access_key_id] = token
    return token


def mint_bearer_token(
    cloud: CloudState,
    ids: IdFactory,
    *,
    principal: str,
    duration_seconds: float = 3600,
    read_only: bool = False,
    now: float | None = None,
) -> BearerToken:
    """Issue a bearer token accepted in ``x-acs-bearer-token``."""
    token = BearerToken(
        token=random_secret(64),
        principal=principal,
        expiration=_expiration(duration_seconds, now),
        read_only=read_only,
    )
    cloud.bearer_tokens[token.token] = token
    return token
