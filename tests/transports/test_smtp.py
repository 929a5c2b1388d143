"""SmtpSender against aiosmtpd: every auth method, STARTTLS and SMTPS, client certificates, OAuth."""

from __future__ import annotations

import socket

import pytest

from enate_routing._certificates import ClientCertificate
from enate_routing.errors import (
    AuthenticationError,
    CertificateRejectedError,
    ConnectError,
    InsecureConnectionError,
    ProtocolError,
    TLSVerificationError,
    TransportTimeoutError,
)
from enate_routing.transports import (
    CertificateAuth,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
    SmtpSender,
    check_smtp_connection,
)
from mailrig.dovecot import ALICE, BOB
from mailrig.faults import CuttingProxy, SilentServer
from mailrig.pki import Pki
from mailrig.smtp import SmtpServers
from mailrig.util import KEEPALIVE_EXPECTED, EndpointFactory, assert_no_secret, keepalive_options, message

pytestmark = pytest.mark.servers

HELO = "client.example.test"
FROM, TO = "support@example.test", ["customer@example.net", "cc@example.net"]


def send(endpoint: object, credentials: object, subject: str = "ack") -> bytes:
    raw = message(subject)
    with SmtpSender(endpoint, credentials, local_hostname=HELO) as sender:  # type: ignore[arg-type]
        assert sender.send(FROM, TO, raw) == {}
    return raw


def test_open_relay_without_auth(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """NoAuth over a plain connection sends, with the envelope kept apart from the headers."""
    raw = send(smtp_endpoint("open", "none"), NoAuth())
    [got] = smtp_inbox.received("open")
    assert (got.mail_from, got.rcpt_tos, got.data, got.login) == (FROM, tuple(TO), raw, None)


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
def test_a_kept_connection_keeps_itself_alive(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """The sender keeps its connection between acknowledgements: keepalive probes hold it open through NAT."""
    with SmtpSender(smtp_endpoint("submission", "starttls"), PasswordAuth(ALICE.login, ALICE.password),
                    local_hostname=HELO) as sender:
        sender.send(FROM, TO, message("one"))
        assert sender._conn is not None and sender._conn.sock is not None
        assert keepalive_options(sender._conn.sock.fileno()) == KEEPALIVE_EXPECTED


def test_connection_reused_and_renewed(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """Two sends share one connection; a connection the server dropped is replaced before the next send."""
    with SmtpSender(smtp_endpoint("submission", "starttls"), PasswordAuth(ALICE.login, ALICE.password),
                    local_hostname=HELO) as sender:
        sender.send(FROM, TO, message("one"))
        first = sender._conn
        sender.send(FROM, TO, message("two"))
        assert sender._conn is first
        assert first is not None
        first.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]  # as if the server dropped it
        sender.send(FROM, TO, message("three"))
        assert sender._conn is not first
    assert len(smtp_inbox.received("submission")) == 3


@pytest.mark.parametrize("method", ["auto", "plain", "login"])
@pytest.mark.parametrize(("mode", "security"), [("submission", "starttls"), ("smtps_auth", "ssl")])
def test_password_auth(
    smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory, method: str, mode: str, security: str
) -> None:
    """PLAIN and LOGIN work over STARTTLS and SMTPS, with Bob's 50-character password."""
    send(smtp_endpoint(mode, security), PasswordAuth(BOB.login, BOB.password, method))  # type: ignore[arg-type]
    [got] = smtp_inbox.received(mode)
    assert got.login == BOB.login


@pytest.mark.parametrize("method", ["plain", "login"])
def test_wrong_password(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory, method: str) -> None:
    """A refused login is an AuthenticationError without the password; nothing is sent."""
    secret = 'Not "the" password \\ 50 {chars}'
    auth = PasswordAuth(ALICE.login, secret, method)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as caught:
        send(smtp_endpoint("submission", "starttls"), auth)
    assert_no_secret(secret, caught.value)
    result = check_smtp_connection(smtp_endpoint("submission", "starttls"), auth, local_hostname=HELO)
    assert (result.ok, result.error) == (False, "AuthenticationError")
    assert_no_secret(secret, result)
    assert smtp_inbox.messages == []


def test_plaintext_refused_by_client(smtp_endpoint: EndpointFactory) -> None:
    """A password over 'none' without allow_plaintext_auth is refused before connecting."""
    result = check_smtp_connection(smtp_endpoint("open", "none"), PasswordAuth(ALICE.login, ALICE.password))
    assert result.error == "InsecureConnectionError"


def test_plaintext_allowed_when_explicit(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """allow_plaintext_auth sends AUTH PLAIN over a plain connection where the server offers it."""
    send(smtp_endpoint("open", "none", allow_plaintext_auth=True), PasswordAuth(ALICE.login, ALICE.password))
    assert smtp_inbox.received("open")[0].login == ALICE.login


def test_plaintext_refused_by_server(smtp_endpoint: EndpointFactory) -> None:
    """A server that offers AUTH only after STARTTLS gives InsecureConnectionError on 'none'."""
    endpoint = smtp_endpoint("submission", "none", allow_plaintext_auth=True)
    with pytest.raises(InsecureConnectionError, match="STARTTLS"):
        send(endpoint, PasswordAuth(ALICE.login, ALICE.password))


def test_untrusted_server_certificate(smtp_endpoint: EndpointFactory, pki: Pki) -> None:
    """Trusting another CA refuses the server for STARTTLS and SMTPS."""
    for mode, security in (("submission", "starttls"), ("smtps_auth", "ssl")):
        result = check_smtp_connection(
            smtp_endpoint(mode, security, ca_file=pki.rogue_ca_pem), PasswordAuth(ALICE.login, ALICE.password)
        )
        assert (result.ok, result.error) == (False, "TLSVerificationError"), result.detail
    with pytest.raises(TLSVerificationError):
        send(smtp_endpoint("smtps_auth", "ssl", ca_file=pki.rogue_ca_pem), NoAuth())


# ---------------------------------------------------------------------------------------------- certificates
@pytest.mark.parametrize(("mode", "security"), [("starttls_cert", "starttls"), ("smtps_cert", "ssl")])
def test_client_certificate_accepted(
    smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory, client_cert: ClientCertificate, mode: str,
    security: str,
) -> None:
    """The .pfx certificate is presented over STARTTLS and SMTPS and the server sees its CN."""
    endpoint = smtp_endpoint(mode, security)
    send(endpoint, CertificateAuth(client_cert))
    [got] = smtp_inbox.received(mode)
    assert got.peer_cn == "relay-client.test"
    result = check_smtp_connection(endpoint, CertificateAuth(client_cert), local_hostname=HELO)
    assert result.ok, result.detail


@pytest.mark.parametrize(("mode", "security"), [("starttls_cert", "starttls"), ("smtps_cert", "ssl")])
@pytest.mark.parametrize("which", ["none", "rogue"])
def test_client_certificate_refused(
    smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory, rogue_cert: ClientCertificate, mode: str,
    security: str, which: str,
) -> None:
    """No certificate, or one from an untrusted CA, is CertificateRejectedError (TLS 1.3 late rejection)."""
    credentials = NoAuth() if which == "none" else CertificateAuth(rogue_cert)
    with pytest.raises(CertificateRejectedError):
        send(smtp_endpoint(mode, security), credentials)
    result = check_smtp_connection(smtp_endpoint(mode, security), credentials, local_hostname=HELO)
    assert (result.ok, result.error) == (False, "CertificateRejectedError")
    assert smtp_inbox.messages == []


def test_certificate_needs_tls(smtp_endpoint: EndpointFactory, client_cert: ClientCertificate) -> None:
    """A certificate cannot be presented on 'none': InsecureConnectionError before connecting."""
    result = check_smtp_connection(smtp_endpoint("open", "none"), CertificateAuth(client_cert))
    assert result.error == "InsecureConnectionError"


# ---------------------------------------------------------------------------------------------- OAuth
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_accepted(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory, mechanism: str) -> None:
    """A valid bearer token logs in with XOAUTH2 and OAUTHBEARER (RFC 7628)."""
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return "ya29.alice-test-token"

    send(smtp_endpoint("submission", "starttls"), OAuth2Auth(ALICE.login, provider, mechanism))  # type: ignore[arg-type]
    assert smtp_inbox.received("submission")[0].login == ALICE.login
    assert calls == [1]  # one fresh token per login


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_refused(smtp_endpoint: EndpointFactory, mechanism: str) -> None:
    """A bad token is an AuthenticationError (after the error challenge is answered); the token never shows."""
    token = "ya29.expired-Canary-Token"
    auth = OAuth2Auth(ALICE.login, lambda: token, mechanism)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as caught:
        send(smtp_endpoint("submission", "starttls"), auth)
    assert_no_secret(token, caught.value)
    result = check_smtp_connection(smtp_endpoint("submission", "starttls"), auth, local_hostname=HELO)
    assert result.error == "AuthenticationError"
    assert_no_secret(token, result)


def test_oauth_provider_failure(smtp_endpoint: EndpointFactory) -> None:
    """A token provider that raises gives an AuthenticationError naming only the exception type."""

    def provider() -> str:
        raise RuntimeError("refresh token secret-refresh-123 revoked")

    result = check_smtp_connection(
        smtp_endpoint("submission", "starttls"), OAuth2Auth(ALICE.login, provider), local_hostname=HELO
    )
    assert (result.error, result.ok) == ("AuthenticationError", False)
    assert "RuntimeError" in result.detail
    assert_no_secret("secret-refresh-123", result)


# ---------------------------------------------------------------------------------------------- faults
def test_connection_test_success(smtp_endpoint: EndpointFactory) -> None:
    """check_smtp_connection runs EHLO, STARTTLS, AUTH and NOOP and reports the extensions."""
    result = check_smtp_connection(
        smtp_endpoint("submission", "starttls"), PasswordAuth(BOB.login, BOB.password), local_hostname=HELO
    )
    assert result.ok, result.detail
    assert "AUTH" in result.capabilities
    assert result.elapsed > 0


def test_server_closes_mid_command(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """A connection cut at DATA is a retryable ConnectError and nothing was delivered."""
    with CuttingProxy(smtp_inbox.ports["open"], cut_on=b"DATA") as proxy:
        with pytest.raises(ConnectError) as caught:
            send(smtp_endpoint("open", "none", port=proxy.port), NoAuth())
        assert caught.value.retryable
    assert proxy.cuts == 1
    assert smtp_inbox.messages == []


def test_timeout(smtp_endpoint: EndpointFactory) -> None:
    """A server that never greets gives TransportTimeoutError for SMTP and SMTPS."""
    with SilentServer() as silent:
        for security in ("none", "ssl"):
            with pytest.raises(TransportTimeoutError):
                send(smtp_endpoint("open", security, port=silent.port, timeout=0.5), NoAuth())


def test_bare_line_feeds_go_out_as_crlf(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """A message written with LF (or CR) line endings — the email package's default — goes out in CRLF lines
    (RFC 5321 §2.3.8); servers hardened against SMTP smuggling refuse a bare LF."""
    crlf = message("line endings", body="one\r\ntwo\r\n")
    with SmtpSender(smtp_endpoint("open", "none"), NoAuth(), local_hostname=HELO) as sender:
        sender.send(FROM, TO, crlf.replace(b"\r\n", b"\n"))
        sender.send(FROM, TO, crlf.replace(b"\r\n", b"\r"))
    assert [got.data for got in smtp_inbox.received("open")] == [crlf, crlf]


def test_a_utf8_address_goes_out_with_smtputf8(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory) -> None:
    """RFC 6531: MAIL FROM with SMTPUTF8, and the UTF-8 address as it is."""
    raw = message("intl").replace(b"To: support@example.test", "To: jürgen@example.net".encode())
    with SmtpSender(smtp_endpoint("submission", "starttls"), PasswordAuth(ALICE.login, ALICE.password),
                    local_hostname=HELO) as sender:
        assert sender.send(FROM, ["jürgen@example.net", "cc@example.net"], raw) == {}
    [got] = smtp_inbox.received("submission")
    assert (got.rcpt_tos, got.data) == (("jürgen@example.net", "cc@example.net"), raw)


def test_a_server_without_smtputf8_refuses_a_utf8_address_for_good(smtp_inbox: SmtpServers,
                                                                   smtp_endpoint: EndpointFactory) -> None:
    """Not retryable (retrying cannot help); the connection is not reused, and the next message goes out."""
    with SmtpSender(smtp_endpoint("open", "none"), NoAuth(), local_hostname=HELO) as sender:
        with pytest.raises(ProtocolError, match="SMTPUTF8") as refused:
            sender.send(FROM, ["jürgen@example.net"], message("intl"))
        assert refused.value.retryable is False
        assert sender.send(FROM, TO, message("after")) == {}
    [got] = smtp_inbox.received("open")
    assert got.rcpt_tos == tuple(TO)
