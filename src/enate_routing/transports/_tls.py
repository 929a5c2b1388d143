"""TLS contexts for the adapters: verification always on, client certificates without a plain key on disk.

:func:`client_context` is the only way the adapters build an ``ssl.SSLContext``. It always verifies the
server certificate and host name (docs/semantics.md §8: "TLS verification on by default" — there is deliberately no
switch to turn it off; trust a private CA with ``ca_file`` instead), against ``ca_file`` when given
(docs/semantics.md §2: "instead of the system store"), else the system store.

``SSLContext.load_cert_chain`` reads only *paths*. :func:`load_client_certificate` therefore writes the
key encrypted with a random one-time passphrase (plus the certificate and chain) to an anonymous
``memfd`` on Linux and hands OpenSSL ``/proc/self/fd/N``; elsewhere to a 0600 file in a fresh 0700
temporary directory that is removed as soon as OpenSSL has read it (mailservers.md §4). Either way the
unencrypted key never reaches a file system, and the encrypted one lives for milliseconds.
"""

from __future__ import annotations

import os
import secrets
import ssl
import sys
import tempfile
from pathlib import Path

from enate_routing._certificates import CABundleError, ClientCertificate, load_ca_bundle
from enate_routing.errors import TLSVerificationError

__all__ = ["client_context", "load_client_certificate"]


def client_context(ca_file: Path | None = None, certificate: ClientCertificate | None = None) -> ssl.SSLContext:
    """A verifying client context (TLS 1.2+), optionally presenting ``certificate``."""
    try:
        context = load_ca_bundle(ca_file)
    except CABundleError as problem:
        raise TLSVerificationError(f"ca_file {str(ca_file)!r}: {problem.reason}") from None
    # create_default_context already sets these; stated so that no later edit can weaken them silently.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate is not None:
        load_client_certificate(context, certificate)
    return context


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _memfd_available() -> bool:
    return hasattr(os, "memfd_create") and sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


def load_client_certificate(
    context: ssl.SSLContext, certificate: ClientCertificate, *, use_memfd: bool | None = None
) -> None:
    """Load ``certificate`` (key, certificate, chain) into ``context`` without writing the plain key.

    ``use_memfd`` forces one of the two paths (tests use it); by default memfd is used where it exists.
    """
    passphrase = secrets.token_hex(32).encode()
    pem = certificate.encrypted_pem(passphrase)
    if use_memfd is None:
        use_memfd = _memfd_available()
    if use_memfd:
        fd = os.memfd_create("enate-client-cert", os.MFD_CLOEXEC)
        try:
            _write_all(fd, pem)
            # Opening /proc/self/fd/N re-opens the memfd from offset 0; nothing touches a file system.
            context.load_cert_chain(f"/proc/self/fd/{fd}", password=passphrase)
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="enate-cert-") as directory:  # created 0700
        path = os.path.join(directory, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, pem)
        finally:
            os.close(fd)
        try:
            context.load_cert_chain(path, password=passphrase)
        finally:
            os.unlink(path)
