"""pytest fixtures for the fake cloud APIs (loaded by tests/conftest.py as ``mailrig.cloud_fixtures``).

Session-scoped, started once: ``token_book`` (:class:`mailrig.oauth_server.TokenBook`), ``identity_provider``
(:class:`mailrig.oauth_server.IdentityProvider`: Microsoft v2.0 and Google token endpoints) and ``graph_server``
(:class:`mailrig.graph.FakeGraph`), both HTTPS on 127.0.0.1 with the rig's CA; ``rsa_app_certificate``: an RSA
certificate and its ``.pfx`` for a Microsoft app (the rig's own client certificate is EC, which Microsoft's
client assertions do not take).

Function-scoped: ``idp`` and ``graph`` are the same servers, reset (apps, tokens, mailboxes, faults) before
the test, with the library's process-wide token caches forgotten. A server that cannot start skips the
test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from enate_routing.transports._tokens import forget_cached_tokens
from mailrig.fixtures import server_unavailable
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider, TokenBook
from mailrig.pki import Pki

__all__ = ["RsaCertificate", "graph", "graph_server", "identity_provider", "idp", "rsa_app_certificate",
           "token_book"]


@dataclass(frozen=True)
class RsaCertificate:
    pfx: Path
    password: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@pytest.fixture(scope="session")
def token_book() -> TokenBook:
    return TokenBook()


@pytest.fixture(scope="session")
def identity_provider(pki: Pki, token_book: TokenBook) -> Iterator[IdentityProvider]:
    try:
        server = IdentityProvider(pki, token_book).start()
    except OSError as exc:
        server_unavailable(f"fake identity provider did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def graph_server(pki: Pki, token_book: TokenBook) -> Iterator[FakeGraph]:
    try:
        server = FakeGraph(pki, token_book).start()
    except OSError as exc:
        server_unavailable(f"fake Graph API did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.reset()
    forget_cached_tokens()  # a token cached by an earlier test keeps that test's app roles
    return identity_provider


@pytest.fixture
def graph(graph_server: FakeGraph, idp: IdentityProvider) -> FakeGraph:
    graph_server.reset()
    return graph_server


@pytest.fixture(scope="session")
def rsa_app_certificate(tmp_path_factory: pytest.TempPathFactory) -> RsaCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enate-routing test app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    password = "app-pfx-password"
    path = Path(tmp_path_factory.mktemp("app")) / "app.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(password.encode())))
    path.chmod(0o600)
    return RsaCertificate(path, password, cert, key)
