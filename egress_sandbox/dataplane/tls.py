"""TLS termination on a gateway's listener 443, as MSE (Envoy) does it for Ingress ``spec.tls``.

The certificate is chosen per connection by SNI: the ``spec.tls`` entry of a bound Ingress whose
``hosts`` match the name best (exact beats ``*.`` wildcard beats an entry without hosts; on a
tie the oldest Ingress wins, as for routes) names a Secret in the Ingress's namespace, whose
``data`` holds ``tls.crt`` and ``tls.key`` (base64 PEM, type ``kubernetes.io/tls``).
When nothing matches, the Secret is missing or unusable, or the client sends no SNI, the real
gateway serves its own default certificate; the sandbox stands that in with one issued by the
sandbox CA for the requested name (for the CLB address without SNI), so ``--cacert ca.pem``
works for it and a client can still tell it from the Ingress's own certificate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_sandbox.core.pki import SandboxPki
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


class GatewayTls:
    """The server context of one listener 443; its SNI callback picks the certificate."""

    def __init__(
        self, pki: SandboxPki, default_name: str, certificate: Callable[[str], Pem | None]
    ) -> None:
        self._pki = pki
        self._certificate = certificate
        self._lock = threading.Lock()
        self._issued: dict[str, ssl.SSLContext] = {}
        self._loaded: dict[str, ssl.SSLContext] = {}  # by digest of the PEMs
        self.context = pki.server_context(default_name)  # no SNI: the CLB address's cert
        self.context.sni_callback = self._pick

    def _pick(self, sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if not name:
            return
        host = name.lower()
        try:
            pem = self._certificate(host)
            ctx = self._from_pem(pem) if pem is not None else None
            sock.context = ctx or self._default(host)
        except Exception:  # an exception here would only abort the handshake, unexplained
            log.exception("gateway TLS: choosing a certificate for %s failed", host)

    def _default(self, host: str) -> ssl.SSLContext:
        with self._lock:
            ctx = self._issued.get(host)
        if ctx is None:
            ctx = self._pki.server_context(host)
            with self._lock:
                _bounded(self._issued)[host] = ctx
        return ctx

    def _from_pem(self, pem: Pem) -> ssl.SSLContext | None:
        digest = hashlib.sha256(pem[0] + b"\0" + pem[1]).hexdigest()
        with self._lock:
            ctx = self._loaded.get(digest)
        if ctx is not None:
            return ctx
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            _load_chain(ctx, pem)
        except (ssl.SSLError, OSError) as exc:
            log.warning("gateway TLS: unusable TLS secret (%s); serving the default cert", exc)
            return None
        with self._lock:
            _bounded(self._loaded)[digest] = ctx
        return ctx


def _bounded(cache: dict[str, ssl.SSLContext]) -> dict[str, ssl.SSLContext]:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    return cache


def _load_chain(ctx: ssl.SSLContext, pem: Pem) -> None:
    # ssl loads certificates and keys only from files: write them where only we can read.
    with tempfile.TemporaryDirectory(prefix="gw-tls-") as tmp:
        crt, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((crt, pem[0]), (key, pem[1])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(crt), str(key))
