"""TLS termination on a gateway's listener 443, as MSE (Envoy) does it for Ingress ``spec.tls``.

The certificate is chosen per connection by SNI: the ``spec.tls`` entry of a bound Ingress whose
``hosts`` match the name best (exact beats ``*.`` wildcard beats an entry without hosts; on a
tie the oldest Ingress wins, as for routes) names a Secret in the Ingress's namespace, whose
``data`` holds ``tls.crt`` and ``tls.key`` (base64 PEM, type ``kubernetes.io/tls``).
When nothing matches, the Secret is missing or unusable, or the client sends no SNI, the real
gateway serves its own default certificate; the sandbox stands that in with one issued by the
sandbox CA for the requested name (for the CLB address without SNI), so ``--cacert ca.pem``
works for it and a client can still tell it from the Ingress's own certificate. The domain's
``tls-min-protocol-version`` / ``tls-max-protocol-version`` bound the handshake per SNI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.dataplane.clienthello import peek_sni
from egress_sandbox.dataplane.routes import host_rank
from egress_sandbox.k8s.store import Store

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Pem = tuple[bytes, bytes]  # (certificate chain, private key)
CACHE_LIMIT = 256  # contexts kept per listener; a long-lived sandbox must not grow without end


def _entry_rank(entry: Obj, sni: str) -> int:
    hosts = [str(h) for h in entry.get("hosts") or []]
    if not hosts:
        return 1  # an entry without hosts applies to every name
    return max(host_rank(h, sni) for h in hosts)


def find_certificate(store: Store, ingresses: list[Obj], sni: str) -> Pem | None:
    """The PEMs the TLS secret for ``sni`` holds, or None (then the default cert is served).

    ``ingresses`` are the gateway's bound Ingresses, oldest first.
    """
    best: tuple[int, str, str] | None = None
    for ing in ingresses:
        for entry in (ing.get("spec") or {}).get("tls") or []:
            rank = _entry_rank(entry, sni)
            if rank and (best is None or rank > best[0]):
                best = (rank, ing["metadata"]["namespace"], str(entry.get("secretName") or ""))
    if best is None or not best[2]:
        return None
    rt = store.types.get("", "v1", "secrets")
    secret = store.try_get(rt, best[1], best[2]) if rt is not None else None
    data = (secret or {}).get("data") or {}
    try:
        return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


Versions = tuple[str | None, str | None]  # tls-min/max-protocol-version (None: default)
_MODERN = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
PEEK_TIMEOUT = 10.0  # how long a client may take to send its ClientHello


class GatewayTls:
    """The server contexts of one listener 443, picked per connection from the peeked SNI.

    The SNI picks the certificate (:func:`find_certificate`) and the domain's TLS version
    range (MSE defaults: TLSv1.0 to TLSv1.3; the sandbox offers TLSv1.2 and TLSv1.3 only, see
    :func:`_bound`). A handshake outside the range fails. No SNI: the default certificate and
    range.
    """

    def __init__(
        self,
        pki: SandboxPki,
        default_name: str,
        certificate: Callable[[str], Pem | None],
        versions: Callable[[str], Versions] | None = None,
    ) -> None:
        self._pki = pki
        self._certificate = certificate
        self._versions = versions or (lambda _sni: (None, None))
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, Versions], ssl.SSLContext] = {}
        self.context = pki.server_context(default_name)  # no SNI: the CLB address's cert

    def context_for(self, conn: socket.socket) -> ssl.SSLContext:
        """The context for the handshake ``conn`` is about to start (nothing is consumed)."""
        previous = conn.gettimeout()
        try:
            sni = peek_sni(conn, PEEK_TIMEOUT)
        except OSError:
            sni = None
        finally:
            conn.settimeout(previous)
        if not sni:
            return self.context
        try:
            return self._for_name(sni)
        except Exception:  # the default context still lets the client see what it gets
            log.exception("gateway TLS: choosing a certificate for %s failed", sni)
            return self.context

    def _for_name(self, host: str) -> ssl.SSLContext:
        pem = self._certificate(host)
        versions = self._versions(host)
        if pem is not None:
            ctx = self._cached(hashlib.sha256(pem[0] + b"\0" + pem[1]).hexdigest(), versions, pem)
            if ctx is not None:
                return ctx
        ctx = self._cached("issued:" + host, versions, None)
        assert ctx is not None
        return ctx

    def _cached(self, key: str, versions: Versions, pem: Pem | None) -> ssl.SSLContext | None:
        with self._lock:
            ctx = self._cache.get((key, versions))
        if ctx is not None:
            return ctx
        if pem is None:
            ctx = self._pki.server_context(key.removeprefix("issued:"))
        else:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                load_chain(ctx, pem)
            except (ssl.SSLError, OSError) as exc:
                log.warning("gateway TLS: unusable TLS secret (%s); serving the default cert", exc)
                return None
        _bound(ctx, versions)
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[(key, versions)] = ctx
        return ctx


def _bound(ctx: ssl.SSLContext, versions: Versions) -> None:
    """Apply a version range. The sandbox's OpenSSL has no TLS 1.0/1.1 (its security level
    disables them; Python deprecates asking): a minimum below TLSv1.2 means TLSv1.2, and a
    maximum below it leaves no version at all, so every handshake fails (stricter than MSE)."""
    low, high = versions
    if low in _MODERN:
        ctx.minimum_version = _MODERN[low]
    if high in _MODERN:
        ctx.maximum_version = _MODERN[high]
    elif high is not None:
        ctx.minimum_version, ctx.maximum_version = _MODERN["TLSv1.3"], _MODERN["TLSv1.2"]


def load_chain(ctx: ssl.SSLContext, pem: Pem) -> None:
    # ssl loads certificates and keys only from files: write them where only we can read.
    with tempfile.TemporaryDirectory(prefix="gw-tls-") as tmp:
        crt, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((crt, pem[0]), (key, pem[1])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(crt), str(key))
