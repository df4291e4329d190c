"""Objects an operator's cluster already has when the runbook starts (``Topology`` seeds them).

- ``seed_secrets``: ``kubernetes.io/tls`` Secrets issued by the sandbox CA, a server
  certificate for ``hosts`` (extendedKeyUsage serverAuth only) or, with ``client``, a client
  certificate with CN ``common_name`` (clientAuth only), so that neither passes for the other;
- ``audit_service``: namespace ``egress-audit`` with an echo-server pod ``audit-0`` behind the
  ClusterIP Service ``audit`` (8080), the target traffic can be mirrored to.

Only a fresh world is seeded; a restored one keeps what it saved (also what a user deleted).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from egress_sandbox.core.pki import SandboxPki
from egress_sandbox.k8s.store import Store
from egress_sandbox.topology import TlsSecretSpec, Topology

Obj = dict[str, Any]
AUDIT_NAMESPACE = "egress-audit"
AUDIT_SERVICE = "audit"
AUDIT_PORT = 8080
# The image the README tells operators to mirror into their ACR instance, so that nodes pull it
# over the VPC endpoint without internet.
AUDIT_IMAGE = "registry-vpc.{region}.aliyuncs.com/egress-runbook/http-https-echo:34"
VALIDITY = dt.timedelta(days=3650)


def issue_certificate(pki: SandboxPki, spec: TlsSecretSpec) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) signed by the sandbox CA for ``spec``."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(pki.ca.private_key_pem.bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the sandbox CA's key is not an EC key")  # trustme's default is ECDSA
    if not spec.client and not spec.hosts:
        raise ValueError(
            f"seed_secrets[{spec.namespace}/{spec.name}].hosts: empty; a server certificate "
            "needs at least one host name (or set client: true)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    cn = spec.common_name if spec.client else spec.hosts[0]
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mse-egress-sandbox"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    ExtendedKeyUsageOID.CLIENT_AUTH
                    if spec.client
                    else ExtendedKeyUsageOID.SERVER_AUTH
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if not spec.client:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in spec.hosts]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def tls_secret(pki: SandboxPki, spec: TlsSecretSpec) -> Obj:
    cert, key = issue_certificate(pki, spec)
    return {
        "metadata": {"name": spec.name, "namespace": spec.namespace},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


def audit_objects(region_id: str) -> list[tuple[str, Obj]]:
    """(plural, object) for the audit echo server, in the order they are created."""
    labels = {"app": AUDIT_SERVICE}
    return [
        ("namespaces", {"metadata": {"name": AUDIT_NAMESPACE}}),
        (
            "pods",
            {
                "metadata": {"name": "audit-0", "namespace": AUDIT_NAMESPACE, "labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "echo",
                            "image": AUDIT_IMAGE.format(region=region_id),
                            "ports": [
                                {"name": "http", "containerPort": AUDIT_PORT, "protocol": "TCP"}
                            ],
                        }
                    ]
                },
            },
        ),
        (
            "services",
            {
                "metadata": {"name": AUDIT_SERVICE, "namespace": AUDIT_NAMESPACE, "labels": labels},
                "spec": {
                    "type": "ClusterIP",
                    "selector": labels,
                    "ports": [
                        {
                            "name": "http",
                            "port": AUDIT_PORT,
                            "targetPort": AUDIT_PORT,
                            "protocol": "TCP",
                        }
                    ],
                },
            },
        ),
    ]


def seed_objects(store: Store, topo: Topology, pki: SandboxPki) -> None:
    """Create the topology's seeded objects in a fresh world (skipping any that exist)."""
    objects: list[tuple[str, Obj]] = []
    namespaces = {"default", "kube-system", "kube-public", "kube-node-lease"}
    for spec in topo.seed_secrets:
        if spec.namespace not in namespaces:
            objects.append(("namespaces", {"metadata": {"name": spec.namespace}}))
            namespaces.add(spec.namespace)
        objects.append(("secrets", tls_secret(pki, spec)))
    if topo.audit_service:
        objects.extend(audit_objects(topo.region_id))
    for plural, obj in objects:
        rt = store.types.get("", "v1", plural)
        assert rt is not None
        meta = obj["metadata"]
        if store.try_get(rt, meta.get("namespace"), meta["name"]) is None:
            store.create(rt, obj)
