"""The additional mailbox is the additional one: IMAP shared folder or delegated login, POP3 delegated login
only, Office 365 OAuth as the shared address (docs/semantics.md §2); `poll` and `test-connection` reach it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from enate_routing import load_config, parse_config
from enate_routing._cli import main
from enate_routing.errors import ConfigError
from enate_routing.transports._base import OAuth2Auth, PasswordAuth
from enate_routing.transports._factory import ConnectorAccess, check_connection, open_source
from mailrig.dovecot import ALICE, BOB, MASTER, Dovecot
from mailrig.pki import Pki

TARGET = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}


def pop3_config(**extra: Any) -> dict[str, Any]:
    connector = {"name": "Popbox", "service": "other", "username": "bob@example.test", "password": "pw",
                 "primary_address": "bob@example.test", "use_for": "incoming",
                 "additional_mailbox": "alice@example.test",
                 "incoming": {"protocol": "pop3", "host": "pop.example.test", "port": 995, "security": "ssl"},
                 **extra}
    return {"connectors": [connector],
            "fallbacks": [{"connector": "Popbox", "address": "bob@example.test", "target": TARGET}]}


def test_pop3_with_a_shared_folder_is_a_configuration_error() -> None:
    """POP3 has no folders: a shared-folder additional mailbox would read the primary one, so it is refused."""
    with pytest.raises(ConfigError) as caught:
        parse_config(pop3_config(additional_access="shared-folder"))
    assert (caught.value.where, caught.value.field) == ("connector 'Popbox'", "additional_access")
    assert "primary mailbox" in str(caught.value)


def test_pop3_additional_mailbox_defaults_to_a_delegated_login() -> None:
    """Without additional_access a POP3 connector logs in as the additional mailbox by delegation."""
    connector = parse_config(pop3_config()).connector("Popbox")
    assert connector.additional_mode == "delegate"
    source = open_source(connector, mailbox="additional")
    assert isinstance(source.credentials, PasswordAuth)
    assert source.credentials.username == "alice@example.test*bob@example.test"


def test_access_override_to_a_shared_folder_on_pop3_fails_safely() -> None:
    """A host forcing shared-folder access on POP3 gets a located ConfigError, never the primary mailbox."""
    connector = parse_config(pop3_config()).connector("Popbox")
    with pytest.raises(ConfigError, match="POP3 has no folders"):
        open_source(connector, ConnectorAccess(additional="shared-folder"), mailbox="additional")
    _, additional = check_connection(connector, ConnectorAccess(additional="shared-folder"))
    assert not additional.ok and additional.error == "ConfigError"
    assert additional.detail.startswith("additional mailbox alice@example.test: ")


def test_office365_oauth_logs_in_as_the_shared_address_with_the_delegates_token() -> None:
    """Office 365 with OAuth: the login is the shared mailbox address; the token is the delegate's."""
    config = parse_config({
        "connectors": [{"name": "O365", "service": "office365-imap", "username": "agent@contoso.example",
                        "primary_address": "agent@contoso.example", "use_for": "incoming",
                        "additional_mailbox": "team@contoso.example", "incoming": {"auth": "oauth2"}}],
        "fallbacks": [{"connector": "O365", "address": "agent@contoso.example", "target": TARGET}],
    })
    connector = config.connector("O365")
    tokens: list[str] = []

    def token(of: Any) -> str:
        tokens.append(of.username)
        return "token-of-the-delegate"

    source = open_source(connector, ConnectorAccess(token_provider=token), mailbox="additional")
    assert isinstance(source.credentials, OAuth2Auth)
    assert source.credentials.username == "team@contoso.example"
    assert source.credentials.token_provider() == "token-of-the-delegate" and tokens == ["agent@contoso.example"]


# --- against the loopback Dovecot ----------------------------------------------------------------------------

FALLBACK = '''
[[fallbacks]]
connector = "{name}"
address = "{address}"
target = {{ customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }}
'''


def connector_toml(name: str, user: str, password: str, protocol: str, port: int, ca: Path, extra: str) -> str:
    processed = "flag" if protocol == "imap" else "delete"
    server = f'host = "127.0.0.1", port = {port}, security = "ssl", ca_file = "{ca}", processed = "{processed}"'
    return f'''
[[connectors]]
name = "{name}"
service = "other"
username = "{user}"
password = {json.dumps(password)}
primary_address = "{user if "@" in user else "master@example.test"}"
use_for = "incoming"
{extra}
incoming = {{ protocol = "{protocol}", {server} }}
''' + FALLBACK.format(name=name, address=user if "@" in user else "master@example.test")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write_text(text: str) -> Path:
        path = tmp_path / "routing.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write_text


def hello(subject: str) -> bytes:
    return f"From: a@example.net\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nhi\r\n".encode()


@pytest.mark.servers
def test_test_connection_checks_both_mailboxes(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`test-connection --connector NAME` logs in to the primary mailbox and opens the shared one too."""
    mailboxes.grant(ALICE, "INBOX", BOB, "lrs")
    path = write(connector_toml("Bobbox", BOB.login, BOB.password, "imap", mailboxes.ports.imaps, pki.ca_pem,
                                f'additional_mailbox = "{ALICE.login}"'))
    assert main(["test-connection", "--config", str(path), "--connector", "Bobbox"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(": ok — " in line for line in lines)
    assert f"additional mailbox {ALICE.login}: " in lines[1]


@pytest.mark.servers
def test_test_connection_fails_when_the_additional_mailbox_is_not_shared(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A primary login that works does not hide an additional mailbox the login cannot open (exit 1)."""
    path = write(connector_toml("Bobbox", BOB.login, BOB.password, "imap", mailboxes.ports.imaps, pki.ca_pem,
                                'additional_mailbox = "nobody-shares@example.test"'))
    assert main(["test-connection", "--config", str(path), "Bobbox"]) == 1
    primary, additional = capsys.readouterr().out.splitlines()
    assert ": ok — " in primary and "FAILED" in additional


@pytest.mark.servers
def test_poll_reads_the_additional_mailbox_over_pop3_by_delegation(
    mailboxes: Dovecot, pki: Pki, write: Callable[[str], Path], tmp_path: Path
) -> None:
    """`poll --mailbox additional` on POP3 reads the delegated mailbox (alice's), not the login's own."""
    mailboxes.deliver(ALICE, hello("for alice"))
    path = write(connector_toml("Master", MASTER.login, MASTER.password, "pop3", mailboxes.ports.pop3s, pki.ca_pem,
                                f'additional_mailbox = "{ALICE.login}"'))
    out = tmp_path / "decisions.jsonl"
    assert main(["poll", "--config", str(path), "--connector", "Master", "--mailbox", "additional", "--once",
                 "--out", str(out)]) == 0
    (line,) = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["action"] == "create"
    config = load_config(path)
    with open_source(config.connector("Master"), mailbox="additional") as source:
        assert source.list_new() == []  # processed (deleted) in alice's mailbox
