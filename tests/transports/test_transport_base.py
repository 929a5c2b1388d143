"""The transport dataclasses and protocols: validation, stable keys, and no secret in a repr."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
from pathlib import Path

import pytest

from enate_routing.errors import (
    AuthenticationError,
    ConnectError,
    InsecureConnectionError,
    MailboxMissingError,
    ProtocolError,
    UidValidityChangedError,
)
from enate_routing.transports import (
    ConnectionTestResult,
    Endpoint,
    ImapSource,
    MailSender,
    MailSource,
    MessageRef,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
    Pop3Source,
    SmtpSender,
    _sasl,
    check_imap_connection,
    check_pop3_connection,
    check_smtp_connection,
)
from enate_routing.transports._errors import Stage, translate
from mailrig.util import assert_no_secret

SECRET = "Canary-Pa55word!"


def test_password_auth_repr_hides_the_password() -> None:
    """repr/str of PasswordAuth never show the password."""
    auth = PasswordAuth("alice@example.test", SECRET)
    assert "alice@example.test" in repr(auth)
    assert_no_secret(SECRET, auth, [auth], {"a": auth})


def test_oauth_auth_repr_hides_the_provider() -> None:
    """OAuth2Auth's repr shows the user and mechanism, not the token provider."""
    auth = OAuth2Auth("alice@example.test", lambda: SECRET, "OAUTHBEARER")
    assert "OAUTHBEARER" in repr(auth)
    assert_no_secret(SECRET, auth)


def test_adapter_reprs_hold_no_secret() -> None:
    """Constructing adapters (which do not connect yet) leaves the secret out of every repr."""
    endpoint = Endpoint("127.0.0.1", 1, "ssl")
    auth = PasswordAuth("u", SECRET)
    for adapter in (ImapSource(endpoint, auth), Pop3Source(endpoint, auth), SmtpSender(endpoint, auth)):
        assert_no_secret(SECRET, adapter, vars(adapter).get("credentials"))


def test_message_ref_keys() -> None:
    """IMAP refs key on mailbox, UIDVALIDITY and UID; POP3 refs on the UIDL; Graph refs on the immutable id."""
    imap = MessageRef("INBOX", uid=7, uidvalidity=42)
    pop = MessageRef("INBOX", uidl="000000016b08616e")
    ident = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"
    graph = MessageRef("desk@contoso.test/inbox", graph_id=ident)
    assert (imap.protocol, imap.key) == ("imap", "imap:INBOX:42:7")
    assert (pop.protocol, pop.key) == ("pop3", "pop3:INBOX:000000016b08616e")
    assert (graph.protocol, graph.key) == ("graph", f"graph:desk@contoso.test/inbox/{ident}")
    assert graph.uidl is None and graph.uid is None
    assert MessageRef("INBOX", uid=7, uidvalidity=42) == imap
    assert hash(imap) == hash(MessageRef("INBOX", uid=7, uidvalidity=42))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"uid": 1}, {"uidvalidity": 1}, {"uid": 1, "uidvalidity": 1, "uidl": "x"}, {"uid": 1, "uidl": "x"},
     {"uidl": "x", "graph_id": "y"}, {"uid": 1, "uidvalidity": 1, "graph_id": "y"},
     {"uidvalidity": 1, "graph_id": "y"}],
)
def test_message_ref_needs_one_complete_id(kwargs: dict[str, object]) -> None:
    """A ref is (uid, uidvalidity), uidl or graph_id — never partial, never two."""
    with pytest.raises(ValueError, match="MessageRef"):
        MessageRef("INBOX", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"host": "", "port": 993}, "host"),
        ({"host": "h", "port": 0}, "port"),
        ({"host": "h", "port": 993, "security": "tls"}, "security"),
        ({"host": "h", "port": 993, "timeout": 0}, "timeout"),
    ],
)
def test_endpoint_validation(kwargs: dict[str, object], match: str) -> None:
    """An endpoint with an empty host, bad port, unknown security or no timeout is refused."""
    with pytest.raises(ValueError, match=match):
        Endpoint(**kwargs)  # type: ignore[arg-type]


def test_adapters_satisfy_the_protocols() -> None:
    """The shipped adapters are MailSource / MailSender."""
    endpoint = Endpoint("127.0.0.1", 1)
    assert isinstance(ImapSource(endpoint, PasswordAuth("u", "p")), MailSource)
    assert isinstance(Pop3Source(endpoint, PasswordAuth("u", "p")), MailSource)
    assert isinstance(SmtpSender(endpoint, NoAuth()), MailSender)


def test_uidvalidity_error_carries_both_values() -> None:
    """UidValidityChangedError names the folder and both values, and is not retryable."""
    err = UidValidityChangedError("INBOX", 1, 2, server="imap://h:993")
    assert (err.mailbox, err.expected, err.actual, err.retryable) == ("INBOX", 1, 2, False)
    assert "changed from 1 to 2" in str(err)


def test_plaintext_refused_before_any_connection() -> None:
    """With security 'none' and no allow_plaintext_auth, no connection is even attempted."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "none", timeout=1)
        auth = PasswordAuth("u", SECRET)
        for adapter in (ImapSource(endpoint, auth), Pop3Source(endpoint, auth)):
            with pytest.raises(InsecureConnectionError) as caught:
                adapter.list_new()
            assert_no_secret(SECRET, caught.value)
        with pytest.raises(InsecureConnectionError):
            SmtpSender(endpoint, auth).send("a@example.test", ["b@example.test"], b"x")
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected


def test_connection_tests_return_a_typed_failure() -> None:
    """The test_*_connection functions report a refused port as a failed result instead of raising."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        endpoint = Endpoint("127.0.0.1", port, "ssl", timeout=2)
        results = [
            check_imap_connection(endpoint, PasswordAuth("u", SECRET)),
            check_pop3_connection(endpoint, PasswordAuth("u", SECRET)),
            check_smtp_connection(endpoint, PasswordAuth("u", SECRET), local_hostname="client.test"),
        ]
    for result in results:
        assert isinstance(result, ConnectionTestResult)
        assert (result.ok, result.error, result.retryable) == (False, "ConnectError", True)
        assert "refused" in result.detail
        assert_no_secret(SECRET, result)


def test_ca_file_missing_is_a_typed_failure(tmp_path: Path) -> None:
    """A ca_file that cannot be read is a TLSVerificationError result, not a crash."""
    endpoint = Endpoint("127.0.0.1", 1, "ssl", ca_file=tmp_path / "missing.pem")
    result = check_imap_connection(endpoint, PasswordAuth("u", "p"))
    assert (result.ok, result.error) == (False, "TLSVerificationError")
    assert "missing.pem" in result.detail


def test_connection_checks_are_not_named_like_pytest_tests() -> None:
    """No public name of the transports package starts with ``test``, so pytest never collects one."""
    import enate_routing.transports as transports
    from enate_routing.transports import _factory, _graph, _imap, _pop3, _smtp

    assert [n for n in transports.__all__ if n.startswith("test")] == []
    for module in (_factory, _graph, _imap, _pop3, _smtp):
        assert [n for n in vars(module) if n.startswith("test")] == [], module.__name__
    assert {"check_imap_connection", "check_pop3_connection", "check_smtp_connection",
            "check_graph_connection"} <= set(transports.__all__)


def test_every_transport_error_lives_in_errors_and_is_drawn_in_its_tree() -> None:
    """No exception class is defined under transports/; every class of errors.py appears in its tree."""
    import ast
    import inspect

    import enate_routing
    import enate_routing.errors as errors
    import enate_routing.transports as transports

    package = Path(transports.__file__).parent
    defined = [f"{path.name}: {node.name}" for path in sorted(package.glob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception"))]
    assert defined == []
    classes = [obj for obj in vars(errors).values()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__]
    tree = errors.__doc__ or ""
    assert [c.__name__ for c in classes if f" {c.__name__} " not in tree.replace("\n", " \n")] == []
    for cls in classes:  # one import path: enate_routing.errors, never the top level or the transports package
        assert cls.__name__ in errors.__all__
        assert not hasattr(enate_routing, cls.__name__) and not hasattr(transports, cls.__name__), cls.__name__


def test_a_failing_token_source_is_named_and_a_host_provider_only_by_type() -> None:
    """Our own token sources raise errors that name the endpoint and hold no secret: they are passed on. A host's
    provider may put anything in its exception (a refresh token): only its type is shown."""
    refused = ConnectError("connection refused", server="https://login.example.test:1")

    def ours() -> str:
        raise refused

    def theirs() -> str:
        raise RuntimeError(f"refresh token {SECRET} rejected")

    with pytest.raises(AuthenticationError, match=r"provider failed \(ConnectError: https://login\.example\.test:1: "
                                                  r"connection refused\)"):
        _sasl.oauth(OAuth2Auth("user@example.test", ours), "imap.example.test", 993)
    with pytest.raises(AuthenticationError, match=r"provider failed \(RuntimeError\)$") as caught:
        _sasl.oauth(OAuth2Auth("user@example.test", theirs), "imap.example.test", 993)
    assert_no_secret(SECRET, caught.value)


def test_what_cannot_be_encoded_is_not_retried_what_cannot_be_decoded_is() -> None:
    """An argument of ours that the protocol cannot carry fails the same way every time (a UTF-8 address
    without SMTPUTF8); an answer we could not decode may not come again. Neither is a bare UnicodeError."""
    encode = translate(UnicodeEncodeError("ascii", "jürgen", 1, 2, "ordinal not in range"), "command", "smtp://x")
    decode = translate(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "command", "imap://x")
    assert isinstance(encode, ProtocolError) and isinstance(decode, ProtocolError)
    assert (encode.retryable, decode.retryable) == (False, True)


@pytest.mark.parametrize(("exc", "stage"), [
    (imaplib.IMAP4.error(b"[UNAVAILABLE] Temporary authentication failure. [mx1:2026-12-02 09:00:00]"), "auth"),
    (imaplib.IMAP4.error("NO [INUSE] Mailbox is being expunged"), "mailbox"),
    (imaplib.IMAP4.error("NO [SERVERBUG] Internal error occurred. Refer to server log for more information."),
     "mailbox"),
    (poplib.error_proto(b"-ERR [IN-USE] Mailbox is locked by another POP3 session."), "auth"),
    (poplib.error_proto(b"-ERR [SYS/TEMP] Temporary authentication failure."), "auth"),
    (poplib.error_proto(b"-ERR [LOGIN-DELAY] Minimum time between logins not yet elapsed"), "auth"),
    (smtplib.SMTPAuthenticationError(454, b"4.7.0 Temporary authentication failure"), "auth"),
])
def test_a_server_that_cannot_log_in_now_is_retried_not_a_refusal(exc: Exception, stage: Stage) -> None:
    """A login or folder refused with a "not now" code (RFC 5530 §3, RFC 3206 §4, RFC 2449 §8.1, RFC 4954 §6)
    is a passing state of the server — its authentication back end down, another session holding the
    maildrop — not a refusal of the credentials: a retryable ProtocolError that says so."""
    error = translate(exc, stage, "imap://x")
    assert type(error) is ProtocolError and error.retryable
    assert f"a temporary failure during {stage}" in str(error)


@pytest.mark.parametrize("exc", [
    imaplib.IMAP4.error(b"[AUTHENTICATIONFAILED] Authentication failed."),
    imaplib.IMAP4.error(b"Authentication failed [UNAVAILABLE]"),  # a code only at the start counts
    poplib.error_proto(b"-ERR [AUTH] Authentication failed."),
    poplib.error_proto(b"-ERR [SYS/PERM] Your account is disabled"),
    smtplib.SMTPAuthenticationError(535, b"5.7.8 Error: authentication failed"),
    smtplib.SMTPAuthenticationError(432, b"4.7.12 A password transition is needed"),
])
def test_a_refusal_of_the_credentials_is_still_not_retried(exc: Exception) -> None:
    error = translate(exc, "auth", "imap://x")
    assert type(error) is AuthenticationError and not error.retryable


def test_a_folder_that_does_not_exist_is_still_missing() -> None:
    error = translate(imaplib.IMAP4.error("NO [NONEXISTENT] Mailbox doesn't exist: Nope"), "mailbox", "imap://x")
    assert type(error) is MailboxMissingError and not error.retryable
