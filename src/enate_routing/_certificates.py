"""PKCS#12 (``.pfx``) client certificates: load, check, hand to TLS (docs/semantics.md §2); CA bundles.

The only module that imports ``cryptography``. Each way a certificate can be unusable is its own error
type, so a host can tell the user exactly what to fix. :func:`load_ca_bundle` is the one place a ``ca_file``
is turned into a trust store, for loading (which refuses an unusable one early) and for the transports alike,
so both give the same reason.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from enate_routing.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificateKeyMissingError,
    CertificateNotYetValidError,
    CertificatePasswordError,
)

__all__ = ["CABundleError", "ClientCertificate", "load_ca_bundle", "load_pkcs12"]


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A checked client certificate with its private key; its repr shows only the subject and dates."""

    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    certificate: x509.Certificate = field(repr=False)
    private_key: PrivateKeyTypes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)

    def encrypted_pem(self, passphrase: bytes) -> bytes:
        """Key (encrypted with ``passphrase``), certificate and chain as PEM, for ``load_cert_chain``.

        ``ssl.SSLContext.load_cert_chain`` reads only files; encrypting the key with a one-time passphrase
        means the plain key never reaches a file (mailservers.md §4).
        """
        key = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain))
        return key + certs

    @property
    def is_rsa(self) -> bool:
        """Whether the key is RSA (the Microsoft identity platform signs client assertions with RSA only)."""
        return isinstance(self.private_key, rsa.RSAPrivateKey)

    def signing_material(self) -> tuple[str, str]:
        """``(unencrypted PKCS#8 key PEM, certificate PEM)`` held in memory only, for a JWT client assertion
        (an OAuth 2.0 library takes the key as a string; it never reaches a file)."""
        key = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key.decode("ascii"), self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_pkcs12(
    source: Path | bytes,
    password: str | None,
    *,
    where: str | None = None,
    now: dt.datetime | None = None,
) -> ClientCertificate:
    """Load and check a PKCS#12 file (a path or its bytes).

    Raises CertificatePasswordError, CertificateKeyMissingError, CertificateExpiredError,
    CertificateNotYetValidError, or CertificateError when the file cannot be read. ``where`` locates the
    error ("connector 'Relay'"); the password never appears in it.
    """
    name = str(source) if isinstance(source, Path) else None
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise CertificateError.single(
                f"cannot read certificate file ({exc.strerror or exc})", where=where, field="certificate",
                item=name,
            ) from None
    else:
        data = source
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password is not None else None
        )
    except ValueError:
        # cryptography gives one ValueError for a wrong password and for bytes that are not PKCS#12.
        raise CertificatePasswordError.single(
            "wrong certificate password, or not a PKCS#12 (.pfx) file",
            where=where, field="certificate_password", item=name,
        ) from None
    if key is None:
        raise CertificateKeyMissingError.single(
            "the PKCS#12 file holds no private key", where=where, field="certificate", item=name
        )
    if cert is None:
        raise CertificateError.single(
            "the PKCS#12 file holds no certificate", where=where, field="certificate", item=name
        )
    moment = now or dt.datetime.now(dt.UTC)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    subject = cert.subject.rfc4514_string()
    if moment > not_after:
        raise CertificateExpiredError.single(
            f"certificate {subject!r} expired on {not_after:%Y-%m-%d}",
            where=where, field="certificate", item=name,
        )
    if moment < not_before:
        raise CertificateNotYetValidError.single(
            f"certificate {subject!r} is not valid before {not_before:%Y-%m-%d}",
            where=where, field="certificate", item=name,
        )
    return ClientCertificate(subject, not_before, not_after, cert, key, tuple(extra))


class CABundleError(Exception):
    """Why a CA bundle cannot be loaded, as one phrase (``reason``); the caller adds where it was configured."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_ca_bundle(path: Path | None) -> ssl.SSLContext:
    """``ssl.create_default_context`` trusting the PEM bundle ``path`` (None: the system store), or a
    :class:`CABundleError` saying why not."""
    try:
        return ssl.create_default_context(cafile=str(path) if path is not None else None)
    except ssl.SSLError as exc:  # an OSError too: tested first
        raise CABundleError(f"not a PEM certificate bundle ({exc.reason or type(exc).__name__})") from None
    except OSError as exc:
        raise CABundleError(f"cannot read the CA file ({exc.strerror or type(exc).__name__})") from None
