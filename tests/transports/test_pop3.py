"""Pop3Source against a real Dovecot: STLS and POP3S, UIDL ids, DELE only after marking, commit on QUIT."""

from __future__ import annotations

import pytest

from enate_routing.errors import AuthenticationError, ConnectError, InsecureConnectionError, MessageGoneError
from enate_routing.transports import MessageRef, PasswordAuth, Pop3Source, check_pop3_connection
from mailrig.dovecot import ALICE, BOB, Dovecot
from mailrig.faults import CuttingProxy, SilentServer
from mailrig.util import EndpointFactory, assert_no_secret, message

pytestmark = pytest.mark.servers


def alice() -> PasswordAuth:
    return PasswordAuth(ALICE.login, ALICE.password)


def subjects(dovecot: Dovecot) -> list[str]:
    return [m["subject"] for m in dovecot.messages(ALICE)]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
@pytest.mark.parametrize("method", ["auto", "plain", "login"])
def test_login_each_security_and_method(
    mailboxes: Dovecot, pop3_endpoint: EndpointFactory, security: str, method: str
) -> None:
    """POP3S and STLS each accept AUTH PLAIN (RFC 5034) and USER/PASS; the test runs STAT."""
    mailboxes.deliver(ALICE, message("one"))
    result = check_pop3_connection(pop3_endpoint(security), PasswordAuth(ALICE.login, ALICE.password, method))
    assert result.ok, result.detail
    assert result.detail.startswith("maildrop has 1 messages")
    assert "UIDL" in result.capabilities


@pytest.mark.parametrize("method", ["plain", "login"])
def test_fifty_character_password(mailboxes: Dovecot, pop3_endpoint: EndpointFactory, method: str) -> None:
    """Bob's 50-character password works with AUTH PLAIN and with PASS (spaces included)."""
    result = check_pop3_connection(pop3_endpoint("starttls"), PasswordAuth(BOB.login, BOB.password, method))
    assert result.ok, result.detail


@pytest.mark.parametrize("method", ["plain", "login"])
def test_wrong_password(mailboxes: Dovecot, pop3_endpoint: EndpointFactory, method: str) -> None:
    """A wrong password is an AuthenticationError without the password in it."""
    secret = "Wrong pass: {50} %*"
    with pytest.raises(AuthenticationError) as caught:
        Pop3Source(pop3_endpoint(), PasswordAuth(ALICE.login, secret, method)).list_new()
    assert_no_secret(secret, caught.value)


def test_untrusted_server_certificate(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """Trusting another CA refuses the server over POP3S and STLS alike."""
    for security in ("ssl", "starttls"):
        result = check_pop3_connection(pop3_endpoint(security, ca_file=mailboxes.pki.rogue_ca_pem), alice())
        assert (result.ok, result.error) == (False, "TLSVerificationError")


def test_plaintext_refused_by_client(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """security 'none' without allow_plaintext_auth never sends USER/PASS."""
    result = check_pop3_connection(pop3_endpoint("none"), alice())
    assert result.error == "InsecureConnectionError"


@pytest.mark.parametrize("method", ["auto", "login", "plain"])
def test_plaintext_refused_by_server(mailboxes: Dovecot, pop3_endpoint: EndpointFactory, method: str) -> None:
    """From 127.0.0.2 Dovecot refuses plaintext logins; that is an InsecureConnectionError."""
    endpoint = pop3_endpoint("none", allow_plaintext_auth=True, source_address="127.0.0.2")
    with pytest.raises(InsecureConnectionError):
        Pop3Source(endpoint, PasswordAuth(ALICE.login, ALICE.password, method)).list_new()


def test_plaintext_allowed_when_explicit(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """With allow_plaintext_auth, a server that accepts plaintext (loopback to itself) logs in."""
    assert check_pop3_connection(pop3_endpoint("none", allow_plaintext_auth=True), alice()).ok


def test_uidl_ids_are_stable(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """Refs carry the UIDL, identical across sessions, and fetch returns the raw bytes."""
    raws = [message("a"), message("b")]
    for raw in raws:
        mailboxes.deliver(ALICE, raw)
    with Pop3Source(pop3_endpoint(), alice()) as source:
        first = source.list_new()
        assert [source.fetch(ref) for ref in first] == raws
    with Pop3Source(pop3_endpoint(), alice()) as source:
        assert source.list_new() == first
    assert all(ref.protocol == "pop3" and ref.uidl for ref in first)
    assert len({ref.key for ref in first}) == 2


def test_dele_only_after_marking_and_commit_on_quit(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """Fetching deletes nothing; marked messages are deleted only when QUIT commits them."""
    for subject in ("processed", "kept"):
        mailboxes.deliver(ALICE, message(subject))
    with Pop3Source(pop3_endpoint(), alice()) as source:
        processed, kept = source.list_new()
        source.fetch(processed)
        source.fetch(kept)
        source.mark_processed(processed)
        source.mark_processed(processed)  # idempotent
        assert source.list_new() == [kept]
        assert subjects(mailboxes) == ["processed", "kept"]  # not yet: no QUIT
    assert subjects(mailboxes) == ["kept"]


def test_dropped_connection_rolls_back_deletions(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """If the session ends without QUIT, the server forgets the DELE (RFC 1939 §6)."""
    mailboxes.deliver(ALICE, message("survivor"))
    with CuttingProxy(mailboxes.ports.pop3, cut_on=b"QUIT") as proxy:
        source = Pop3Source(pop3_endpoint("none", port=proxy.port, allow_plaintext_auth=True), alice())
        [ref] = source.list_new()
        source.mark_processed(ref)
        with pytest.raises(ConnectError):
            source.close()
    assert subjects(mailboxes) == ["survivor"]


def test_keep_on_server(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """delete_processed=False leaves processed mail on the server (the ledger alone de-duplicates)."""
    mailboxes.deliver(ALICE, message("stay"))
    with Pop3Source(pop3_endpoint(), alice(), delete_processed=False) as source:
        [ref] = source.list_new()
        source.mark_processed(ref)
    assert subjects(mailboxes) == ["stay"]


def test_message_gone(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """Fetching a UIDL that is no longer in the maildrop is MessageGoneError."""
    with Pop3Source(pop3_endpoint(), alice()) as source:
        with pytest.raises(MessageGoneError):
            source.fetch(MessageRef("INBOX", uidl="0000dead0000beef"))
        source.mark_processed(MessageRef("INBOX", uidl="0000dead0000beef"))  # gone: nothing to do


def test_server_closes_mid_command(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """A connection cut during RETR is a retryable ConnectError, and the source reconnects afterwards."""
    mailboxes.deliver(ALICE, message("x"))
    with CuttingProxy(mailboxes.ports.pop3, cut_on=b"RETR") as proxy, Pop3Source(
        pop3_endpoint("none", port=proxy.port, allow_plaintext_auth=True), alice()
    ) as source:
        [ref] = source.list_new()
        with pytest.raises(ConnectError) as caught:
            source.fetch(ref)
        assert caught.value.retryable
        assert source.list_new() == [ref]
    assert proxy.cuts == 1


def test_connection_cut_during_uidl_is_a_connect_error(mailboxes: Dovecot, pop3_endpoint: EndpointFactory) -> None:
    """A connection dropped during UIDL is a retryable ConnectError, not "the server does not support UIDL"."""
    mailboxes.deliver(ALICE, message("listed"))
    with CuttingProxy(mailboxes.ports.pop3, cut_on=b"UIDL") as proxy, Pop3Source(
        pop3_endpoint("none", port=proxy.port, allow_plaintext_auth=True), alice()
    ) as source:
        with pytest.raises(ConnectError) as caught:
            source.list_new()
        assert caught.value.retryable and "UIDL" in str(caught.value)
    assert proxy.cuts == 1
    with Pop3Source(pop3_endpoint(), alice()) as source:
        assert len(source.list_new()) == 1  # nothing was lost or deleted by the cut


def test_timeout(pop3_endpoint: EndpointFactory) -> None:
    """A POP3 server that never greets gives TransportTimeoutError."""
    with SilentServer() as silent:
        for security in ("ssl", "starttls"):
            result = check_pop3_connection(pop3_endpoint(security, port=silent.port, timeout=0.5), alice())
            assert (result.error, result.retryable) == ("TransportTimeoutError", True)
