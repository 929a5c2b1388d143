"""Configured connectors reach real loopback servers: test-connection, sources and senders (semantics.md §2, §8)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from enate_routing import load_config
from enate_routing._cli import main
from enate_routing.transports._factory import ConnectorAccess, check_connection, open_sender, open_source
from mailrig.dovecot import ALICE, BOB, Dovecot
from mailrig.pki import Pki
from mailrig.smtp import SmtpServers

pytestmark = pytest.mark.servers

FALLBACK = '''
[[fallbacks]]
connector = "{name}"
address = "{address}"
target = {{ customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }}
'''


def incoming_connector(name: str, user: str, protocol: str, port: int, ca: Path, *, password: str = "",
                       extra: str = "") -> str:
    secret = f'password_env = "{name.upper()}_PW"' if not password else f"password = {json.dumps(password)}"
    return f'''
[[connectors]]
name = "{name}"
service = "other"
username = "{user}"
{secret}
primary_address = "{user}"
use_for = "incoming"
incoming = {{ protocol = "{protocol}", host = "127.0.0.1", port = {port}, security = "ssl", ca_file = "{ca}" }}
{extra}
''' + FALLBACK.format(name=name, address=user)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write_text(text: str) -> Path:
        path = tmp_path / "routing.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write_text


def test_cli_test_connection_passes_for_imap_and_pop3(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`test-connection` logs in over IMAPS and POP3S (50-character password by reference) and exits 0."""
    monkeypatch.setenv("IMAPBOX_PW", ALICE.password)
    monkeypatch.setenv("POPBOX_PW", BOB.password)
    mailboxes.create_mailbox(ALICE, "Processed")
    path = write(incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps, pki.ca_pem)
                 + incoming_connector("Popbox", BOB.login, "pop3", mailboxes.ports.pop3s, pki.ca_pem))
    assert main(["test-connection", "--config", str(path), "Imapbox"]) == 0
    assert main(["test-connection", "--config", str(path), "Popbox"]) == 0
    out = capsys.readouterr().out
    assert "Imapbox: imap://127.0.0.1" in out and "Popbox: pop3://127.0.0.1" in out
    assert "FAILED" not in out and BOB.password not in out


def test_cli_test_connection_reports_wrong_password_without_it(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused login is exit 1 and an AuthenticationError line, and the password is never printed."""
    path = write(incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps, pki.ca_pem,
                                    password="Wrong-Pass-99"))
    assert main(["test-connection", "--config", str(path), "Imapbox"]) == 1
    captured = capsys.readouterr()
    assert "FAILED (AuthenticationError)" in captured.out
    assert "Wrong-Pass-99" not in captured.out + captured.err


def test_missing_processed_folder_is_reported_as_to_be_created(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh mailbox lacks the default processed_folder: the connection test passes and says it will be
    created on first use (RFC 3501 §6.4.7 TRYCREATE), instead of failing every default IMAP connector."""
    path = write(incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps, pki.ca_pem,
                                    password=ALICE.password))
    assert main(["test-connection", "--config", str(path), "Imapbox"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "'Processed' will be created" in out and "MailboxMissingError" not in out


def test_missing_password_is_a_failed_result_not_a_crash(mailboxes: Dovecot, pki: Pki,
                                                         write: Callable[[str], Path]) -> None:
    """An unset password variable gives a failed ConnectionTestResult naming the variable."""
    config = load_config(write(incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps,
                                                  pki.ca_pem)))
    (result,) = check_connection(config.connector("Imapbox"), ConnectorAccess(environ={}))
    assert not result.ok and result.error == "ConfigError" and "IMAPBOX_PW" in result.detail


def test_unknown_connector_is_one_clear_line(mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Naming a connector that does not exist lists the ones that do."""
    path = write(incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps, pki.ca_pem))
    assert main(["test-connection", "--config", str(path), "Nope"]) == 1
    err = capsys.readouterr().err
    assert "no connector has this name" in err and "'Imapbox'" in err and "Traceback" not in err


def test_source_from_config_lists_fetches_and_moves(mailboxes: Dovecot, pki: Pki,
                                                    write: Callable[[str], Path]) -> None:
    """open_source reads the configured folder and marks processed mail by moving it to processed_folder."""
    mailboxes.create_mailbox(ALICE, "Done")
    mailboxes.deliver(ALICE, b"From: a@example.net\r\nTo: alice@example.test\r\nSubject: hello factory\r\n\r\nhi\r\n")
    text = incoming_connector("Imapbox", ALICE.login, "imap", mailboxes.ports.imaps, pki.ca_pem,
                              password=ALICE.password)
    text = text.replace('security = "ssl", ca_file', 'security = "ssl", processed_folder = "Done", ca_file')
    config = load_config(write(text))
    with open_source(config.connector("Imapbox")) as source:
        (ref,) = source.list_new()
        assert b"hello factory" in source.fetch(ref)
        source.mark_processed(ref)
        assert source.list_new() == []
    assert [m["subject"] for m in mailboxes.messages(ALICE, "Done")] == ["hello factory"]


def test_additional_mailbox_through_a_shared_folder(mailboxes: Dovecot, pki: Pki,
                                                    write: Callable[[str], Path]) -> None:
    """A connector reaches its additional_mailbox with the same login through an ACL-shared folder."""
    mailboxes.deliver(ALICE, b"From: a@example.net\r\nTo: alice@example.test\r\nSubject: for alice\r\n\r\nhi\r\n")
    mailboxes.grant(ALICE, "INBOX", BOB, "lrs")
    text = incoming_connector("Bobbox", BOB.login, "imap", mailboxes.ports.imaps, pki.ca_pem,
                              password=BOB.password, extra=f'additional_mailbox = "{ALICE.login}"')
    config = load_config(write(text))
    with open_source(config.connector("Bobbox"), mailbox="additional") as source:
        refs = source.list_new()
        assert len(refs) == 1 and b"for alice" in source.fetch(refs[0])


def test_sender_with_client_certificate_from_config(smtp_inbox: SmtpServers, pki: Pki, tmp_path: Path,
                                                    write: Callable[[str], Path]) -> None:
    """An outgoing connector with auth = certificate sends through a relay that requires the client certificate."""
    text = f'''
[[connectors]]
name = "Relay"
service = "other"
primary_address = "noreply@acme.example"
use_for = "outgoing"
certificate = "{pki.client_pfx}"
certificate_password_env = "RELAY_PFX"
outgoing = {{ host = "127.0.0.1", port = {smtp_inbox.ports["starttls_cert"]}, security = "starttls",
             auth = "certificate", ca_file = "{pki.ca_pem}" }}
'''.replace(",\n             auth", ", auth")
    env = {"RELAY_PFX": pki.pfx_password}
    config = load_config(write(text), environ=env)
    relay = config.connector("Relay")
    (result,) = check_connection(relay, ConnectorAccess(environ=env))
    assert result.ok, result.detail
    with open_sender(relay, ConnectorAccess(environ=env)) as sender:
        sender.send("noreply@acme.example", ["someone@example.net"],
                    b"From: noreply@acme.example\r\nTo: someone@example.net\r\nSubject: ack\r\n\r\nthanks\r\n")
    received = smtp_inbox.received("starttls_cert")
    assert len(received) == 1
