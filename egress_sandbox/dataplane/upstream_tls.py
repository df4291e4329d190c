"""TLS from the gateway to an HTTPS upstream: client contexts, client certificates, errors.

As Envoy's upstream TLS defaults (TlsParameters: TLSv1.2 is both the minimum and the maximum
for clients), the server certificate unchecked (Higress sets ``insecureSkipVerify`` for
``backend-protocol: HTTPS``, reference section 3), and with ``proxy-ssl-secret`` the Secret's
certificate presented (``tls.crt``/``tls.key`` of a kubernetes.io/tls Secret). A missing or
unusable Secret fails every connection, as Envoy's cluster waits for SDS that never comes.
The 503 bodies use Envoy's wording; the exact text of MSE's gateway version is UNCONFIRMED.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from typing import Any

from egress_sandbox.dataplane.tls import Pem, load_chain
from egress_sandbox.k8s.store import Store

CACHE_LIMIT = 64
# BoringSSL packs errors as (library << 24) | reason; library SSL is 16, alert reasons 1000+n.
_SSL_LIB = 16 << 24


class MissingSecret(Exception):
    """The proxy-ssl-secret cannot be used; Envoy never gets a certificate from SDS."""


def secret_pem(store: Store, namespace: str, name: str) -> Pem | None:
    """The ``tls.crt`` and ``tls.key`` of a Secret, or None."""
    rt = store.types.get("", "v1", "secrets")
    secret = store.try_get(rt, namespace, name) if rt is not None else None
    if secret is None:
        return None
    # Istio's SDS also takes an Opaque Secret with the same keys: only the keys matter.
    data = secret.get("data") or {}
    try:
        return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


class ClientContexts:
    """One client context per client certificate (none, or a Secret's by content)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plain = _client()
        self._with_cert: dict[str, ssl.SSLContext] = {}

    def get(self, store: Store, secret: tuple[str, str] | None) -> ssl.SSLContext:
        if secret is None:
            return self._plain
        pem = secret_pem(store, *secret)
        if pem is None:
            raise MissingSecret(f"{secret[0]}/{secret[1]}")
        digest = hashlib.sha256(pem[0] + b"\0" + pem[1]).hexdigest()
        with self._lock:
            ctx = self._with_cert.get(digest)
        if ctx is not None:
            return ctx
        ctx = _client()
        try:
            load_chain(ctx, pem)
        except (ssl.SSLError, OSError) as exc:
            raise MissingSecret(f"{secret[0]}/{secret[1]}: {exc}") from None
        with self._lock:
            if len(self._with_cert) >= CACHE_LIMIT:
                self._with_cert.clear()
            self._with_cert[digest] = ctx
        return ctx


def _client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _boringssl_reason(exc: ssl.SSLError) -> tuple[int, str]:
    """The BoringSSL (Envoy's library) code and name for an OpenSSL error, roughly."""
    reason = str(getattr(exc, "reason", None) or "UNKNOWN")
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            alert = reason[len(prefix) :]
            number = getattr(ssl.AlertDescription, "ALERT_DESCRIPTION_" + alert, None)
            name = ("SSLV3_ALERT_" if alert == "HANDSHAKE_FAILURE" else "TLSV1_ALERT_") + alert
            if number is not None:
                return _SSL_LIB + 1000 + int(number), name
    known = {"WRONG_VERSION_NUMBER": 247, "CERTIFICATE_VERIFY_FAILED": 125}
    return _SSL_LIB + known.get(reason, 0), reason


def tls_failure(exc: Any) -> str:
    """Envoy's transport failure reason for a failed upstream handshake."""
    if isinstance(exc, MissingSecret):
        return "TLS error: Secret is not supplied by SDS"
    if isinstance(exc, ssl.SSLError):
        code, name = _boringssl_reason(exc)
        return f"TLS error: {code}:SSL routines:OPENSSL_internal:{name}"
    return "TLS error: connection closed during handshake"
