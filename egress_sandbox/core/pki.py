"""The sandbox CA and the certificates it issues (trustme), written into the sandbox home."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


class SandboxPki:
    """One CA per sandbox home. Server certs are issued for loopback names and addresses."""

    def __init__(self, home: Path, ca: trustme.CA | None = None) -> None:
        self.home = home
        # A restarted sandbox passes its saved CA, so ca.pem (and clients that trust it) stay valid.
        self.ca = ca or trustme.CA(organization_name="mse-egress-sandbox")
        self.ca_path = home / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))

    def ca_pems(self) -> dict[str, str]:
        """The CA's certificate and private key, for state.json (a 0600 file)."""
        return {
            "cert": self.ca.cert_pem.bytes().decode(),
            "key": self.ca.private_key_pem.bytes().decode(),
        }

    @classmethod
    def ca_from_pems(cls, pems: dict[str, str]) -> trustme.CA:
        return trustme.CA.from_pem(pems["cert"].encode(), pems["key"].encode())

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A TLS server context whose cert covers ``names`` (host names or IP addresses)."""
        cert = self.ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    def wildcard_context(self) -> ssl.SSLContext:
        """For the origin: answers for any host by choosing a cert per SNI name."""
        default = self.ca.issue_cert("localhost", "127.0.0.1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        default.configure_cert(ctx)
        cache: dict[str, ssl.SSLContext] = {}

        def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if not name:
                return
            if name not in cache:
                c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ca.issue_cert(name).configure_cert(c)
                cache[name] = c
            sock.context = cache[name]

        ctx.sni_callback = pick
        return ctx
