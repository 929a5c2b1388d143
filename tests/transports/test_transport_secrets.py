"""No password or token appears in any error message, chained exception, repr or connection-test result."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Literal

import pytest

from enate_routing.errors import TransportError
from enate_routing.transports import (
    ConnectionTestResult,
    Credentials,
    Endpoint,
    ImapSource,
    OAuth2Auth,
    PasswordAuth,
    Pop3Source,
    SmtpSender,
    check_imap_connection,
    check_pop3_connection,
    check_smtp_connection,
)
from mailrig.dovecot import ALICE, Dovecot
from mailrig.faults import EchoingImapServer, SilentServer
from mailrig.smtp import SmtpServers
from mailrig.util import EndpointFactory, assert_no_secret

pytestmark = pytest.mark.servers

PASSWORD = 'Canary "P4ss\\word" {42} %*'  # quoting-hostile, 26 characters
TOKEN = "ya29.Canary-Token-0123456789"

Tester = Callable[[Endpoint, Credentials], ConnectionTestResult]


def _imap(endpoint: Endpoint, credentials: Credentials) -> ConnectionTestResult:
    return check_imap_connection(endpoint, credentials)  # type: ignore[arg-type]


def _pop3(endpoint: Endpoint, credentials: Credentials) -> ConnectionTestResult:
    return check_pop3_connection(endpoint, credentials)  # type: ignore[arg-type]


def _smtp(endpoint: Endpoint, credentials: Credentials) -> ConnectionTestResult:
    return check_smtp_connection(endpoint, credentials, local_hostname="client.example.test")


def _raise(endpoint: Endpoint, credentials: Credentials, protocol: str) -> TransportError:
    adapter: ImapSource | Pop3Source | SmtpSender
    try:
        if protocol == "smtp":
            with SmtpSender(endpoint, credentials, local_hostname="client.example.test") as adapter:
                adapter.send("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx\r\n")
        else:
            cls = ImapSource if protocol == "imap" else Pop3Source
            with cls(endpoint, credentials) as adapter:  # type: ignore[arg-type]
                adapter.list_new()
    except TransportError as exc:
        assert_no_secret(PASSWORD, adapter)
        assert_no_secret(TOKEN, adapter)
        return exc
    raise AssertionError("expected a TransportError")


@pytest.fixture
def cases(
    mailboxes: Dovecot, smtp_servers: SmtpServers, imap_endpoint: EndpointFactory,
    pop3_endpoint: EndpointFactory, smtp_endpoint: EndpointFactory,
) -> list[tuple[str, Tester, Endpoint, Credentials]]:
    password = PasswordAuth(ALICE.login, PASSWORD)
    oauth = OAuth2Auth(ALICE.login, lambda: TOKEN)
    return [
        ("imap", _imap, imap_endpoint("ssl"), password),
        ("imap", _imap, imap_endpoint("starttls"), PasswordAuth(ALICE.login, PASSWORD, "login")),
        ("imap", _imap, imap_endpoint("none"), password),
        ("imap", _imap, imap_endpoint("none", allow_plaintext_auth=True, source_address="127.0.0.2"), password),
        ("imap", _imap, imap_endpoint("ssl"), oauth),
        ("pop3", _pop3, pop3_endpoint("ssl"), password),
        ("pop3", _pop3, pop3_endpoint("starttls"), PasswordAuth(ALICE.login, PASSWORD, "login")),
        ("pop3", _pop3, pop3_endpoint("none", allow_plaintext_auth=True, source_address="127.0.0.2"), password),
        ("pop3", _pop3, pop3_endpoint("ssl"), oauth),
        ("smtp", _smtp, smtp_endpoint("submission", "starttls"), password),
        ("smtp", _smtp, smtp_endpoint("submission", "starttls"), PasswordAuth(ALICE.login, PASSWORD, "login")),
        ("smtp", _smtp, smtp_endpoint("smtps_auth", "ssl"), oauth),
        ("smtp", _smtp, smtp_endpoint("submission", "none", allow_plaintext_auth=True), password),
        ("smtp", _smtp, smtp_endpoint("open", "none"), oauth),
    ]


def test_no_secret_in_failures(cases: list[tuple[str, Tester, Endpoint, Credentials]]) -> None:
    """Every failure path (refused login, refused plaintext, bad token) keeps the secret out of sight."""
    for protocol, tester, endpoint, credentials in cases:
        result = tester(endpoint, credentials)
        assert not result.ok, (protocol, endpoint, credentials)
        assert_no_secret(PASSWORD, result)
        assert_no_secret(TOKEN, result)
        error = _raise(endpoint, credentials, protocol)
        assert_no_secret(PASSWORD, error)
        assert_no_secret(TOKEN, error)


def test_no_secret_in_timeouts(imap_endpoint: EndpointFactory) -> None:
    """A timeout while authenticating carries no secret either."""
    with SilentServer() as silent:
        for protocol, tester in (("imap", _imap), ("pop3", _pop3), ("smtp", _smtp)):
            endpoint = imap_endpoint("none", port=silent.port, timeout=0.3, allow_plaintext_auth=True)
            result = tester(endpoint, PasswordAuth(ALICE.login, PASSWORD))
            assert result.error == "TransportTimeoutError", protocol
            assert_no_secret(PASSWORD, result)


NON_ASCII = "Pässwörd-Canary-ünicode"


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_no_secret_on_the_chain_of_a_non_ascii_password(
    mailboxes: Dovecot, imap_endpoint: EndpointFactory, pop3_endpoint: EndpointFactory, protocol: str
) -> None:
    """A password the protocol cannot encode fails without leaving it on any chained exception."""
    endpoint = imap_endpoint("ssl") if protocol == "imap" else pop3_endpoint("ssl")
    credentials = PasswordAuth(ALICE.login, NON_ASCII, "login")
    try:
        cls = ImapSource if protocol == "imap" else Pop3Source
        with cls(endpoint, credentials) as adapter:
            adapter.list_new()
    except TransportError as error:
        assert_no_secret(NON_ASCII, error)
    else:
        raise AssertionError("a non-ASCII LOGIN password should be refused")


@pytest.mark.parametrize(("plain", "method"), [(True, "auto"), (False, "login")])
def test_no_secret_when_the_server_echoes_what_it_received(
    imap_endpoint: EndpointFactory, plain: bool, method: Literal["auto", "login"]
) -> None:
    """A server quoting the SASL PLAIN response (base64) or the LOGIN line (a quoted string, its backslashes
    and quotes escaped) in its refusal: the password is hidden in those forms too."""
    quoted = PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
    plain_response = base64.b64encode(f"\0{ALICE.login}\0{PASSWORD}".encode()).decode()
    echoed = plain_response if plain else quoted
    with EchoingImapServer(plain=plain) as server:
        endpoint = imap_endpoint("none", port=server.port, timeout=2, allow_plaintext_auth=True)
        result = _imap(endpoint, PasswordAuth(ALICE.login, PASSWORD, method))
    assert echoed.encode() in b"".join(server.received)  # what a careless server quotes back
    assert result.error == "AuthenticationError"
    assert "***" in result.detail, result
    for form in (PASSWORD, quoted, plain_response):
        assert_no_secret(form, result)


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_line_break_in_the_credentials_is_never_sent(imap_endpoint: EndpointFactory, field: str) -> None:
    """A password with CRLF would end the LOGIN command early and run the rest as a command (an injection)."""
    injected = "x\r\nX1 DELETE INBOX"
    credentials = PasswordAuth(injected, "pw") if field == "username" else PasswordAuth(ALICE.login, injected)
    with EchoingImapServer(plain=False) as server:
        endpoint = imap_endpoint("none", port=server.port, timeout=2, allow_plaintext_auth=True)
        result = _imap(endpoint, credentials)
        sent = b"".join(server.received)
    assert result.error == "AuthenticationError"
    assert f"the {field} contains a line break or NUL" in result.detail
    assert b"LOGIN" not in sent and b"DELETE" not in sent
