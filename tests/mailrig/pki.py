"""A throw-away test PKI for the loopback mail servers (mailservers.md §2).

:func:`generate_pki` writes, into one directory, with P-256 keys (fast to generate):

- ``ca.pem`` / ``ca.key`` — the test CA the clients trust (``ca_file``);
- ``server.pem`` / ``server.key`` / ``server-chain.pem`` — SAN ``DNS:localhost, IP:127.0.0.1``, EKU
  serverAuth, so hostname verification passes for both names;
- ``client.pfx`` — CN ``relay-client.test``, EKU clientAuth, password :data:`PFX_PASSWORD`;
- ``rogue-ca.pem`` and ``rogue-client.pfx`` — a second, untrusted CA and a client certificate it signed
  (same CN, same password), for "untrusted client certificate" and "untrusted server" tests;
- ``expired-client.pfx`` — signed by the test CA, expired yesterday.

The extensions (critical BasicConstraints, KeyUsage, SKI/AKI, EKU) are those Python 3.13's default
``VERIFY_X509_STRICT`` wants, so the same PKI works on newer Pythons.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CLIENT_CN", "PFX_PASSWORD", "Pki", "generate_pki"]

PFX_PASSWORD = "pfx-test-password"
CLIENT_CN = "relay-client.test"


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files (all PEM unless the name ends in .pfx)."""

    directory: Path
    ca_pem: Path
    ca_key: Path
    server_pem: Path
    server_key: Path
    server_chain: Path
    client_pfx: Path
    rogue_ca_pem: Path
    rogue_client_pfx: Path
    expired_client_pfx: Path
    pfx_password: str = PFX_PASSWORD
    client_cn: str = CLIENT_CN


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    cn: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pfx(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, password: str
) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"relay-client", key, cert, [ca], serialization.BestAvailableEncryption(password.encode())
    )


def generate_pki(directory: Path) -> Pki:
    """Write the whole test PKI into ``directory`` (created if needed) and return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=30)
    ca = _ca("enate test CA", now)
    rogue = _ca("rogue test CA", now)
    server = _leaf("localhost", ca, server=True, not_before=now - dt.timedelta(days=1), not_after=later)
    client = _leaf(CLIENT_CN, ca, server=False, not_before=now - dt.timedelta(days=1), not_after=later)
    rogue_client = _leaf(
        CLIENT_CN, rogue, server=False, not_before=now - dt.timedelta(days=1), not_after=later
    )
    expired = _leaf(
        CLIENT_CN, ca, server=False,
        not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1),
    )
    files: dict[str, bytes] = {
        "ca.pem": _pem(ca[0]),
        "ca.key": _key_pem(ca[1]),
        "server.pem": _pem(server[0]),
        "server.key": _key_pem(server[1]),
        "server-chain.pem": _pem(server[0]) + _pem(ca[0]),
        "client.pfx": _pfx(client[0], client[1], ca[0], PFX_PASSWORD),
        "rogue-ca.pem": _pem(rogue[0]),
        "rogue-client.pfx": _pfx(rogue_client[0], rogue_client[1], rogue[0], PFX_PASSWORD),
        "expired-client.pfx": _pfx(expired[0], expired[1], ca[0], PFX_PASSWORD),
    }
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644 if name.endswith(".pem") else 0o600)
    return Pki(
        directory=directory,
        ca_pem=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_pem=directory / "server.pem",
        server_key=directory / "server.key",
        server_chain=directory / "server-chain.pem",
        client_pfx=directory / "client.pfx",
        rogue_ca_pem=directory / "rogue-ca.pem",
        rogue_client_pfx=directory / "rogue-client.pfx",
        expired_client_pfx=directory / "expired-client.pfx",
    )
