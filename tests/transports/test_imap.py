"""ImapSource against a real Dovecot: security modes, logins, UIDs, processed actions, shared mailboxes."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from enate_routing.errors import (
    AuthenticationError,
    ConnectError,
    InsecureConnectionError,
    MailboxMissingError,
    TLSVerificationError,
    TransportError,
    TransportTimeoutError,
    UidValidityChangedError,
)
from enate_routing.transports import (
    DeleteAction,
    FlagAction,
    ImapSource,
    MessageRef,
    MoveAction,
    PasswordAuth,
    check_imap_connection,
    delegate_login,
    shared_folder,
)
from mailrig.dovecot import ALICE, BOB, MASTER, SHARED, Dovecot
from mailrig.faults import CuttingProxy, SilentServer
from mailrig.util import KEEPALIVE_EXPECTED, EndpointFactory, assert_no_secret, keepalive_options, message

pytestmark = pytest.mark.servers


def alice() -> PasswordAuth:
    return PasswordAuth(ALICE.login, ALICE.password)


class NoMoveImapSource(ImapSource):
    """A server without MOVE (RFC 6851), as many older servers are: the source sees no MOVE capability."""

    hidden = frozenset({"MOVE"})

    @property
    def capabilities(self) -> frozenset[str]:
        return super().capabilities - self.hidden


class NoMoveNoUidplusImapSource(NoMoveImapSource):
    """A server with neither MOVE nor UIDPLUS (RFC 4315)."""

    hidden = frozenset({"MOVE", "UIDPLUS"})


def subjects(dovecot: Dovecot, user: object, mailbox: str = "INBOX") -> list[str]:
    return [m["subject"] for m in dovecot.messages(user.login, mailbox)]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- logins
@pytest.mark.parametrize("security", ["ssl", "starttls"])
@pytest.mark.parametrize("method", ["auto", "plain", "login"])
def test_login_each_security_and_method(
    mailboxes: Dovecot, imap_endpoint: EndpointFactory, security: str, method: str
) -> None:
    """Implicit TLS and STARTTLS each accept AUTHENTICATE PLAIN and the LOGIN command."""
    result = check_imap_connection(imap_endpoint(security), PasswordAuth(ALICE.login, ALICE.password, method))
    assert result.ok, result.detail
    assert "'INBOX' selected" in result.detail
    assert {"MOVE", "UIDPLUS"} <= set(result.capabilities)  # re-read after login (not in the greeting)


@pytest.mark.parametrize("method", ["plain", "login"])
def test_fifty_character_password(mailboxes: Dovecot, imap_endpoint: EndpointFactory, method: str) -> None:
    """Bob's 50-character password full of quotes, backslashes and braces logs in both ways."""
    assert len(BOB.password) == 50
    result = check_imap_connection(imap_endpoint("starttls"), PasswordAuth(BOB.login, BOB.password, method))
    assert result.ok, result.detail


@pytest.mark.parametrize("method", ["plain", "login"])
def test_wrong_password(mailboxes: Dovecot, imap_endpoint: EndpointFactory, method: str) -> None:
    """A wrong password is an AuthenticationError that does not contain the password."""
    secret = 'wrong "pass\\word" 42'
    with pytest.raises(AuthenticationError) as caught, ImapSource(
        imap_endpoint(), PasswordAuth(ALICE.login, secret, method)
    ) as source:
        source.list_new()
    assert_no_secret(secret, caught.value)
    result = check_imap_connection(imap_endpoint(), PasswordAuth(ALICE.login, secret, method))
    assert (result.ok, result.error, result.retryable) == (False, "AuthenticationError", False)
    assert_no_secret(secret, result)


def test_untrusted_server_certificate(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A client trusting another CA refuses the server before sending anything."""
    pki = mailboxes.pki
    for security in ("ssl", "starttls"):
        result = check_imap_connection(imap_endpoint(security, ca_file=pki.rogue_ca_pem), alice())
        assert (result.ok, result.error) == (False, "TLSVerificationError"), result.detail
    with pytest.raises(TLSVerificationError, match="not trusted"):
        ImapSource(imap_endpoint(ca_file=pki.rogue_ca_pem), alice()).list_new()


def test_system_store_does_not_trust_the_test_ca(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Without ca_file the system store is used, which does not know the test CA: verification is on."""
    result = check_imap_connection(imap_endpoint(ca_file=None), alice())
    assert result.error == "TLSVerificationError"
    # A first-time user with a private CA learns the way out from the message itself.
    assert result.detail.endswith("self-signed certificate in certificate chain (a private CA is trusted with ca_file)")


def test_plaintext_refused_by_client(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """security 'none' without allow_plaintext_auth refuses to send the password."""
    result = check_imap_connection(imap_endpoint("none"), alice())
    assert (result.ok, result.error) == (False, "InsecureConnectionError")
    assert "allow_plaintext_auth" in result.detail


def test_plaintext_refused_by_server(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """From 127.0.0.2 Dovecot advertises LOGINDISABLED; the client stops before sending the password."""
    endpoint = imap_endpoint("none", allow_plaintext_auth=True, source_address="127.0.0.2")
    with pytest.raises(InsecureConnectionError, match="LOGINDISABLED"):
        ImapSource(endpoint, alice()).list_new()
    forced = PasswordAuth(ALICE.login, ALICE.password, "plain")
    with pytest.raises(InsecureConnectionError):
        ImapSource(endpoint, forced).list_new()


def test_plaintext_allowed_when_explicit(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """allow_plaintext_auth lets a login cross 'none' where the server accepts it (loopback to itself)."""
    result = check_imap_connection(imap_endpoint("none", allow_plaintext_auth=True), alice())
    assert result.ok, result.detail


def test_starttls_upgrade_from_other_source_address(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """From 127.0.0.2 (not trusted as local) STARTTLS makes the login acceptable."""
    result = check_imap_connection(imap_endpoint("starttls", source_address="127.0.0.2"), alice())
    assert result.ok, result.detail


# ---------------------------------------------------------------------------------------------- mailboxes
def test_mailbox_missing(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Selecting a folder that does not exist is a MailboxMissingError."""
    with pytest.raises(MailboxMissingError), ImapSource(imap_endpoint(), alice(), "No Such Folder") as source:
        source.list_new()
    result = check_imap_connection(imap_endpoint(), alice(), "No Such Folder")
    assert (result.ok, result.error) == (False, "MailboxMissingError")


def test_connection_test_says_a_missing_move_target_will_be_created(
    mailboxes: Dovecot, imap_endpoint: EndpointFactory,
) -> None:
    """A missing processed-mail folder does not fail the test: it will be created on first use."""
    result = check_imap_connection(imap_endpoint(), alice(), processed=MoveAction("Done/Missing"))
    assert result.ok, result.detail
    assert "'Done/Missing' will be created" in result.detail
    existing = check_imap_connection(imap_endpoint(), alice(), processed=MoveAction("Archive"))
    assert existing.ok and "will be created" not in existing.detail
    assert "Done/Missing" not in mailboxes.mailboxes(ALICE)  # a connection test changes nothing


def test_list_fetch_move(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """list_new gives UID refs with UIDVALIDITY; fetch leaves \\Seen unset; MOVE empties the INBOX slot."""
    raw = message("first")
    mailboxes.deliver(ALICE, raw)
    mailboxes.deliver_lmtp(ALICE.login, message("second"))
    with ImapSource(imap_endpoint(), alice()) as source:
        refs = source.list_new()
        assert [r.uid for r in refs] == [mailboxes.uid_of(ALICE, "first"), mailboxes.uid_of(ALICE, "second")]
        assert {r.uidvalidity for r in refs} == {source.uidvalidity}
        assert source.uidvalidity == mailboxes.uidvalidity(ALICE)
        assert source.fetch(refs[0]) == raw
        assert "\\Seen" not in mailboxes.messages(ALICE)[0]["flags"]  # BODY.PEEK[]
        source.mark_processed(refs[0])
        assert source.list_new() == refs[1:]
        source.mark_processed(refs[0])  # marking twice is harmless
    assert subjects(mailboxes, ALICE) == ["second"]
    assert subjects(mailboxes, ALICE, "Archive") == ["first"]


def test_move_without_move_capability(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Without MOVE: COPY, \\Deleted and UID EXPUNGE of that UID only; another \\Deleted message survives."""
    for subject in ("keep-deleted", "process-me"):
        mailboxes.deliver(ALICE, message(subject))
    # another client flagged it but has not expunged
    mailboxes.add_flags(ALICE, mailboxes.uid_of(ALICE, "keep-deleted"), "\\Deleted")
    with NoMoveImapSource(imap_endpoint(), alice()) as source:
        assert "MOVE" not in source.capabilities
        [ref] = source.list_new()  # \Deleted messages are not listed
        source.mark_processed(ref)
    assert subjects(mailboxes, ALICE) == ["keep-deleted"]
    assert subjects(mailboxes, ALICE, "Archive") == ["process-me"]


def test_move_without_move_or_uidplus(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Without UIDPLUS nothing is expunged: the copy is made and the original stays \\Deleted, unlisted."""
    mailboxes.deliver(ALICE, message("process-me"))
    with NoMoveNoUidplusImapSource(imap_endpoint(), alice()) as source:
        [ref] = source.list_new()
        source.mark_processed(ref)
        assert source.list_new() == []
    [original] = mailboxes.messages(ALICE)
    assert "\\Deleted" in original["flags"]
    assert subjects(mailboxes, ALICE, "Archive") == ["process-me"]


def test_move_target_missing_is_created_once(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Moving to a folder that does not exist: [TRYCREATE] → CREATE → the move is retried (RFC 3501 §6.4.7),
    with MOVE and with COPY; the second message finds the folder there."""
    for subject in ("first", "second"):
        mailboxes.deliver(ALICE, message(subject))
    for cls, folder in ((ImapSource, "Processed"), (NoMoveImapSource, "Done/Later")):
        with cls(imap_endpoint(), alice(), processed=MoveAction(folder)) as source:
            ref = source.list_new()[0]
            source.mark_processed(ref)
        assert folder in mailboxes.mailboxes(ALICE)
    assert subjects(mailboxes, ALICE, "Processed") == ["first"]
    assert subjects(mailboxes, ALICE, "Done/Later") == ["second"]
    assert subjects(mailboxes, ALICE) == []


def test_move_target_the_server_refuses(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A folder name the server refuses is a TransportError that says why; the message stays in place."""
    mailboxes.deliver(ALICE, message("stay"))
    with ImapSource(imap_endpoint(), alice(), processed=MoveAction("INBOX/../bad\\name*")) as source:
        [ref] = source.list_new()
        with pytest.raises(TransportError, match="not allowed"):
            source.mark_processed(ref)
    assert subjects(mailboxes, ALICE) == ["stay"]


def test_delete_action_expunges_only_that_uid(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """DeleteAction removes the processed message by UID EXPUNGE and no other \\Deleted message."""
    for subject in ("other-client-deleted", "process-me", "untouched"):
        mailboxes.deliver(ALICE, message(subject))
    mailboxes.add_flags(ALICE, mailboxes.uid_of(ALICE, "other-client-deleted"), "\\Deleted")
    with ImapSource(imap_endpoint(), alice(), processed=DeleteAction()) as source:
        refs = source.list_new()
        assert [r.uid for r in refs] == [mailboxes.uid_of(ALICE, s) for s in ("process-me", "untouched")]
        source.mark_processed(refs[0])
    assert subjects(mailboxes, ALICE) == ["other-client-deleted", "untouched"]


@pytest.mark.parametrize(("flag", "expected"), [("$Processed", "$Processed"), ("\\Seen", "\\Seen")])
def test_flag_action(mailboxes: Dovecot, imap_endpoint: EndpointFactory, flag: str, expected: str) -> None:
    """FlagAction sets the flag, keeps the message, and listing skips flagged messages."""
    mailboxes.deliver(ALICE, message("a"))
    mailboxes.deliver(ALICE, message("b"))
    with ImapSource(imap_endpoint(), alice(), processed=FlagAction(flag)) as source:
        first, second = source.list_new()
        source.mark_processed(first)
        assert source.list_new() == [second]
    flags = [m["flags"] for m in mailboxes.messages(ALICE)]
    assert expected in flags[0]
    assert expected not in flags[1]


def test_flag_deleted_with_expunge(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """FlagAction('\\\\Deleted') keeps the message until asked to expunge; with expunge=True it is gone."""
    mailboxes.deliver(ALICE, message("a"))
    mailboxes.deliver(ALICE, message("b"))
    with ImapSource(imap_endpoint(), alice(), processed=FlagAction("\\Deleted")) as source:
        first, _ = source.list_new()
        source.mark_processed(first)
    assert len(mailboxes.messages(ALICE)) == 2
    with ImapSource(imap_endpoint(), alice(), processed=FlagAction("\\Deleted", expunge=True)) as source:
        [second] = source.list_new()
        source.mark_processed(second)
    assert len(mailboxes.messages(ALICE)) == 1  # the first stays \Deleted: only UID EXPUNGE of the second


def test_bad_flag_is_refused() -> None:
    """A flag that is not an IMAP atom cannot be injected into a command."""
    from enate_routing.transports import Endpoint

    with pytest.raises(ValueError, match="flag"):
        ImapSource(Endpoint("h", 993), alice(), processed=FlagAction("$a) (b"))


def test_uidvalidity_change(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """After UIDVALIDITY changes, an old ref is refused with UidValidityChangedError; a new list works."""
    mailboxes.deliver(ALICE, message("x"))
    with ImapSource(imap_endpoint(), alice()) as source:
        [old] = source.list_new()
    mailboxes.set_uidvalidity(ALICE, "INBOX", old.uidvalidity + 1000)  # type: ignore[operator]
    with ImapSource(imap_endpoint(), alice()) as source:
        with pytest.raises(UidValidityChangedError) as caught:
            source.fetch(old)
        assert (caught.value.expected, caught.value.actual) == (old.uidvalidity, source.uidvalidity)
        with pytest.raises(UidValidityChangedError):
            source.mark_processed(old)
        [new] = source.list_new()
        assert new.uidvalidity == source.uidvalidity != old.uidvalidity
        assert new.key != old.key
    assert subjects(mailboxes, ALICE) == ["x"]  # nothing was moved under the void ref


def test_uidvalidity_change_during_a_session(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A change while the folder is selected drops the session; the retry then reports the change."""
    mailboxes.deliver(ALICE, message("x"))
    with ImapSource(imap_endpoint(), alice()) as source:
        [old] = source.list_new()
        mailboxes.set_uidvalidity(ALICE, "INBOX", old.uidvalidity + 7)  # type: ignore[operator]
        with pytest.raises((ConnectError, UidValidityChangedError)):
            source.fetch(old)
        with pytest.raises(UidValidityChangedError):
            source.fetch(old)


@pytest.mark.parametrize("folder", ["Support Tickets", "Entwürfe/Größe", "Tom & Jerry \"quoted\"", "日本語"])
def test_folder_names_with_spaces_and_non_ascii(
    mailboxes: Dovecot, imap_endpoint: EndpointFactory, folder: str
) -> None:
    """Folders with spaces, quotes, '&' and non-ASCII letters are read from and moved into by name."""
    mailboxes.create_mailbox(ALICE, folder)
    target = f"Erledigt ✓ {folder}"
    mailboxes.create_mailbox(ALICE, target)
    mailboxes.deliver(ALICE, message("in folder"), mailbox=folder)
    with ImapSource(imap_endpoint(), alice(), folder, processed=MoveAction(target)) as source:
        [ref] = source.list_new()
        assert ref.mailbox == folder
        assert b"in folder" in source.fetch(ref)
        source.mark_processed(ref)
    assert subjects(mailboxes, ALICE, folder) == []
    assert subjects(mailboxes, ALICE, target) == ["in folder"]


# ---------------------------------------------------------------------------------------------- shared
def test_shared_mailbox_via_acl(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Alice reads the shared mailbox's INBOX through the shared namespace once it grants her rights."""
    mailboxes.deliver(SHARED, message("team mail"))
    folder = shared_folder(SHARED.login)
    assert folder == "shared/shared@example.test/INBOX"
    result = check_imap_connection(imap_endpoint(), alice(), folder)
    assert result.error == "MailboxMissingError"  # not granted yet
    mailboxes.grant(SHARED, "INBOX", ALICE, "lrswite")
    with ImapSource(imap_endpoint(), alice(), folder, processed=FlagAction("\\Seen")) as source:
        [ref] = source.list_new()
        assert b"team mail" in source.fetch(ref)
        source.mark_processed(ref)
        assert source.list_new() == []


def test_shared_mailbox_via_master_user(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A master login 'target*master' opens the target's INBOX with the master's password."""
    mailboxes.deliver(SHARED, message("for the team"))
    login = delegate_login(SHARED.login, MASTER.login)
    assert login == "shared@example.test*master"
    with ImapSource(imap_endpoint(), PasswordAuth(login, MASTER.password)) as source:
        [ref] = source.list_new()
        assert b"for the team" in source.fetch(ref)
        source.mark_processed(ref)
    assert subjects(mailboxes, SHARED, "Archive") == ["for the team"]


def test_office365_delegate_login_format() -> None:
    """The Office 365 delegate form puts the delegate first, separated by a backslash."""
    assert delegate_login("shared@contoso.com", "me@contoso.com", style="office365") == (
        "me@contoso.com\\shared@contoso.com"
    )


# ---------------------------------------------------------------------------------------------- faults
def test_server_closes_mid_command(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A connection cut during FETCH is a retryable ConnectError; the next call opens a new connection."""
    mailboxes.deliver(ALICE, message("x"))
    with CuttingProxy(mailboxes.ports.imap, cut_on=b"FETCH") as proxy:
        endpoint = imap_endpoint("none", port=proxy.port, allow_plaintext_auth=True)
        with ImapSource(endpoint, alice()) as source:
            [ref] = source.list_new()
            with pytest.raises(ConnectError) as caught:
                source.fetch(ref)
            assert caught.value.retryable
            assert source.list_new() == [ref]  # reconnected
    assert proxy.cuts == 1


def test_timeout(imap_endpoint: EndpointFactory) -> None:
    """A server that never answers gives TransportTimeoutError after the endpoint's timeout."""
    with SilentServer() as silent:
        start = time.monotonic()
        result = check_imap_connection(imap_endpoint("ssl", port=silent.port, timeout=0.5), alice())
        assert (result.error, result.retryable) == ("TransportTimeoutError", True)
        assert time.monotonic() - start < 3
        with pytest.raises(TransportTimeoutError):
            ImapSource(imap_endpoint("starttls", port=silent.port, timeout=0.5), alice()).list_new()


def test_refs_of_another_mailbox_are_refused(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """A ref for another folder or a POP3 ref is a ValueError, never a command on the wrong message."""
    with ImapSource(imap_endpoint(), alice()) as source:
        with pytest.raises(ValueError, match="not an IMAP message"):
            source.fetch(MessageRef("Archive", uid=1, uidvalidity=1))
        with pytest.raises(ValueError, match="not an IMAP message"):
            source.fetch(MessageRef("INBOX", uidl="abc"))


# ---------------------------------------------------------------------------------------------- IDLE (RFC 2177)
def test_wait_for_new_returns_at_once_for_mail_not_yet_seen(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """Mail that arrived since the last listing ends the wait before IDLE starts; known mail does not."""
    mailboxes.deliver(ALICE, message("waiting"))
    with ImapSource(imap_endpoint(), alice()) as source:
        assert source.can_wait
        [ref] = source.list_new()
        assert source.wait_for_new(30, known=()) is True
        started = time.monotonic()
        assert source.wait_for_new(1.5, known={ref.key}) is False  # nothing new: the time runs out
        assert time.monotonic() - started >= 1.0


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_the_connection_an_idle_wait_holds_keeps_itself_alive(mailboxes: Dovecot, imap_endpoint: EndpointFactory,
                                                               security: str) -> None:
    """An IDLE wait lasts up to 29 minutes, which a NAT gateway ends silently after a few: the socket sends
    keepalive probes after a minute of silence and gives up on a peer gone for two (read from the kernel)."""
    with ImapSource(imap_endpoint(security), alice()) as source:
        source.list_new()
        assert source._conn is not None
        assert keepalive_options(source._conn.sock.fileno()) == KEEPALIVE_EXPECTED


def test_wait_for_new_wakes_on_delivery_and_on_stop(mailboxes: Dovecot, imap_endpoint: EndpointFactory) -> None:
    """IDLE ends when the server announces a delivery, or when stop() turns true; the session stays usable."""
    with ImapSource(imap_endpoint(), alice()) as source:
        timer = threading.Timer(0.5, mailboxes.deliver_lmtp, args=(ALICE.login, message("arrives")))
        timer.start()
        try:
            assert source.wait_for_new(30) is True
        finally:
            timer.join()
        assert [r.uid for r in source.list_new()] == [mailboxes.uid_of(ALICE, "arrives")]
        known = {r.key for r in source.list_new()}
        stopped = threading.Event()
        threading.Timer(0.3, stopped.set).start()
        assert source.wait_for_new(30, known=known, stop=stopped.is_set) is False
        assert len(source.list_new()) == 1
