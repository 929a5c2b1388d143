"""TLS contexts: verification always on; a client certificate is loaded without its plain key on disk."""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from pathlib import Path

import pytest

from enate_routing._certificates import CABundleError, ClientCertificate, load_ca_bundle, load_pkcs12
from enate_routing._loading import load_config
from enate_routing.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificatePasswordError,
    TLSVerificationError,
)
from enate_routing.transports._tls import client_context, load_client_certificate
from mailrig.pki import Pki


def test_context_always_verifies(pki: Pki) -> None:
    """Every context checks the host name and requires a trusted chain, TLS 1.2 at least."""
    for ctx in (client_context(), client_context(pki.ca_pem)):
        assert ctx.check_hostname is True
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_ca_file_replaces_the_system_store(pki: Pki) -> None:
    """With ca_file, exactly that CA is trusted (docs/semantics.md §2: instead of the system store)."""
    ctx = client_context(pki.ca_pem)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "enate test CA"),),)]


@pytest.mark.parametrize("use_memfd", [True, False])
def test_client_certificate_leaves_no_file(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_memfd: bool
) -> None:
    """Both loading paths (memfd, 0600 temp file) load the certificate and leave nothing behind."""
    if use_memfd and not hasattr(os, "memfd_create"):
        pytest.skip("no memfd_create on this platform")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert = load_pkcs12(pki.client_pfx, pki.pfx_password)
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    load_client_certificate(ctx, cert, use_memfd=use_memfd)
    assert list(tmp_path.iterdir()) == []


def test_fallback_file_is_private(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback file is 0600 inside a 0700 directory and holds only an encrypted key."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[tuple[int, int, bytes]] = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: object = None) -> None:
        path = Path(certfile)
        seen.append((path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777, path.read_bytes()))
        real(self, certfile, keyfile, password)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    cert = load_pkcs12(pki.client_pfx, pki.pfx_password)
    load_client_certificate(ssl.create_default_context(), cert, use_memfd=False)
    [(file_mode, dir_mode, content)] = seen
    assert (file_mode, dir_mode) == (0o600, 0o700)
    assert b"ENCRYPTED PRIVATE KEY" in content
    assert b"BEGIN PRIVATE KEY" not in content


def test_wrong_pfx_password_is_a_load_error(pki: Pki) -> None:
    """A wrong .pfx password fails when loading, with a typed error and without the password."""
    with pytest.raises(CertificatePasswordError) as caught:
        load_pkcs12(pki.client_pfx, "not-the-password")
    assert "not-the-password" not in str(caught.value)


def test_expired_pfx_is_a_load_error(pki: Pki) -> None:
    """An expired client certificate is refused when loading, before any connection."""
    with pytest.raises(CertificateExpiredError):
        load_pkcs12(pki.expired_client_pfx, pki.pfx_password)


def test_certificate_repr_has_no_key(pki: Pki) -> None:
    """A loaded certificate's repr names the subject only."""
    cert: ClientCertificate = load_pkcs12(pki.client_pfx, pki.pfx_password)
    assert "relay-client.test" in repr(cert)
    assert "PRIVATE" not in repr(cert)


def test_an_unusable_ca_file_gets_one_reason_from_loading_and_from_tls(tmp_path: Path, pki: Pki) -> None:
    """The transports and configuration loading turn a CA file into a trust store with one function
    (load_ca_bundle), so both give the same reason, each in its own error type."""
    (tmp_path / "not-pem.txt").write_text("hello\n")
    for name, reason in (("missing.pem", "cannot read the CA file (No such file or directory)"),
                         ("not-pem.txt", "not a PEM certificate bundle ("), (".", "cannot read the CA file (")):
        path = tmp_path / name
        with pytest.raises(CABundleError) as problem:
            load_ca_bundle(path)
        assert problem.value.reason.startswith(reason)
        with pytest.raises(TLSVerificationError) as refused:
            client_context(path)
        assert str(refused.value).endswith(f"ca_file {str(path)!r}: {problem.value.reason}")
        config = tmp_path / "routing.json"
        config.write_text(json.dumps({"connectors": [{
            "name": "Support", "service": "other", "username": "support@acme.example", "password_env": "PW",
            "primary_address": "support@acme.example", "use_for": "incoming",
            "incoming": {"protocol": "imap", "host": "mail.acme.example", "port": 993, "security": "ssl",
                         "ca_file": name}}],
            "fallbacks": [{"connector": "Support", "address": "support@acme.example",
                           "target": {"customer": "Acme", "contract": "Internal", "service": "IT",
                                      "process": "General", "kind": "ticket"}}]}))
        with pytest.raises(CertificateError) as caught:
            load_config(config)
        (issue,) = caught.value.issues
        assert (issue.problem, issue.field, issue.item) == (problem.value.reason, "incoming.ca_file", name)
    assert [c["subject"] for c in load_ca_bundle(pki.ca_pem).get_ca_certs()] == [((("commonName", "enate test CA"),),)]
