"""Token acquisition from the configuration against the fake identity provider (MSAL and google-auth flows)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from enate_routing._model import Connector
from enate_routing._token_files import write_token_file
from enate_routing.errors import AuthenticationError, CertificateError, ConfigError
from enate_routing.transports._factory import ConnectorAccess, check_connection, open_source
from enate_routing.transports._token_sources import token_source
from enate_routing.transports._tokens import CachedToken, read_refresh_token
from enate_routing.transports._tokens_microsoft import MicrosoftApp, refresh_token_flow
from mailrig.cloud_fixtures import RsaCertificate
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider
from mailrig.pki import Pki
from mailrig.util import assert_no_secret, message
from transports.cloud_config import DESK, ENV, SECRET, graph_connector, register_app, service_account_file

pytestmark = pytest.mark.servers


def test_certificate_flow_signs_a_client_assertion(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                   rsa_app_certificate: RsaCertificate) -> None:
    """The .pfx key signs the client assertion the provider verifies against the registered certificate."""
    register_app(idp, secret=None, certificate=rsa_app_certificate.certificate)
    graph.deliver(DESK, message("cert"))
    connector = graph_connector(graph, idp, pki, oauth={"flow": "certificate", "client_secret_env": None},
                                certificate=str(rsa_app_certificate.pfx),
                                certificate_password=rsa_app_certificate.password)
    with open_source(connector, ConnectorAccess(timeout=5)) as src:
        assert len(src.list_new()) == 1
    assert "client_credentials" in idp.requests


def test_ec_certificate_is_refused_before_any_request(graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """Microsoft's client assertions are RSA only: an EC .pfx is a CertificateError naming the reason."""
    connector = graph_connector(graph, idp, pki, oauth={"flow": "certificate", "client_secret_env": None},
                                certificate=str(pki.client_pfx), certificate_password=pki.pfx_password)
    with pytest.raises(CertificateError, match="RSA"):
        open_source(connector, ConnectorAccess(timeout=5))
    assert idp.requests == []


def test_wrong_secret_is_an_authentication_error_without_the_secret(graph: FakeGraph, idp: IdentityProvider,
                                                                   pki: Pki) -> None:
    """invalid_client: AuthenticationError, and neither the secret nor a token appears anywhere in it."""
    register_app(idp, secret="the-right-one")
    graph.mailbox(DESK)
    connector = graph_connector(graph, idp, pki, name="Wrong secret")
    with open_source(connector, ConnectorAccess(environ=ENV, timeout=5)) as src, pytest.raises(
            AuthenticationError, match="invalid_client") as caught:
        src.list_new()
    assert_no_secret(SECRET, caught.value)
    result = check_connection(connector, ConnectorAccess(environ=ENV, timeout=5))[0]
    assert not result.ok and result.error == "AuthenticationError"
    assert_no_secret(SECRET, result)


def test_tokens_are_cached_across_sources_and_hidden_from_repr(graph: FakeGraph, idp: IdentityProvider,
                                                               pki: Pki) -> None:
    """A second pass reuses the live token (no new token request); reprs show no token."""
    register_app(idp)
    graph.mailbox(DESK)
    connector = graph_connector(graph, idp, pki, name="Cached")
    access = ConnectorAccess(environ=ENV, timeout=5)
    for _ in range(3):
        with open_source(connector, access) as src:
            src.list_new()
    assert idp.requests.count("client_credentials") == 1
    source = token_source(connector, "graph", DESK, host_provider=None, graph_host=f"127.0.0.1:{graph.port}",
                          environ=ENV, timeout=5)
    assert isinstance(source, CachedToken)
    token = source.token()
    assert_no_secret(token, source, source._current)


def test_cache_renews_before_expiry() -> None:
    """A token is handed out until the margin before its expiry, then acquired again."""
    now = [0.0]
    issued: list[str] = []

    def acquire() -> tuple[str, float]:
        issued.append(f"t{len(issued)}")
        return issued[-1], 3600.0

    cache = CachedToken(acquire, label="test", clock=lambda: now[0])
    assert cache.token() == "t0"
    now[0] = 3600 - 301
    assert cache.token() == "t0"
    now[0] = 3600 - 299
    assert cache.token() == "t1"
    cache.invalidate("t0")  # not the current token: nothing happens
    assert cache.token() == "t1"
    cache.invalidate("t1")
    assert cache.token() == "t2"


def test_acquiring_and_losing_a_token_is_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """Each acquisition is one info record naming the source and when it is renewed; a token the server
    refused is one more; a refused token that is no longer the current one logs nothing. No token value."""
    now = [0.0]
    issued: list[str] = []

    def acquire() -> tuple[str, float]:
        issued.append(f"secret-token-{len(issued)}")
        return issued[-1], 3600.0

    caplog.set_level(logging.INFO, logger="enate_routing.transports")
    cache = CachedToken(acquire, label="microsoft client-secret for connector 'Support'", clock=lambda: now[0])
    cache.token()
    cache.token()  # cached: no record
    cache.invalidate("secret-token-0")
    cache.invalidate("secret-token-0")  # no longer current: no record
    cache.token()
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "access token acquired (microsoft client-secret for connector 'Support'); renewed in 3300 s",
        "access token refused by the server (microsoft client-secret for connector 'Support'); "
        "a new one is acquired on next use",
        "access token acquired (microsoft client-secret for connector 'Support'); renewed in 3300 s",
    ]
    first = caplog.records[0]
    assert (first.token_source, first.lifetime, first.renew_in, first.acquisitions) == (  # type: ignore[attr-defined]
        "microsoft client-secret for connector 'Support'", 3600.0, 3300.0, 1)
    assert caplog.records[2].acquisitions == 2  # type: ignore[attr-defined]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "secret-token" not in logged


def test_refresh_token_file_rules(tmp_path: Path) -> None:
    """The token file is written 0600, read back, refused when others may read it, and explained when missing."""
    path = tmp_path / "tokens" / "desk.json"
    with pytest.raises(ConfigError, match="enate-routing login"):
        read_refresh_token(path, "connector 'x'", provider="microsoft", client_id="app-1")
    write_token_file(path, "rt-1", provider="microsoft")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_refresh_token(path, "connector 'x'", provider="microsoft", client_id="app-1") == "rt-1"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_refresh_token(path, "connector 'x'", provider="microsoft", client_id="app-1")


def test_a_missing_token_file_is_reported_before_the_identity_provider_is_asked(tmp_path: Path) -> None:
    """Before `login`, the delegated flow says "sign in first", not a network error of an authority it need not
    ask yet (which `poll` would retry for a minute and then report as an outage)."""
    unreachable = MicrosoftApp("contoso.example", "app-1", authority="https://127.0.0.1:1", timeout=2)
    acquire = refresh_token_flow(unreachable, ["Mail.ReadWrite"], tmp_path / "never-signed-in.json")
    with pytest.raises(ConfigError, match="no token file: sign in first"):
        acquire()


def test_delegated_refresh_token_is_rotated_and_stored_back(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                            tmp_path: Path) -> None:
    """The refresh-token flow reads the file, gets a delegated token, and writes the rotated refresh token."""
    register_app(idp)
    graph.deliver(DESK, message("delegated"))
    first = idp.new_refresh_token("app-1", DESK, {"Mail.ReadWrite"})
    token_file = tmp_path / "desk.token"
    write_token_file(token_file, first)
    connector = graph_connector(graph, idp, pki, name="Delegated", oauth={
        "flow": "refresh-token", "client_secret_env": None, "token_file": str(token_file)})
    with open_source(connector, ConnectorAccess(timeout=5)) as src:
        assert len(src.list_new()) == 1
    rotated = json.loads(token_file.read_text())["refresh_token"]
    assert rotated != first and rotated in idp.refresh_tokens
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_delegate_reads_a_shared_mailbox_only_when_granted(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                           tmp_path: Path) -> None:
    """A delegated token opens another user's mailbox only after the owner granted access (403 before)."""
    register_app(idp)
    shared = "shared@contoso.test"
    graph.deliver(shared, message("for the team"))
    token_file = tmp_path / "desk.token"
    write_token_file(token_file, idp.new_refresh_token("app-1", DESK, {"Mail.ReadWrite"}))
    connector = graph_connector(graph, idp, pki, name="Delegate", additional_mailbox=shared, oauth={
        "flow": "refresh-token", "client_secret_env": None, "token_file": str(token_file)})
    access = ConnectorAccess(timeout=5)
    with open_source(connector, access, mailbox="additional") as src, pytest.raises(AuthenticationError,
                                                                                     match="ErrorAccessDenied"):
        src.list_new()
    graph.grant(shared, DESK)
    with open_source(connector, access, mailbox="additional") as src:
        assert len(src.list_new()) == 1


def _gmail(pki: Pki, idp: IdentityProvider, oauth: dict[str, object], name: str) -> Connector:
    return Connector.model_validate({
        "name": name, "service": "gmail-imap", "username": "desk@example.test", "primary_address": "desk@example.test",
        "use_for": "incoming", "oauth": {"provider": "google", "token_url": idp.google_token_url,
                                         "ca_file": str(pki.ca_pem)} | oauth,
    })


def test_google_service_account_acts_for_the_mailbox(idp: IdentityProvider, pki: Pki, tmp_path: Path) -> None:
    """Domain-wide delegation: the JWT names the mailbox as subject; a mailbox not delegated is refused."""
    key_file = service_account_file(tmp_path, idp, {"desk@example.test"})
    connector = _gmail(pki, idp, {"flow": "service-account", "service_account_file": str(key_file)}, "Gmail SA")
    token = token_source(connector, "imap", "desk@example.test", host_provider=None, timeout=5).token()
    grant = idp.book.check(token)
    assert grant is not None and grant.user == "desk@example.test"
    assert grant.permissions == {"https://mail.google.com/"}
    other = token_source(connector, "imap", "boss@example.test", host_provider=None, timeout=5)
    with pytest.raises(AuthenticationError, match="unauthorized_client"):
        other.token()


def test_google_refresh_token_flow(idp: IdentityProvider, pki: Pki, tmp_path: Path) -> None:
    """A user's refresh token and the OAuth client's id and secret give a token for that user."""
    with idp.lock:
        idp.google_clients["client-9.apps.googleusercontent.test"] = "google-secret"
    refresh = idp.new_refresh_token("client-9.apps.googleusercontent.test", "desk@example.test",
                                    {"https://mail.google.com/"})
    token_file = tmp_path / "gmail.token"
    write_token_file(token_file, refresh)
    connector = _gmail(pki, idp, {"flow": "refresh-token", "client_id": "client-9.apps.googleusercontent.test",
                                  "client_secret_env": "GOOGLE_SECRET", "token_file": str(token_file)}, "Gmail RT")
    source = token_source(connector, "imap", "desk@example.test", host_provider=None,
                          environ={"GOOGLE_SECRET": "google-secret"}, timeout=5)
    grant = idp.book.check(source.token())
    assert grant is not None and grant.user == "desk@example.test"
    wrong = token_source(_gmail(pki, idp, {"flow": "refresh-token", "client_id": "client-9.apps.googleusercontent.test",
                                           "client_secret_env": "GOOGLE_SECRET", "token_file": str(token_file)},
                                "Gmail wrong"), "imap", "desk@example.test", host_provider=None,
                         environ={"GOOGLE_SECRET": "not-it"}, timeout=5)
    with pytest.raises(AuthenticationError) as caught:
        wrong.token()
    assert_no_secret("not-it", caught.value)
    assert_no_secret(refresh, caught.value)


def test_untrusted_identity_provider_is_a_tls_error_even_with_requests_ca_bundle(
        graph: FakeGraph, idp: IdentityProvider, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """ca_file decides trust: a rogue CA fails, and REQUESTS_CA_BUNDLE cannot replace the configured file."""
    from enate_routing.errors import TLSVerificationError

    register_app(idp)
    graph.mailbox(DESK)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_pem))
    connector = graph_connector(graph, idp, pki, name="Rogue CA", oauth={"ca_file": str(pki.rogue_ca_pem)})
    with open_source(connector, ConnectorAccess(environ=ENV, timeout=5)) as src, pytest.raises(TLSVerificationError):
        src.list_new()
    assert os.environ["REQUESTS_CA_BUNDLE"] == str(pki.ca_pem)


def test_debug_logging_never_shows_a_secret_or_token(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                     tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG (ours, MSAL's, urllib3's), no client secret, refresh or access token is logged."""
    register_app(idp)
    graph.deliver(DESK, message("logged"))
    refresh = idp.new_refresh_token("app-1", DESK, {"Mail.ReadWrite"})
    token_file = tmp_path / "desk.token"
    write_token_file(token_file, refresh)
    caplog.set_level(logging.DEBUG)
    for name, oauth in (("Logged secret", None),
                        ("Logged refresh", {"flow": "refresh-token", "token_file": str(token_file)})):
        with open_source(graph_connector(graph, idp, pki, name=name, oauth=oauth),
                         ConnectorAccess(environ=ENV, timeout=5)) as src:
            (ref,) = src.list_new()
            src.fetch(ref)
    assert caplog.records, "nothing was logged at all: the test would prove nothing"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    tokens = list(graph.book.grants)
    for secret in (SECRET, refresh, *tokens, *idp.refresh_tokens):
        assert secret not in logged


@pytest.mark.parametrize(("modules", "extra"), [(["msal"], "microsoft"),
                                                (["google.auth", "google.oauth2"], "google")])
def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch, modules: list[str],
                                               extra: str) -> None:
    """Without the provider library, the error says which extra to install (no ImportError traceback)."""
    from enate_routing.transports import _tokens_google, _tokens_microsoft

    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    load = _tokens_microsoft._msal if extra == "microsoft" else _tokens_google._libraries
    with pytest.raises(ConfigError, match=rf"pip install 'enate-routing\[{extra}\]'"):
        load()
