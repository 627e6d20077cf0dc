"""A certificate authority made for one run, and server certificates it signs.

Each run gets its own CA so peers can verify TURN-over-TLS and the signaling
WebSocket exactly as a customer's SDK verifies the service, without trusting
anything outside the run.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServerCertificate:
    """Paths of a PEM certificate chain and key, plus the CA that signed them."""

    cert: Path
    key: Path
    ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ice-lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _validity(not_after_days: float) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    return start, now + datetime.timedelta(days=not_after_days)


def make_ca(directory: Path) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Create a CA (EC P-256: generated in milliseconds) and return its PEM path, key, cert."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(2)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ice-lab run CA"))
        .issuer_name(_name("ice-lab run CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = directory / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def issue_server_certificate(
    directory: Path,
    name: str,
    addresses: list[str],
    ca: tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate],
    *,
    expired: bool = False,
    dns_names: list[str] | None = None,
) -> ServerCertificate:
    """Issue a certificate for `addresses` (IP subjectAltNames) signed by `ca`.

    `expired=True` makes a certificate that expired yesterday, for fault scenarios;
    pass other `addresses`/`dns_names` to make a wrong-name certificate.
    """
    ca_path, ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(1)
    if expired:
        start, end = start - datetime.timedelta(days=3), start - datetime.timedelta(days=1)
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    alt_names += [x509.DNSName(d) for d in dns_names or []]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return ServerCertificate(cert=cert_path, key=key_path, ca=ca_path)
